"""Test problems against plain-loop references, central differences and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dfo.exceptions import GradientNotAvailableError, InvalidOptionError
from dfo.objective import as_objective
from dfo.problems import (
    PROBLEMS,
    Ellipsoid,
    Noisy,
    Rastrigin,
    Rosenbrock,
    SkewedQuartic,
    Sphere,
    get,
    names,
)

# -- plain-loop references, written straight from the textbook formulas ----------


def ref_sphere(x):
    return sum(v * v for v in x)


def ref_ellipsoid(x, condition):
    d = len(x)
    return sum(condition ** (i / max(d - 1, 1)) * x[i] ** 2 for i in range(d))


def ref_rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def ref_rastrigin(x):
    return 10 * len(x) + sum(v * v - 10 * math.cos(2 * math.pi * v) for v in x)


def ref_skewed_quartic(t):
    p = len(t)
    B = [[(1.0 / p if j >= i else 0.0) for j in range(p)] for i in range(p)]
    y = [sum(B[i][j] * t[j] for j in range(p)) for i in range(p)]
    return sum(v * v for v in y) + 0.1 * sum(v**3 for v in y) + 0.01 * sum(v**4 for v in y)


REFERENCES = {
    "sphere": ref_sphere,
    "ellipsoid": lambda x: ref_ellipsoid(x, 1e6),
    "rosenbrock": ref_rosenbrock,
    "rastrigin": ref_rastrigin,
    "skewed-quartic": ref_skewed_quartic,
}


def central_diff(f, x, h=1e-5):
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_names_cover_the_registry():
    assert names() == sorted(REFERENCES) == sorted(PROBLEMS)


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("dim", [2, 7])
def test_values_match_plain_loop(name, dim, rng):
    f = get(name, dim)
    X = rng.uniform(-2, 2, size=(5, dim))
    expected = np.array([REFERENCES[name](list(x)) for x in X])
    np.testing.assert_allclose(f.evaluate_batch(X), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradient_matches_central_differences(name, rng):
    # central differences with h = 1e-5: truncation ~h^2 |f'''|, rounding ~eps |f| / h;
    # 1e-6 relative covers both for these functions on [-1.5, 1.5]
    f = get(name, 6, **({"condition": 1e3} if name == "ellipsoid" else {}))
    for _ in range(3):
        x = rng.uniform(-1.5, 1.5, size=6)
        value, grad = f.value_and_grad(x)
        assert value == pytest.approx(f(x), rel=1e-14)
        fd = central_diff(f, x)
        assert np.linalg.norm(grad - fd) <= 1e-6 * np.linalg.norm(grad)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_batch_equals_single(name, rng):
    f = get(name, 9)
    X = rng.normal(size=(13, 9)) * 3
    batch = f.evaluate_batch(X)
    single = np.array([f(x) for x in X])
    np.testing.assert_allclose(batch, single, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_known_minimum(name, rng):
    f = get(name, 5)
    x_star = f.minimizer
    assert x_star.shape == (5,)
    assert f(x_star) == f.minimum == 0.0
    _, g = f.value_and_grad(x_star)
    np.testing.assert_allclose(g, 0.0, atol=1e-12)
    # a minimum: random nearby points are no better
    values = f.evaluate_batch(x_star + 0.05 * rng.normal(size=(50, 5)))
    assert np.all(values > f.minimum)


def test_ellipsoid_condition_number():
    f = Ellipsoid(8, condition=1e4)
    # Hessian is diag(2 w); measure its eigenvalues by second differences
    h = 1e-3
    curv = [(f(h * e) + f(-h * e) - 2 * f(np.zeros(8))) / h**2 for e in np.eye(8)]
    assert max(curv) / min(curv) == pytest.approx(1e4, rel=1e-9)
    assert Ellipsoid(1)(np.array([3.0])) == 9.0


def test_skewed_quartic_gradient_matches_matrix_formula(rng):
    p = 10
    B = np.triu(np.ones((p, p))) / p
    t = rng.normal(size=p)
    y = B @ t
    expected = B.T @ (2 * y + 0.3 * y**2 + 0.04 * y**3)
    np.testing.assert_allclose(SkewedQuartic(p).value_and_grad(t)[1], expected, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float64,
        st.integers(1, 12),
        elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False),
    )
)
def test_skewed_quartic_property(t):
    f = SkewedQuartic(t.size)
    assert f(t) == pytest.approx(ref_skewed_quartic(list(t)), rel=1e-10, abs=1e-12)
    # y^2 + 0.1 y^3 + 0.01 y^4 = y^2 ((1 + 0.05 y)^2 + 0.0075 y^2) >= 0
    assert f(t) >= 0.0


def test_overflow_gives_inf_without_warning():
    # pytest turns RuntimeWarning into errors in this project
    assert Rosenbrock(3)(np.full(3, 1e200)) == np.inf
    assert Sphere(2).evaluate_batch(np.array([[1e300, 1e300], [1.0, 0.0]]))[0] == np.inf


def test_bad_options():
    with pytest.raises(InvalidOptionError, match="Did you mean 'rosenbrock'"):
        get("rosenbrok", 3)
    with pytest.raises(InvalidOptionError, match="dim >= 2"):
        Rosenbrock(1)
    with pytest.raises(InvalidOptionError, match="condition"):
        Ellipsoid(3, condition=0.5)
    with pytest.raises(ValueError, match="dim"):
        Sphere(0)
    assert isinstance(get("Skewed_Quartic", 4), SkewedQuartic)
    assert isinstance(get("rastrigin", 2), Rastrigin)


# -- noise --------------------------------------------------------------------------


def test_noisy_reproducible_from_seeded_realizations(rng):
    f = Noisy(Sphere(4), sigma=0.5)
    X = rng.normal(size=(6, 4))

    def run(seed):
        gen = np.random.default_rng(seed)
        return [f.realization(gen).evaluate_batch(X) for _ in range(3)]

    a, b, c = run(7), run(7), run(8)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])  # each realization draws new noise


def test_noisy_independent_vs_common(rng):
    base = Rosenbrock(3)
    X = rng.normal(size=(5, 3))
    clean = base.evaluate_batch(X)
    gen = np.random.default_rng(0)

    indep = Noisy(base, sigma=0.1).realization(gen)
    noise = indep.evaluate_batch(X) - clean
    assert np.unique(noise).size == 5
    # within one realization a point's noise is fixed (so chunking cannot change it);
    # the next realization measures it again with a fresh draw
    assert indep(X[0]) == indep(X[0])
    assert Noisy(base, sigma=0.1).realization(gen)(X[0]) != indep(X[0])

    common = Noisy(base, sigma=0.1, common=True).realization(gen)
    shift = common.evaluate_batch(X) - clean
    np.testing.assert_allclose(shift, shift[0], atol=1e-12)
    assert shift[0] != 0.0
    # and every later call on the same realization shares it too
    assert common(X[2]) - clean[2] == pytest.approx(shift[0], abs=1e-12)


def test_noisy_statistics():
    f = Noisy(Sphere(2), sigma=0.3, seed=11)
    z = f.evaluate_batch(np.zeros((40_000, 2)))
    # standard errors: mean 0.3/200 = 1.5e-3, std ~0.3/283 ~ 1.1e-3; 4 sigma bounds
    assert abs(z.mean()) < 6e-3
    assert z.std() == pytest.approx(0.3, abs=4.5e-3)


def test_noisy_direct_calls_seeded():
    X = np.ones((3, 2))
    a = Noisy(Sphere(2), sigma=1.0, seed=5)
    b = Noisy(Sphere(2), sigma=1.0, seed=5)
    first = a.evaluate_batch(X)
    np.testing.assert_array_equal(first, b.evaluate_batch(X))
    assert not np.array_equal(first, a.evaluate_batch(X))
    c = Noisy(Sphere(2), sigma=1.0, common=True, seed=5)
    shared = c.evaluate_batch(X) - 2.0
    np.testing.assert_allclose(shared, shared[0], atol=1e-12)


def test_noisy_zero_sigma_is_exact(rng):
    f = Noisy(Rastrigin(3), sigma=0.0)
    X = rng.normal(size=(4, 3))
    np.testing.assert_array_equal(
        f.realization(rng).evaluate_batch(X), Rastrigin(3).evaluate_batch(X)
    )


def test_noisy_flags_and_errors():
    f = Noisy(Sphere(3), sigma=0.1)
    assert f.is_stochastic and not f.has_gradient and f.dim == 3
    with pytest.raises(GradientNotAvailableError):
        f.value_and_grad(np.zeros(3))
    with pytest.raises(InvalidOptionError, match="sigma"):
        Noisy(Sphere(3), sigma=-1.0)
    with pytest.raises(TypeError, match="Objective"):
        Noisy(lambda x: 0.0, sigma=1.0)


def test_noisy_realizes_a_stochastic_inner_objective():
    # the inner objective's randomness is bound by the same realization
    inner = as_objective(lambda x, g: float(x @ x + g.standard_normal()), dim=2, stochastic=True)
    f = Noisy(inner, sigma=0.0)
    real = f.realization(np.random.default_rng(3))
    x = np.ones(2)
    assert real(x) == real(x)  # sigma 0: only the inner draw, fixed per realization
    again = f.realization(np.random.default_rng(3))
    assert again(x) == real(x)


def test_independent_noise_does_not_depend_on_how_a_batch_is_split():
    # a batch split into chunks (as over worker processes) gets the serial noise
    noisy = Noisy(Sphere(4), sigma=1.0)
    sample = noisy.realization(np.random.default_rng(7))
    X = np.random.default_rng(8).standard_normal((6, 4))
    whole = sample.evaluate_batch(X)
    parts = np.concatenate([sample.evaluate_batch(X[:1]), sample.evaluate_batch(X[1:])])
    np.testing.assert_array_equal(whole, parts)
    # and distinct points still get distinct, unit-variance noise
    Z = np.random.default_rng(9).standard_normal((4000, 4))
    noise = sample.evaluate_batch(Z) - Sphere(4).evaluate_batch(Z)
    assert abs(noise.std() - 1.0) < 0.05  # 4000 draws: std error of std ~ 0.011
    assert abs(noise.mean()) < 0.06
