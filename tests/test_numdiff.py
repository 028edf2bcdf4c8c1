"""Finite-difference gradients against closed forms, with cost and batching checks."""

from __future__ import annotations

import numpy as np
import pytest

import dfo.numdiff as numdiff
from dfo.exceptions import GradientNotAvailableError, InvalidOptionError, ShapeError
from dfo.numdiff import (
    fd_gradient,
    fd_probe_block,
    fd_probe_parts,
    fd_probes,
    fd_steps,
    finite_difference,
    gradcheck,
)
from dfo.objective import Objective, as_objective


def sphere_grad(x):
    return 2.0 * x


def rosenbrock(x):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosenbrock_grad(x):
    # closed form, written independently of dfo.problems
    n = x.size
    g = np.zeros(n)
    for i in range(n - 1):
        g[i] += -400.0 * x[i] * (x[i + 1] - x[i] ** 2) - 2.0 * (1.0 - x[i])
        g[i + 1] += 200.0 * (x[i + 1] - x[i] ** 2)
    return g


class Counting(Objective):
    """Sphere that records every evaluate_batch call and the rows it saw."""

    has_gradient = True

    def __init__(self, dim):
        super().__init__(dim)
        self.calls = []

    def _evaluate_batch(self, X):
        self.calls.append(X.copy())
        return np.einsum("ij,ij->i", X, X)

    def _value_and_grad(self, x):
        return float(x @ x), 2.0 * x


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


# -- accuracy ---------------------------------------------------------------------
# Stated tolerances: forward error ~ sqrt(eps) ~ 1.5e-8 relative (we allow 1e-6);
# central error ~ eps^(2/3) ~ 4e-11 relative (we allow 1e-9).


@pytest.mark.parametrize(
    ("fun", "grad"), [(lambda x: float(x @ x), sphere_grad), (rosenbrock, rosenbrock_grad)]
)
def test_accuracy_against_closed_forms(fun, grad, rng):
    for _ in range(3):
        x = rng.uniform(-2, 2, size=8)
        fwd = finite_difference(fun, x, scheme="forward")
        cen = finite_difference(fun, x, scheme="central")
        assert rel_err(fwd.grad, grad(x)) < 1e-6
        assert rel_err(cen.grad, grad(x)) < 1e-9
        # and forward really is the cruder one (its error is O(h), not O(h^2))
        assert rel_err(fwd.grad, grad(x)) > rel_err(cen.grad, grad(x))


def test_forward_error_on_sphere_is_the_step(rng):
    # (|x + h e_i|^2 - |x|^2) / h = 2 x_i + h exactly, up to rounding ~ eps |f| / h
    x = rng.uniform(1, 2, size=5)
    res = finite_difference(lambda v: float(v @ v), x, h=1e-3)
    np.testing.assert_allclose(res.grad - 2 * x, res.step, rtol=1e-8)


def test_large_x_uses_relative_step():
    # at |x| = 1e6 an absolute step of sqrt(eps) would vanish in rounding
    x = np.array([1e6, -3e6])
    res = finite_difference(lambda v: float(v @ v), x, scheme="central")
    assert rel_err(res.grad, 2 * x) < 1e-9
    assert np.all(res.step > 1e-3)


def test_step_is_representable():
    x = np.array([0.1, 1e5, -7.3, 0.0])
    step = fd_steps(x)
    h = np.sqrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(x))
    np.testing.assert_array_equal(step, (x + h) - x)
    assert np.any(step != h)  # rounding really changed some step
    np.testing.assert_array_equal((x + step) - x, step)
    central = fd_steps(x, scheme="central")
    np.testing.assert_allclose(central[0], np.cbrt(np.finfo(float).eps), rtol=1e-6)


# -- cost -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 5, 40])
def test_nfev_counts(n, rng):
    x = rng.normal(size=n)
    f = Counting(n)
    assert finite_difference(f, x).nfev == n + 1
    assert finite_difference(f, x, f0=f(x)).nfev == n
    assert finite_difference(f, x, scheme="central").nfev == 2 * n
    rows = sum(c.shape[0] for c in f.calls)
    assert rows == (n + 1) + n + 2 * n + 1  # the + 1 is the f(x) passed as f0


