"""The run loop: Result fields, history, callbacks, limits, progress, executors, resume."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import needs_derivatives

import dfo
from dfo import problems
from dfo.optimizers import get_method
from dfo.result import HISTORY_FIELDS, Result, Status

METHODS = dfo.methods()
ASK_TELL = METHODS  # every method is ask/tell


class Recording:
    """Records every value the objective returned, in order (an independent log)."""

    def __init__(self, objective):
        self.objective = objective
        self.values: list[float] = []

    def __call__(self, x):
        value = float(self.objective(x))
        self.values.append(value)
        return value


def _objective(method, dim=3, recording=None):
    base = problems.get("rosenbrock", dim)
    fun = recording or base
    if needs_derivatives(method):
        return dfo.as_objective(fun, dim=dim, grad=lambda x: base.value_and_grad(x)[1])
    return dfo.as_objective(fun, dim=dim)


@pytest.mark.parametrize("method", METHODS)
def test_result_has_scipys_fields_and_ours(method):
    res = dfo.minimize(_objective(method), np.zeros(3), method=method, budget=200, seed=0)
    assert isinstance(res, Result) and isinstance(res, dict)
    for key in ("x", "fun", "nfev", "ngev", "nit", "success", "status", "message"):
        assert res[key] is getattr(res, key)
    assert isinstance(res.x, np.ndarray) and res.x.shape == (3,)
    assert isinstance(res.fun, float) and isinstance(res.message, str) and res.message
    assert isinstance(res.success, bool) and isinstance(res.status, Status)
    assert res.method == method
    assert set(res.options) <= set(dfo.optimizers.method_options(method))
    assert res.fun == problems.get("rosenbrock", 3)(res.x)
    with pytest.raises(AttributeError):
        _ = res.no_such_field


@pytest.mark.parametrize("method", METHODS)
def test_history_is_consistent_with_an_independent_log(method):
    log = Recording(problems.get("rosenbrock", 3))
    res = dfo.minimize(
        _objective(method, recording=log), np.zeros(3), method=method, budget=300, seed=0
    )
    h = res.history
    assert set(h) == set(HISTORY_FIELDS)
    assert len(h["nit"]) == res.nit and np.array_equal(h["nit"], np.arange(1, res.nit + 1))
    assert h["nfev"].dtype == np.int64 and np.all(np.diff(h["nfev"]) > 0)
    assert h["nfev"][-1] <= res.nfev == len(log.values)
    assert np.all(np.diff(h["time"]) >= 0) and h["time"][0] >= 0
    # "best" is the lowest value the function returned up to that point
    running_min = np.minimum.accumulate(log.values)
    np.testing.assert_array_equal(h["best"], running_min[h["nfev"] - 1])
    if get_method(method).needs_gradient:
        np.testing.assert_array_equal(h["ngev"], h["nit"])
    else:
        assert not h["ngev"].any()


def test_value_column_is_what_the_method_reports():
    # random search reports the best value of each generation
    log = Recording(problems.get("sphere", 2))
    res = dfo.minimize(log, np.ones(2), method="random-search", budget=60, seed=0, popsize=6)
    per_generation = np.array(log.values[: 6 * res.nit]).reshape(res.nit, 6).min(axis=1)
    np.testing.assert_array_equal(res.history["value"], per_generation)


def test_result_prints_readably():
    res = dfo.minimize(problems.get("sphere", 50), np.ones(50), method="spsa", budget=100, seed=0)
    text = repr(res)
    assert str(res) == text
    lines = text.splitlines()
    for key in ("method", "success", "status", "message", "fun", "x", "nfev", "ngev", "nit"):
        assert any(line.strip().startswith(f"{key}:") for line in lines), key
    assert "BUDGET" in text and "spsa" in text
    assert "..." in text  # a 50-vector is abbreviated
    assert f"history: {res.nit} iterations" in text
    assert len(lines) < 25 and max(len(line) for line in lines) < 400


@pytest.mark.parametrize("method", METHODS)
def test_callback_gets_the_intermediate_result_every_iteration(method):
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result)

    res = dfo.minimize(
        _objective(method), np.zeros(3), method=method, budget=150, seed=0, callback=callback
    )
    assert len(seen) == res.nit > 0
    assert all(isinstance(r, Result) for r in seen)
    assert [r.nit for r in seen] == list(range(1, res.nit + 1))
    np.testing.assert_array_equal([r.nfev for r in seen], res.history["nfev"])
    np.testing.assert_array_equal([r.fun for r in seen], res.history["best"])


@pytest.mark.parametrize("method", ["spsa", "cma-es", "nelder-mead"])
def test_a_callback_with_next_nfev_is_called_once_the_evaluations_reach_it(method):
    class Every50:
        next_nfev = 50

        def __init__(self):
            self.seen = []

        def __call__(self, intermediate_result):
            self.seen.append(intermediate_result.nfev)
            self.next_nfev = intermediate_result.nfev + 50

    every = Every50()
    res = dfo.minimize(
        _objective(method), np.zeros(3), method=method, budget=400, seed=0, callback=every
    )
    nfev = list(res.history["nfev"])
    # the first iteration at or past each request, and no other
    expected, due = [], 50
    for n in nfev:
        if n >= due:
            expected.append(n)
            due = n + 50
    assert every.seen == expected and len(expected) >= 3
    plain = dfo.minimize(_objective(method), np.zeros(3), method=method, budget=400, seed=0)
    np.testing.assert_array_equal(res.x, plain.x)  # the callback changes nothing


@pytest.mark.parametrize("method", METHODS)
def test_stop_iteration_in_the_callback_ends_the_run_cleanly(method):
    def stop_at_five(intermediate_result):
        if intermediate_result.nit == 5:
            raise StopIteration

    res = dfo.minimize(
        _objective(method),
        np.zeros(3),
        method=method,
        budget=10_000,
        seed=0,
        callback=stop_at_five,
    )
    assert res.status == Status.CALLBACK and res.success
    assert res.nit == 5 and "callback" in res.message
    assert np.isfinite(res.fun) and res.fun <= res.history["best"][-1]


@pytest.mark.parametrize("method", METHODS)
def test_callback_of_xk_gets_a_copy_of_the_best_point_as_scipy_does(method):
    # scipy >= 1.11: a callback whose parameter is not named intermediate_result gets xk
    points, results = [], []
    res = dfo.minimize(
        _objective(method),
        np.zeros(3),
        method=method,
        budget=150,
        seed=0,
        callback=points.append,
    )
    again = dfo.minimize(
        _objective(method),
        np.zeros(3),
        method=method,
        budget=150,
        seed=0,
        callback=lambda intermediate_result: results.append(intermediate_result),
    )
    assert len(points) == res.nit == again.nit > 0
    assert all(isinstance(p, np.ndarray) and p.shape == (3,) for p in points)
    np.testing.assert_array_equal(points, [r.x for r in results])
    assert all(p is not r.x for p, r in zip(points, results, strict=True))
    # the best point so far: its value is the history's running best
    f = problems.get("rosenbrock", 3)
    np.testing.assert_allclose([f(p) for p in points], res.history["best"], rtol=1e-12)

    def stop_at_three(xk):
        if len(points) >= 3:
            raise StopIteration
        points.append(xk)

    points.clear()
    res = dfo.minimize(
        _objective(method),
        np.zeros(3),
        method=method,
        budget=10_000,
        seed=0,
        callback=stop_at_three,
    )
    assert res.status == Status.CALLBACK and res.nit == 4


@pytest.mark.parametrize("method", METHODS)
def test_history_x_records_the_recommendation_after_every_iteration(method):
    recs = []

    def callback(intermediate_result):
        recs.append(np.array(intermediate_result.recommendation))

    plain = dfo.minimize(_objective(method), np.zeros(3), method=method, budget=150, seed=0)
    res = dfo.minimize(
        _objective(method),
        np.zeros(3),
        method=method,
        budget=150,
        seed=0,
        history_x=True,
        callback=callback,
    )
    assert "x" not in plain.history
    assert res.history["x"].shape == (res.nit, 3) and res.history["x"].dtype == np.float64
    np.testing.assert_array_equal(res.history["x"], recs)
    # recording the path changes nothing else
    np.testing.assert_array_equal(res.x, plain.x)
    for name in HISTORY_FIELDS:
        if name != "time":
            np.testing.assert_array_equal(res.history[name], plain.history[name])


def test_history_x_must_be_a_flag():
    with pytest.raises(TypeError, match="history_x must be True or False; got 'yes'"):
        dfo.minimize(lambda x: float(x @ x), np.zeros(2), history_x="yes")


def test_other_callback_errors_propagate():
    def broken(res):
        raise RuntimeError("bad callback")

    with pytest.raises(RuntimeError, match="bad callback"):
        dfo.minimize(problems.get("sphere", 2), np.ones(2), method="cma-es", callback=broken)


@pytest.mark.parametrize("method", METHODS)
def test_max_iter(method):
    res = dfo.minimize(_objective(method), np.zeros(3), method=method, budget=10_000, max_iter=7)
    assert res.nit == 7 and res.status == Status.MAX_ITER and res.success


def test_progress_bar_changes_nothing_but_stderr(capsys):
    kw = {"method": "cma-es", "budget": 300, "seed": 4}
    quiet = dfo.minimize(problems.get("sphere", 3), np.ones(3), **kw)
    assert capsys.readouterr().err == ""
    shown = dfo.minimize(problems.get("sphere", 3), np.ones(3), progress=True, **kw)
    assert "cma-es" in capsys.readouterr().err  # tqdm writes its bar to stderr
    np.testing.assert_array_equal(quiet.x, shown.x)


def test_plain_callable_and_batched_callable():
    res = dfo.minimize(lambda x: float(np.sum((x - 2.0) ** 2)), [0.0, 0.0], method="nelder-mead")
    np.testing.assert_allclose(res.x, [2.0, 2.0], atol=1e-4)
    calls = []

    def batched(X):
        calls.append(X.shape[0])
        return np.sum((X - 2.0) ** 2, axis=1)

    obj = dfo.as_objective(batched, dim=2, batched=True)
    kw = {"popsize": 8, "restarts": 0}  # one population size
    res = dfo.minimize(obj, [0.0, 0.0], method="cma-es", budget=600, seed=0, **kw)
    assert set(calls) <= {8, 1} and sum(calls) == res.nfev  # one call per generation


@pytest.mark.parametrize(
    ("budget", "exc"), [(0, ValueError), (-5, ValueError), (2.5, TypeError), ("10", TypeError)]
)
def test_bad_budget(budget, exc):
    with pytest.raises(exc, match="budget"):
        dfo.minimize(problems.get("sphere", 2), np.ones(2), budget=budget)


def test_integral_float_budget_is_accepted():
    res = dfo.minimize(problems.get("sphere", 2), np.ones(2), method="random-search", budget=60.0)
    assert res.nfev <= 60


@pytest.mark.parametrize(
    ("x0", "exc"),
    [([np.nan, 1.0], ValueError), (np.zeros((2, 2)), dfo.ShapeError), ([], dfo.ShapeError)],
)
def test_bad_x0(x0, exc):
    with pytest.raises(exc, match="x0"):
        dfo.minimize(lambda x: 0.0, x0)


def test_gradient_evaluations_are_counted_apart():
    res = dfo.minimize(problems.get("sphere", 3), np.ones(3), method="backprop-sgd", budget=50)
    assert res.ngev == res.nit == 49  # one evaluation is kept for the final iterate
    assert res.nfev == 50


def test_noisy_objective_reports_the_recommendation_with_its_measured_value():
    noisy = problems.Noisy(problems.get("sphere", 4), sigma=0.01)
    res = dfo.minimize(noisy, np.ones(4), method="spsa", budget=401, seed=3, c=0.05)
    assert res.nfev == 401  # 5 calibration pairs, 195 pairs, the recommendation
    # the iterate, not a perturbed point: it is 1 evaluation past the last pair
    assert res.history["nfev"][-1] == 400
    assert abs(res.fun - problems.get("sphere", 4)(res.x)) < 0.1  # its own noisy value


def test_thread_pool_gives_the_same_result():
    obj = problems.get("rosenbrock", 4)
    serial = dfo.minimize(obj, np.zeros(4), method="cma-es", budget=500, seed=1)
    with ThreadPoolExecutor(2) as pool:
        parallel = dfo.minimize(
            obj, np.zeros(4), method="cma-es", budget=500, seed=1, executor=pool
        )
    np.testing.assert_array_equal(serial.x, parallel.x)
    assert serial.nfev == parallel.nfev


@pytest.mark.parametrize("method", ASK_TELL)
def test_resume_from_a_checkpoint_is_bit_identical(method, tmp_path):
    obj = _objective(method)
    kw = {"method": method, "budget": 400, "seed": 2}
    whole = dfo.minimize(obj, np.zeros(3), **kw)
    path = tmp_path / "run.pkl"
    first = dfo.minimize(obj, np.zeros(3), checkpoint=path, checkpoint_every=3, max_iter=10, **kw)
    assert first.status == Status.MAX_ITER and path.exists()
    resumed = dfo.minimize(obj, np.zeros(3), checkpoint=path, resume=True, **kw)
    np.testing.assert_array_equal(resumed.x, whole.x)
    assert resumed.fun == whole.fun or (math.isnan(resumed.fun) and math.isnan(whole.fun))
    assert resumed.nfev == whole.nfev and resumed.nit == whole.nit
