"""The ask/tell contract of every registered method (dfo/optimizers/base.py).

Every method joins these tests by being registered: the documented loop ends by
itself within the budget, misuse raises AskTellError and changes nothing, and the
caller's arrays stay the caller's.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import told

import dfo
from dfo.exceptions import AskTellError, AskTellShapeError, InvalidOptionError, ShapeError
from dfo.result import Status

DIM = 3
ASK_TELL = dfo.methods()  # every method is ask/tell
BUDGETS = [1, 2, DIM, DIM + 1, 50, 500]


class Counting:
    """The test's own counter: how many points the function saw."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: np.ndarray) -> float:
        self.calls += 1
        return float(np.sum((x - 0.3) ** 2))


def drive(opt: dfo.Optimizer, f: Counting, limit: int = 100_000) -> int:
    """The documented loop; returns the number of rounds (a guard against a hang)."""
    rounds = 0
    while not opt.stop():
        X = opt.ask()
        values = [f(x) for x in X]
        opt.tell(X, values, told(opt, 2 * (X - 0.3)))
        rounds += 1
        assert rounds < limit, "the loop did not end by itself"
    return rounds


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("method", ASK_TELL)
def test_documented_loop_ends_by_itself_within_the_budget(method, budget):
    f = Counting()
    opt = dfo.make_optimizer(method, np.full(DIM, 0.8), seed=0, budget=budget)
    drive(opt, f)
    assert f.calls == opt.nfev <= budget
    reasons = opt.stop()
    assert reasons, "stop() must name why"
    res = opt.result()
    if list(reasons) == ["budget"]:
        # nothing told when the first ask needs more than the budget: no value found
        assert res.status is (Status.BUDGET if f.calls else Status.NONFINITE)
        assert f"budget exhausted: {f.calls} of {budget} evaluations spent" in res.message
    else:  # the method stopped by itself (converged, gave up), perhaps at the budget
        assert res.status in (Status.CONVERGED, Status.NONFINITE)
    assert res.nfev == f.calls


@pytest.mark.parametrize("method", ASK_TELL)
def test_result_mid_run_says_in_progress(method):
    opt = dfo.make_optimizer(method, np.full(DIM, 0.8), seed=0, budget=1000)
    f = Counting()
    for _ in range(2):
        X = opt.ask()
        opt.tell(X, [f(x) for x in X], told(opt, 2 * (X - 0.3)))
    res = opt.result()
    assert res.status is Status.RUNNING and not res.success
    assert res.message.startswith(f"in progress: 2 iterations, {f.calls} evaluations of 1000")


@pytest.mark.parametrize("method", ASK_TELL)
def test_misuse_raises_ask_tell_error_and_changes_nothing(method):
    opt = dfo.make_optimizer(method, np.full(DIM, 0.8), seed=1, budget=1000)

    def grads(X):
        return told(opt, 2 * X)

    with pytest.raises(AskTellError, match="tell without a pending ask"):
        opt.tell(np.zeros((1, DIM)), [0.0], [0.0])  # tell before ask
    X = opt.ask()
    k = X.shape[0]
    values = np.sum(X**2, axis=1)
    with pytest.raises(AskTellShapeError, match=rf"values must have shape \({k},\)"):
        opt.tell(X, values[:-1] if k > 1 else np.zeros(2), grads(X))  # wrong number
    with pytest.raises(AskTellShapeError):
        opt.tell(X[:, :2], values, grads(X))  # wrong dimension
    if opt.needs_gradient:
        with pytest.raises(AskTellShapeError):
            opt.tell(X, values, grads(X)[:, :2])  # gradients of the wrong dimension
    other = X + 1.0
    with pytest.raises(AskTellError, match="other points than the last ask returned"):
        opt.tell(other, values, grads(other))
    assert opt.nit == 0 and opt.nfev == 0
    np.testing.assert_array_equal(opt.ask(), X)  # the same points, still pending
    opt.tell(X.copy(), values, grads(X))  # equal points, another array: accepted
    with pytest.raises(AskTellError, match="tell without a pending ask"):
        opt.tell(X, values, grads(X))  # twice
    assert opt.nit == 1 and opt.nfev == k
    X2 = opt.ask()  # still usable
    opt.tell(X2, np.sum(X2**2, axis=1), grads(X2))
    assert opt.nit == 2


def test_ask_tell_errors_are_value_and_runtime_errors():
    assert issubclass(AskTellError, ValueError) and issubclass(AskTellError, RuntimeError)
    assert issubclass(AskTellShapeError, AskTellError) and issubclass(
        AskTellShapeError, ShapeError
    )


