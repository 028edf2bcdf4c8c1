"""Tests of the es method: ranks against scipy, the update against a hand-written one,
perturbations rebuilt from seeds, float32 populations, bad options."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import dfo
from dfo.exceptions import InvalidOptionError
from dfo.optimizers.es import centered_ranks, noise_table, perturbations


@pytest.mark.parametrize("k", [1, 2, 7, 50])
def test_centered_ranks_match_scipy(k):
    values = np.random.default_rng(k).normal(size=k)
    ref = (scipy.stats.rankdata(values, method="ordinal") - 1) / max(k - 1, 1) - (k > 1) * 0.5
    np.testing.assert_allclose(centered_ranks(values), ref, rtol=0, atol=1e-15)


def test_non_finite_values_rank_worst():
    # nan, -inf and +inf all rank above every finite value, in their order
    u = centered_ranks(np.array([1.0, np.nan, -np.inf, np.inf, 0.0]))
    np.testing.assert_array_equal(u, [-0.25, 0.0, 0.25, 0.5, -0.5])


def test_one_update_by_hand():
    # the OpenAI-ES step with plain SGD, recomputed from the seed alone
    x0 = np.array([0.5, -1.0, 2.0])
    opt = dfo.make_optimizer(
        "es", x0, seed=3, popsize=6, sigma=0.1, learning_rate=0.2, step_rule="sgd"
    )
    X = opt.ask()
    eps = perturbations(noise_table(opt.table_seed, opt.table_size), opt.offsets, 3)
    np.testing.assert_array_equal(X, np.vstack([x0 + 0.1 * eps, x0 - 0.1 * eps]))
    values = (X**2).sum(axis=1)
    opt.tell(X, values)
    u = centered_ranks(values)
    g = ((u[:3] - u[3:]) / (6 * 0.1)) @ eps
    np.testing.assert_allclose(opt.x, x0 - 0.2 * g, rtol=1e-13)  # summation order


def test_weight_decay_and_decaying_rate():
    x0 = np.ones(4)
    plain = dfo.make_optimizer("es", x0, seed=0, popsize=4, step_rule="sgd", learning_rate=0.1)
    decayed = dfo.make_optimizer(
        "es", x0, seed=0, popsize=4, step_rule="sgd", learning_rate=0.1, weight_decay=0.5
    )
    for opt in (plain, decayed):
        X = opt.ask()
        opt.tell(X, np.zeros(4))  # ties: ranks by order, the same for both
    np.testing.assert_allclose(decayed.x - plain.x, -0.1 * 0.5 * x0, rtol=1e-12)
    opt = dfo.make_optimizer("es", x0, seed=0, alpha=0.602, A=9.0, learning_rate=1.0)
    opt.k = 10
    assert opt._rate() == pytest.approx((10 / 20) ** 0.602)


def test_converges_and_is_reproducible():
    def fun(x):
        return float(np.sum((x - 1) ** 2))

    runs = [
        dfo.minimize(
            fun, np.zeros(10), method="es", budget=8000, seed=1, sigma=0.1, learning_rate=0.05
        )
        for _ in range(2)
    ]
    assert runs[0].fun < 0.05 * fun(np.zeros(10))
    np.testing.assert_array_equal(runs[0].x, runs[1].x)


def test_float32_population_through_minimize():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.integers(0, 3, size=60)
    net = dfo.MLP([4, 5, 3])
    obj = dfo.NetworkObjective(net, X, y, dtype="float32")
    theta = net.init_params(0).astype(np.float64)
    opt = dfo.make_optimizer("es", theta, seed=0, dtype="float32")
    assert opt.ask().dtype == np.float32
    res = dfo.minimize(obj, theta, method="es", budget=400, seed=0, learning_rate=0.05)
    assert res.options["dtype"] == "float32" and res.dtype == "float32"
    assert res.fun < obj(theta)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"popsize": 5}, "even"),
        ({"popsize": 0}, "popsize"),
        ({"sigma": -1.0}, "sigma"),
        ({"alpha": -0.1}, "alpha"),
        ({"weight_decay": np.inf}, "weight_decay"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_bad_options(options, match):
    calls = []

    def f(x):
        calls.append(1)
        return 0.0

    with pytest.raises(InvalidOptionError, match=match):
        dfo.minimize(f, np.zeros(3), method="es", budget=20, **options)
    assert not calls


def test_noise_table_is_rebuilt_after_pickling():
    import pickle

    opt = dfo.make_optimizer("es", np.ones(50), seed=4, popsize=6, noise_table=10_000)
    X = opt.ask()
    clone = pickle.loads(pickle.dumps(opt))
    assert clone._table is None and len(pickle.dumps(opt)) < 8 * 10_000 / 2
    values = (X**2).sum(axis=1)
    opt.tell(X, values)
    clone.tell(X, values)
    np.testing.assert_array_equal(opt.x, clone.x)
    assert opt.table_size == 10_000 and dfo.make_optimizer("es", np.ones(800)).table_size >= 1600


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_population_and_step_bit_for_bit_against_the_formulas(dtype):
    # the population written in place and the step from one sort equal the formulas
    # x +- sigma eps_j and -lr (u^+ - u^-) / (popsize sigma) @ eps, written out
    rng = np.random.default_rng(7)
    x0, k, sigma, lr = rng.normal(size=9), 10, 0.3, 0.2
    opt = dfo.make_optimizer(
        "es", x0, seed=5, popsize=k, sigma=sigma, learning_rate=lr, step_rule="sgd", dtype=dtype
    )
    X = opt.ask()
    eps = perturbations(noise_table(opt.table_seed, opt.table_size, dtype), opt.offsets, 9)
    x, s = x0.astype(dtype), np.asarray(sigma, dtype)
    np.testing.assert_array_equal(X, np.vstack([x + s * eps, x - s * eps]), strict=True)
    values = np.round(rng.normal(size=k), 1)  # ties among them
    opt.tell(X, values)
    u = centered_ranks(values)
    w = ((u[: k // 2] - u[k // 2 :]) / (k * sigma)).astype(dtype)
    np.testing.assert_array_equal(opt.x, x0 + -lr * (w @ eps).astype(np.float64))
    assert opt.last_value == np.mean(values)


@pytest.mark.parametrize(
    "values",
    [
        [1e308, 1.5e308, 1e308, 1.2e308],  # partial sums overflow: the mean does not
        [2.0, np.nan, -np.inf, 1.0],  # non-finite: ranked worst, left out of the mean
        [np.inf, 3.0, np.nan, 3.0],
    ],
)
def test_extreme_values_rank_and_average_like_the_reference(values):
    values = np.array(values)
    opt = dfo.make_optimizer("es", np.zeros(3), seed=0, popsize=4, step_rule="sgd")
    X = opt.ask()
    eps = perturbations(noise_table(opt.table_seed, opt.table_size), opt.offsets, 3)
    opt.tell(X, values)
    u = centered_ranks(values)
    g = ((u[:2] - u[2:]) / (4 * opt.sigma)) @ eps
    np.testing.assert_array_equal(opt.x, -0.03 * g)
    finite = values[np.isfinite(values)]
    assert opt.last_value == pytest.approx(np.sum(finite / finite.size), rel=1e-15)


@pytest.mark.parametrize(("table", "stride"), [(2**20, 50), (120, 17)])
def test_directions_of_an_iteration_are_spaced_slices_of_the_table(table, stride):
    # side by side (disjoint) when m n entries fit in the table, else evenly spaced
    opt = dfo.make_optimizer("es", np.zeros(50), seed=2, popsize=10, noise_table=table)
    assert opt.stride == stride
    for _ in range(3):
        X = opt.ask()
        start = opt.offsets[0]
        np.testing.assert_array_equal(opt.offsets, start + stride * np.arange(5))
        assert 0 <= start and opt.offsets[-1] + 50 <= opt.table_size
        eps = perturbations(noise_table(opt.table_seed, opt.table_size), opt.offsets, 50)
        np.testing.assert_array_equal(
            X, np.vstack([opt.x + opt.sigma * eps, opt.x - opt.sigma * eps])
        )
        opt.tell(X, np.arange(10.0))


def test_starts_drawn_ahead_continue_after_pickling():
    import pickle

    from dfo.optimizers.es import STARTS_PER_DRAW

    opt = dfo.make_optimizer("es", np.ones(5), seed=1, popsize=4, noise_table=1000)
    for _ in range(STARTS_PER_DRAW + 3):  # past the first draw of starts
        X = opt.ask()
        opt.tell(X, (X**2).sum(axis=1))
    clone = pickle.loads(pickle.dumps(opt))
    starts = []
    for a in (opt, clone):
        starts.append([])
        for _ in range(STARTS_PER_DRAW):  # through the next draw
            X = a.ask()
            a.tell(X, (X**2).sum(axis=1))
            starts[-1].append(a.offsets[0])
    assert starts[0] == starts[1] and len(set(starts[0])) > 200
    np.testing.assert_array_equal(opt.x, clone.x)