def test_one_batch_call_and_probe_layout(rng):
    n = 6
    x = rng.normal(size=n)
    f = Counting(n)
    res = finite_difference(f, x)
    assert len(f.calls) == 1
    P = f.calls[0]
    assert P.shape == (n + 1, n)
    np.testing.assert_array_equal(P[0], x)
    np.testing.assert_array_equal(P[1:] - x, np.diag(res.step))
    assert res.fun == float(x @ x)

    f.calls.clear()
    res = finite_difference(f, x, scheme="central")
    assert len(f.calls) == 1 and f.calls[0].shape == (2 * n, n)
    np.testing.assert_array_equal(f.calls[0][:n] - x, np.diag(res.step))
    np.testing.assert_array_equal(f.calls[0][n:] - x, -np.diag(res.step))
    assert res.fun is None


@pytest.mark.parametrize("scheme", ["forward", "central"])
def test_chunking_gives_identical_result(scheme, rng):
    n = 10
    x = rng.normal(size=n)
    whole = finite_difference(Counting(n), x, scheme=scheme)
    f = Counting(n)
    chunked = finite_difference(f, x, scheme=scheme, chunk_size=3)
    rows = whole.nfev
    assert [c.shape[0] for c in f.calls] == [3] * (rows // 3) + ([rows % 3] if rows % 3 else [])
    np.testing.assert_array_equal(chunked.grad, whole.grad)
    assert chunked.nfev == whole.nfev


def test_default_chunk_bounded_by_memory(monkeypatch, rng):
    n = 20
    monkeypatch.setattr(numdiff, "PROBE_BLOCK_BYTES", 8 * n * 4)  # room for 4 rows
    f = Counting(n)
    res = finite_difference(f, rng.normal(size=n))
    assert max(c.shape[0] for c in f.calls) == 4
    assert sum(c.shape[0] for c in f.calls) == res.nfev == n + 1


def test_f0_reuses_known_value(rng):
    x = rng.normal(size=4)
    full = finite_difference(rosenbrock, x)
    given = finite_difference(rosenbrock, x, f0=rosenbrock(x))
    np.testing.assert_array_equal(full.grad, given.grad)
    assert given.fun == full.fun == rosenbrock(x)


def test_stages_agree_with_finite_difference(rng):
    x = rng.normal(size=5)
    for scheme in ("forward", "central"):
        step = fd_steps(x, scheme=scheme)
        P = fd_probes(x, step, scheme=scheme)
        values = np.array([rosenbrock(p) for p in P])
        g = fd_gradient(values, step, scheme=scheme)
        np.testing.assert_array_equal(g, finite_difference(rosenbrock, x, scheme=scheme).grad)
    P = fd_probes(x, fd_steps(x), include_center=False)
    assert P.shape == (5, 5)
    step = fd_steps(x, scheme="central")
    whole = fd_probes(x, step, scheme="central")
    blocks = [fd_probes(x, step, scheme="central", start=a, stop=a + 3) for a in range(0, 9, 3)]
    blocks.append(fd_probes(x, step, scheme="central", start=9))
    np.testing.assert_array_equal(np.vstack(blocks), whole)
    with pytest.raises(InvalidOptionError, match="start"):
        fd_probes(x, step, scheme="central", start=4, stop=11)
    with pytest.raises(ShapeError, match=r"\(6,\)"):
        fd_gradient(np.zeros(4), fd_steps(x))


# -- float32 ----------------------------------------------------------------------


def test_float32_steps_and_result():
    x = np.array([0.5, -1.25, 3.0], dtype=np.float32)

    def f32(v):  # computes in float32, as a float32 model would
        v = v.astype(np.float32)
        return float(np.sum(v * v, dtype=np.float32))

    fwd = finite_difference(f32, x)
    assert fwd.grad.dtype == np.float32 and fwd.step.dtype == np.float32
    eps32 = np.finfo(np.float32).eps
    assert fwd.step[0] == pytest.approx(np.sqrt(eps32), rel=1e-3)
    # forward error ~ sqrt(eps32) ~ 3.5e-4 relative
    assert rel_err(fwd.grad.astype(float), 2.0 * x.astype(float)) < 3e-3
    cen = finite_difference(f32, x, scheme="central")
    assert rel_err(cen.grad.astype(float), 2.0 * x.astype(float)) < 3e-3
    # a float64-sized step does not move a float32 x at all
    with pytest.raises(InvalidOptionError, match="does not move"):
        finite_difference(f32, x, h=1e-9)


# -- gradcheck --------------------------------------------------------------------


def test_gradcheck(rng):
    x = rng.normal(size=7)
    good = as_objective(rosenbrock, dim=7, grad=rosenbrock_grad)
    assert gradcheck(good, x) < 1e-8
    bad = as_objective(rosenbrock, dim=7, grad=lambda v: rosenbrock_grad(v) * 1.01)
    assert gradcheck(bad, x) == pytest.approx(0.01 / 1.01, rel=1e-3)
    zero = as_objective(lambda v: 0.0, dim=3, grad=lambda v: np.zeros(3))
    assert gradcheck(zero, np.ones(3)) == 0.0
    with pytest.raises(GradientNotAvailableError):
        gradcheck(as_objective(rosenbrock, dim=7), x)
    with pytest.raises(GradientNotAvailableError):
        gradcheck(rosenbrock, x)


# -- bad input --------------------------------------------------------------------


def test_bad_input():
    x = np.ones(3)
    with pytest.raises(ShapeError, match=r"shape \(n,\)"):
        finite_difference(rosenbrock, np.ones((2, 3)))
    with pytest.raises(ShapeError):
        finite_difference(Counting(4), x)
    with pytest.raises(InvalidOptionError, match="Did you mean 'central'"):
        finite_difference(rosenbrock, x, scheme="centrl")
    for h in (0.0, -1e-3, np.nan, np.inf):
        with pytest.raises(InvalidOptionError, match="positive"):
            finite_difference(rosenbrock, x, h=h)
    with pytest.raises(ShapeError, match="shape of x"):
        finite_difference(rosenbrock, x, h=[1e-3, 1e-3])
    with pytest.raises(InvalidOptionError, match="chunk_size"):
        finite_difference(rosenbrock, x, chunk_size=0)
    with pytest.raises(ValueError, match="finite"):
        finite_difference(rosenbrock, np.array([1.0, np.nan, 0.0]))
    with pytest.raises(TypeError, match="dtype"):
        finite_difference(rosenbrock, np.array(["a", "b"]))
    # per-coordinate h is accepted
    res = finite_difference(rosenbrock, x, h=[1e-4, 1e-5, 1e-6])
    np.testing.assert_allclose(res.step, [1e-4, 1e-5, 1e-6], rtol=1e-10)


def _written_out(x, step, scheme, include_center=True):
    """The probe matrix row by row: x with one coordinate moved by its step (float64)."""
    x64 = x.astype(np.float64)
    rows = [x64] if scheme == "forward" and include_center else []
    for sign in (1, -1) if scheme == "central" else (1,):
        moved = (x + step if sign > 0 else x - step).astype(np.float64)
        for i in range(x.size):
            row = x64.copy()
            row[i] = moved[i]
            rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("scheme", ["forward", "central"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_probe_blocks_from_the_parts_are_fd_probes_rows(scheme, dtype):
    x = np.linspace(-2.0, 3.0, 7).astype(dtype)
    step = fd_steps(x, scheme=scheme)
    parts = fd_probe_parts(x, step, scheme)
    rows = fd_probes(x, step, scheme=scheme).shape[0]
    for start, stop in [(0, rows), (0, 1), (1, 4), (5, rows), (rows - 1, rows), (3, 3)]:
        block = fd_probe_block(parts, start, stop, scheme=scheme)
        assert block.dtype == np.float64 and block.shape == (stop - start, x.size)
        np.testing.assert_array_equal(block, _written_out(x, step, scheme)[start:stop])
        np.testing.assert_array_equal(block, fd_probes(x, step, scheme=scheme)[start:stop])
    if scheme == "forward":  # without the centre
        no_centre = fd_probe_block(parts, 2, 5, scheme=scheme, include_center=False)
        np.testing.assert_array_equal(no_centre, _written_out(x, step, scheme, False)[2:5])