@pytest.mark.parametrize("method", ASK_TELL)
def test_tell_beyond_the_budget_is_refused(method):
    opt = dfo.make_optimizer(method, np.full(DIM, 0.8), seed=0, budget=1)
    X = opt.ask()
    if X.shape[0] <= 1:
        opt.tell(X, [0.0], told(opt, np.ones_like(X)))  # not stationary: the run goes on
        X = opt.ask()
    with pytest.raises(AskTellError, match="would exceed the budget"):
        opt.tell(X, np.zeros(X.shape[0]), told(opt, np.zeros_like(X)))


@pytest.mark.parametrize("method", ASK_TELL)
def test_ask_returns_copies_and_x0_is_untouched(method):
    x0 = np.full(DIM, 0.8)
    opt = dfo.make_optimizer(method, x0, seed=0, budget=100)
    X = opt.ask()
    X[:] = 123.0  # the caller's array
    fresh = opt.ask()
    assert not np.any(fresh == 123.0)  # a changed copy is not handed out again
    opt.tell(X, np.zeros(X.shape[0]), told(opt, np.zeros_like(X)))
    assert not np.any(opt.best_x == 123.0)
    rec = opt.recommend()
    rec[:] = -5.0
    assert not np.any(opt.recommend() == -5.0)
    np.testing.assert_array_equal(x0, np.full(DIM, 0.8))


class Smooth(dfo.Objective):
    """A smooth test function with a gradient; ``overwrite`` makes it overwrite its input."""

    has_gradient = True

    def __init__(self, overwrite: bool) -> None:
        super().__init__(DIM)
        self.overwrite = overwrite

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        values = np.sum((X - 0.3) ** 2, axis=1) + 0.1 * np.sum(np.sin(3 * X), axis=1)
        if self.overwrite:
            X[:] = 123.0  # after reading it (nothing forbids it)
        return values

    def _value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        value = float(np.sum((x - 0.3) ** 2) + 0.1 * np.sum(np.sin(3 * x)))
        grad = 2 * (x - 0.3) + 0.3 * np.cos(3 * x)
        if self.overwrite:
            x[:] = 123.0
        return value, grad


def plain(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


@pytest.mark.parametrize("method", dfo.methods())
def test_an_objective_that_overwrites_its_input_changes_nothing(method):
    x0 = np.full(DIM, 0.8)
    res = dfo.minimize(Smooth(overwrite=True), x0, method=method, budget=200, seed=4)
    ref = dfo.minimize(Smooth(overwrite=False), x0, method=method, budget=200, seed=4)
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.fun == ref.fun and res.nfev == ref.nfev and res.message == ref.message
    np.testing.assert_array_equal(res.history["best"], ref.history["best"])
    np.testing.assert_array_equal(x0, np.full(DIM, 0.8))


@pytest.mark.parametrize("budget", [20.0, np.int64(20), np.float32(20.0)])
def test_one_budget_rule_everywhere(budget):
    res = dfo.minimize(plain, np.ones(2), method="random-search", budget=budget, seed=0)
    assert res.nfev <= 20
    opt = dfo.make_optimizer("random-search", np.ones(2), budget=budget)
    assert opt.budget == 20 and isinstance(opt.budget, int)
    for bad in (20.5, 0, True, "20"):
        with pytest.raises((ValueError, TypeError), match="budget must be a positive integer"):
            dfo.make_optimizer("random-search", np.ones(2), budget=bad)
        with pytest.raises((ValueError, TypeError), match="budget must be a positive integer"):
            dfo.minimize(plain, np.ones(2), method="random-search", budget=bad)


def test_max_iter_and_target_are_stop_reasons():
    opt = dfo.make_optimizer("cma-es", np.ones(2), seed=0, max_iter=3)
    f = Counting()
    drive(opt, f)
    assert opt.nit == 3 and "max_iter" in opt.stop()
    opt = dfo.make_optimizer("cma-es", np.ones(2), seed=0, target=0.5)
    drive(opt, Counting())
    assert opt.best_f <= 0.5 and "target" in opt.stop()
    with pytest.raises(InvalidOptionError, match="max_iter must be a positive integer"):
        dfo.make_optimizer("cma-es", np.ones(2), max_iter=0)


def test_a_final_minus_inf_does_not_replace_a_finite_best():
    calls = []

    def f(x):
        calls.append(1)
        return float(x @ x) if len(calls) <= 8 else -np.inf  # the final evaluation: -inf

    # 4 iterations of 2 evaluations, then the final evaluation of the iterate
    res = dfo.minimize(f, np.ones(2), method="spsa", budget=11, seed=0, a=0.1, c=0.01)
    assert len(calls) == 9 and res.nfev == 9
    assert np.isfinite(res.fun) and res.success and res.n_nonfinite == 1


def test_ci_runs_the_readme_test_line_with_lint_and_mypy():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    line = next(
        ln for ln in readme.splitlines() if ln.startswith("python3 -m venv") and "pytest" in ln
    )
    assert "python -m mypy dfo" in line
    assert "python -m ruff check ." in line and "python -m ruff format --check ." in line
    assert line in (root / ".ci" / "run").read_text().splitlines()
