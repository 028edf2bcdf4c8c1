"""Reliability: non-finite values, failing objectives, Ctrl-C, input checks, numerics.

Checkpoints and resuming are in ``test_checkpoint.py``; generated inputs in
``test_properties.py``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import told
from scipy.special import logsumexp, softmax

import dfo
from dfo.exceptions import (
    GradientNotAvailableError,
    InvalidOptionError,
    ObjectiveOutputError,
    ShapeError,
)
from dfo.optimizers.random_search import RandomSearch
from dfo.result import Status

METHODS = dfo.methods()
ASK_TELL = METHODS  # every method is ask/tell
GRADIENT_STEP = ["backprop-sgd", "fd-sgd", "spsa"]
RANKING = ["cma-es", "nelder-mead", "random-search"]


class SimulationCrashed(RuntimeError):
    """An error of the user's objective."""


# -- 1. non-finite values -------------------------------------------------------------
CENTER = np.array([0.3, -0.2, 0.1, 0.4, -0.5])
START = CENTER + np.array([1.0, 0.5, -0.5, 0.5, 0.5])
# the nan wedge is centred on the direction opposite the start, seen from the minimizer
AXIS = math.atan2(CENTER[1] - START[1], CENTER[0] - START[0])


def in_wedge(D: np.ndarray) -> np.ndarray:
    """Rows of ``D = X - CENTER`` whose angle in the first two coordinates is within
    60 degrees of AXIS: a third of the directions around the minimizer."""
    angle = np.arctan2(D[..., 1], D[..., 0]) - AXIS
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    return np.abs(angle) < np.pi / 3


class WedgeSphere:
    """``||x - CENTER||^2``, nan (or an exception) on a third of every ball around
    the minimizer.

    Counts the nan values it returns (the exceptions it raises), independently of dfo.
    """

    def __init__(self, fail: bool = False) -> None:
        self.n_nan = 0
        self.fail = fail

    def __call__(self, x: np.ndarray) -> float:
        d = x - CENTER
        if in_wedge(d):
            self.n_nan += 1
            if self.fail:
                raise SimulationCrashed("in the wedge")
            return math.nan
        return float(d @ d)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * (x - CENTER)


def test_wedge_is_a_third_of_the_space():
    # an isotropic sample: a third of every ball around the minimizer is nan
    D = np.random.default_rng(0).standard_normal((200_000, 5))
    assert abs(in_wedge(D).mean() - 1 / 3) < 0.005  # 5 standard errors


# max |x - CENTER| each method must reach; random search has a fixed step size
NAN_TOL = {
    "backprop-sgd": 1e-6,
    "fd-sgd": 1e-6,
    "cma-es": 1e-5,
    "nelder-mead": 1e-5,
    "spsa": 2e-2,
    "random-search": 0.1,
    "forward-gradient": 1e-6,
    "es": 1.5e-2,  # default sigma 0.02: it resolves about a third of that
    "auto": 1e-5,  # a black box (no gradient given): it chooses cma-es
    "powell": 1e-5,
    "cobyqa": 1e-5,
    "fd-bfgs": 1e-5,
    "backprop-bfgs": 1e-5,
}
# a learning rate that overshoots the minimizer into the nan wedge on the first step
NAN_OPTIONS = {"backprop-sgd": {"learning_rate": 0.9}, "fd-sgd": {"learning_rate": 0.9}}
# L-BFGS-B on the exact gradient of a sphere steps onto the minimizer along the ray from
# the start: it never meets the wedge, so there is nothing to test
NAN_METHODS = [m for m in METHODS if m != "backprop-bfgs"]


@pytest.mark.parametrize("method", NAN_METHODS)
def test_nan_on_a_third_of_the_space_still_converges(method):
    f = WedgeSphere()
    obj = dfo.as_objective(f, dim=5, grad=None if method == "auto" else f.grad)
    res = dfo.minimize(
        obj, START, method=method, budget=2000, seed=1, **NAN_OPTIONS.get(method, {})
    )
    assert res.success, res.message
    assert np.max(np.abs(res.x - CENTER)) < NAN_TOL[method]
    n_nan = f.n_nan
    assert n_nan > 0 and res.n_nonfinite == n_nan
    assert np.isfinite(res.fun) and res.fun == f(res.x)
    assert f"{res.n_nonfinite} of {res.nfev} evaluations were not finite" in res.message
    assert np.all(np.isfinite(res.history["best"][-1:]))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("method", METHODS)
def test_all_nonfinite_ends_unsuccessfully(method, bad):
    obj = dfo.as_objective(lambda x: bad, dim=3, grad=lambda x: np.full(3, bad))
    res = dfo.minimize(obj, np.ones(3), method=method, budget=600, seed=0)
    assert not res.success
    assert res.status == Status.NONFINITE
    assert res.message.startswith("no finite value was found")
    assert res.n_nonfinite == res.nfev > 0
    assert np.all(np.isfinite(res.x))
    if method != "random-search":  # the others notice and stop early
        assert res.nfev < 600


@pytest.mark.parametrize("method", RANKING)
def test_ranking_methods_treat_nonfinite_as_worst(method):
    # nan or -inf where x[0] < 0.5: the constrained minimum of |x|^2 is x = (0.5, 0, 0).
    # A method that ranked nan (or -inf) as good would end inside the nan region.
    def f(x):
        if x[0] < 0.5:
            return math.nan if x[1] > 0 else -math.inf
        return float(x @ x)

    res = dfo.minimize(f, np.array([2.0, 1.0, -1.0]), method=method, budget=1500, seed=2)
    assert res.success
    assert res.x[0] >= 0.5
    tol = 0.05 if method == "random-search" else 1e-3
    assert abs(res.fun - 0.25) < tol
    assert res.n_nonfinite > 0


@pytest.mark.parametrize("method", GRADIENT_STEP)
def test_gradient_estimators_never_write_nan_into_the_parameters(method):
    rng = np.random.default_rng(3)
    opt = dfo.make_optimizer(method, np.ones(4), seed=0, budget=2000)
    for _ in range(300):
        if opt.stop():
            break
        X = opt.ask()
        assert np.all(np.isfinite(X))
        values = (X**2).sum(axis=1)
        grads = 2 * X
        hit = rng.random(X.shape[0]) < 0.2  # a fifth of the values are nan or inf
        values[hit] = rng.choice([np.nan, np.inf, -np.inf], size=int(hit.sum()))
        grads[rng.random(X.shape[0]) < 0.1] = np.nan
        opt.tell(X, values, told(opt, grads))
        assert np.all(np.isfinite(opt.recommend()))
        assert np.all(np.isfinite(opt.best_x)) and not np.isnan(opt.best_f)
    assert opt.n_nonfinite > 0
    assert np.sum(opt.recommend() ** 2) < 4.0  # and it still went downhill


def test_nonfinite_gradient_counts_and_shrinks_the_step():
    calls = {"bad": 0}

    def grad(x):
        if calls["bad"] < 3:
            calls["bad"] += 1
            return np.full(2, np.nan)
        return 2 * x

    obj = dfo.as_objective(lambda x: float(x @ x), dim=2, grad=grad)
    res = dfo.minimize(obj, np.ones(2), method="backprop-sgd", budget=200, seed=0)
    # 199 iterations (one evaluation is kept for the final iterate), the first three
    # failed: three halvings, then x <- (1 - 2 * 0.1 / 8) x on 196 steps
    assert res.success and res.fun == pytest.approx(2 * 0.975 ** (2 * 196), rel=1e-12)
    assert res.n_nonfinite == 3
    assert "3 failed steps" in res.message


# -- 2. failing objectives -----------------------------------------------------------
def crash_at(n: int, fail_once: bool = False):
    """Sphere that raises at its ``n``-th call (and after, unless ``fail_once``)."""
    state = {"calls": 0, "raised": 0, "first": None}

    def f(x):
        state["calls"] += 1
        if state["calls"] == n or (state["calls"] > n and not fail_once):
            state["raised"] += 1
            if state["first"] is None:
                state["first"] = np.array(x, copy=True)
            raise SimulationCrashed(f"call {state['calls']}")
        return float(np.sum((x - 0.5) ** 2))

    return f, state


def midway(method: str, n: int, budget: int) -> int:
    """``n``, or the last evaluation of a whole run if the method stops before ``n``
    (a quasi-Newton method solves these quadratics in a few gradients)."""
    f, _ = crash_at(10**9)
    obj = dfo.as_objective(f, dim=3, grad=lambda x: 2 * (x - 0.5))
    full = dfo.minimize(obj, np.zeros(3), method=method, budget=budget, seed=0)
    return min(n, full.nfev)


def point_in_note(note: str) -> np.ndarray:
    return np.array([float(t) for t in note.split("x = [")[1].split("]")[0].split()])


@pytest.mark.parametrize("method", METHODS)
def test_objective_error_propagates_with_a_note(method):
    n = midway(method, 30, 500)
    f, state = crash_at(n)
    obj = dfo.as_objective(f, dim=3, grad=lambda x: 2 * (x - 0.5))
    iterations = []
    with pytest.raises(SimulationCrashed, match=f"call {n}") as info:
        dfo.minimize(
            obj,
            np.zeros(3),
            method=method,
            budget=500,
            seed=0,
            callback=lambda intermediate_result: iterations.append(intermediate_result.nit),
        )
    assert type(info.value) is SimulationCrashed
    note = info.value.__notes__[0]
    nit = iterations[-1] if iterations else 0
    assert f"iteration {nit} of method {method!r}" in note
    # the note names the very point that raised (printed to 6 decimals)
    np.testing.assert_allclose(point_in_note(note), state["first"], atol=1e-6)
    assert any("on_error='worst'" in n for n in info.value.__notes__)


def test_error_note_names_the_point_of_a_batch_that_raised():
    raised = []

    def f(x):
        if x[1] > 0.0:  # not the first candidate, which is x0
            raised.append(np.array(x, copy=True))
            raise SimulationCrashed("x[1] > 0")
        return float(x @ x)

    with pytest.raises(SimulationCrashed) as info:
        dfo.minimize(f, np.array([0.9, 0.0]), method="random-search", budget=200, seed=4)
    note = info.value.__notes__[0]
    np.testing.assert_allclose(point_in_note(note), raised[0], atol=1e-6)
    assert "of a batch of" in note


@pytest.mark.parametrize("method", ASK_TELL)
def test_ask_tell_optimizer_stays_usable_after_a_failed_evaluation(method):
    def f(X):
        return np.sum((X - 0.5) ** 2, axis=1)

    def run(fail_at):
        opt = dfo.make_optimizer(method, np.zeros(3), seed=7, budget=1000)
        for i in range(25):
            if opt.stop():  # a quasi-Newton method may converge first
                break
            X = opt.ask()
            if i == fail_at:
                with pytest.raises(SimulationCrashed):
                    raise SimulationCrashed  # the caller's evaluation failed; retry
                assert np.array_equal(opt.ask(), X)  # asking again gives the same points
                X = opt.ask()
            opt.tell(X, f(X), told(opt, 2 * (X - 0.5)))
        return opt

    a, b = run(-1), run(11)
    np.testing.assert_array_equal(a.recommend(), b.recommend())
    assert a.nit == b.nit and a.best_f == b.best_f


@pytest.mark.parametrize("method", ASK_TELL)
def test_minimize_retries_a_failed_run_from_its_checkpoint(method, tmp_path):
    grad = lambda x: 2 * (x - 0.5)  # noqa: E731
    ref_f, _ = crash_at(10**9)
    ref = dfo.minimize(
        dfo.as_objective(ref_f, dim=3, grad=grad), np.zeros(3), method=method, budget=300, seed=5
    )
    f, state = crash_at(min(120, ref.nfev // 2), fail_once=True)
    obj = dfo.as_objective(f, dim=3, grad=grad)
    path = tmp_path / "run.ckpt"
    with pytest.raises(SimulationCrashed):
        dfo.minimize(obj, np.zeros(3), method=method, budget=300, seed=5, checkpoint=path)
    res = dfo.minimize(
        obj, np.zeros(3), method=method, budget=300, seed=5, checkpoint=path, resume=True
    )
    assert state["raised"] == 1
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.fun == ref.fun and res.nfev == ref.nfev and res.nit == ref.nit
    for key in ("nit", "nfev", "value", "best"):
        np.testing.assert_array_equal(res.history[key], ref.history[key])


@pytest.mark.parametrize("method", NAN_METHODS)
def test_on_error_worst_counts_failures_and_goes_on(method):
    f = WedgeSphere(fail=True)  # the simulation crashes on a third of the space
    obj = dfo.as_objective(f, dim=5, grad=None if method == "auto" else f.grad)
    res = dfo.minimize(
        obj,
        START,
        method=method,
        budget=2000,
        seed=1,
        on_error="worst",
        **NAN_OPTIONS.get(method, {}),
    )
    assert res.n_errors == res.n_nonfinite == f.n_nan > 0
    assert f"{res.n_errors} of them raised errors" in res.message
    assert res.success, res.message
    assert np.max(np.abs(res.x - CENTER)) < NAN_TOL[method]


def test_on_error_worst_does_not_hide_a_broken_objective():
    with pytest.raises(ObjectiveOutputError, match="scalar"):
        dfo.minimize(lambda x: x, np.ones(3), method="cma-es", budget=100, on_error="worst")
    with pytest.raises(TypeError, match="real number"):
        dfo.minimize(lambda x: "1.0", np.ones(3), method="spsa", budget=100, on_error="worst")


# -- 3. interruption ------------------------------------------------------------------
def interrupt_at(n: int):
    state = {"calls": 0}

    def f(x):
        state["calls"] += 1
        if state["calls"] == n:
            raise KeyboardInterrupt
        return float(np.sum((x - 0.5) ** 2))

    return f


@pytest.mark.parametrize("method", METHODS)
def test_ctrl_c_returns_the_result_so_far(method):
    n = midway(method, 40, 500)
    obj = dfo.as_objective(interrupt_at(n), dim=3, grad=lambda x: 2 * (x - 0.5))
    res = dfo.minimize(obj, np.zeros(3), method=method, budget=500, seed=0)
    assert res.status == Status.INTERRUPTED and not res.success
    assert "interrupted" in res.message and f"after {res.nit} iterations" in res.message
    assert 0 < res.nit == len(res.history["nit"])
    assert res.nfev <= n
    assert np.isfinite(res.fun) and res.fun < 0.75  # better than the start
    if method in ASK_TELL:  # the interrupted iteration is not counted
        assert res.nfev == res.history["nfev"][-1]


@pytest.mark.parametrize("method", ["cma-es", "nelder-mead"])
def test_ctrl_c_opt_out(method):
    with pytest.raises(KeyboardInterrupt):
        dfo.minimize(interrupt_at(20), np.zeros(3), method=method, catch_interrupt=False)


def test_ctrl_c_while_evaluating_the_final_recommendation():
    # spsa stops at the budget, then evaluates its iterate: the run's last call
    full = dfo.minimize(interrupt_at(-1), np.zeros(3), method="spsa", budget=200, seed=0)
    res = dfo.minimize(interrupt_at(full.nfev), np.zeros(3), method="spsa", budget=200, seed=0)
    assert res.status == Status.INTERRUPTED and not res.success
    assert "final recommendation" in res.message
    assert res.nit == full.nit and res.nfev == full.nfev - 1
    assert np.isfinite(res.fun)


def test_sigint_inside_tell_is_deferred_until_the_step_is_complete(monkeypatch, tmp_path):
    """A real SIGINT arriving while the optimizer updates itself does not tear its state."""
    original = RandomSearch._tell
    fired = {"at": None}

    def tell_with_sigint(self, X, values, grads):
        if self.nit == 6:
            fired["at"] = self.nit
            signal.raise_signal(signal.SIGINT)  # would interrupt here without the guard
        return original(self, X, values, grads)

    monkeypatch.setattr(RandomSearch, "_tell", tell_with_sigint)
    path = tmp_path / "rs.ckpt"
    res = dfo.minimize(
        lambda x: float(x @ x), np.ones(2), method="random-search", seed=1, checkpoint=path
    )
    assert fired["at"] == 6
    assert res.status == Status.INTERRUPTED
    assert res.nit == 7  # the step in progress completed
    assert len(res.history["nit"]) == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    monkeypatch.undo()
    # the state saved at the interruption resumes exactly
    cont = dfo.minimize(
        lambda x: float(x @ x),
        np.ones(2),
        method="random-search",
        seed=1,
        max_iter=30,
        checkpoint=path,
        resume=True,
    )
    ref = dfo.minimize(
        lambda x: float(x @ x), np.ones(2), method="random-search", seed=1, max_iter=30
    )
    np.testing.assert_array_equal(cont.x, ref.x)
    np.testing.assert_array_equal(cont.history["best"], ref.history["best"])


# -- 5. input validation at the edges -------------------------------------------------
class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return float(np.sum(np.asarray(x) ** 2))


BAD_CALLS = [
    # (arguments, exception type, message pattern)
    ({"x0": np.zeros((2, 2))}, ShapeError, r"1-D array; got shape \(2, 2\)"),
    ({"x0": []}, ShapeError, r"non-empty 1-D array; got shape \(0,\)"),
    ({"x0": [1.0, np.nan]}, ValueError, r"finite.*indices \[1\]"),
    ({"x0": [np.inf, 1.0]}, ValueError, r"finite.*indices \[0\]"),
    ({"x0": ["a", "b"]}, TypeError, r"real numbers; got list"),
    ({"x0": [1 + 1j, 0]}, TypeError, r"real numbers"),
    ({"budget": 0}, ValueError, r"budget must be a positive integer; got 0"),
    ({"budget": -5}, ValueError, r"budget must be a positive integer; got -5"),
    ({"budget": 10.5}, TypeError, r"budget must be a positive integer; got 10.5"),
    ({"budget": "100"}, TypeError, r"budget must be a positive integer; got '100'"),
    ({"budget": None}, TypeError, r"budget must be a positive integer; got None"),
    ({"method": "cmaes"}, InvalidOptionError, r"unknown method 'cmaes'.*Did you mean 'cma-es'"),
    ({"method": "nelder_mead"}, InvalidOptionError, r"Did you mean 'nelder-mead'"),
    ({"method": 3}, TypeError, r"method must be a string"),
    ({"method": "spsa", "lr": 0.1}, InvalidOptionError, r"unknown option 'lr'.*valid options"),
    (
        {"method": "fd-sgd", "learning_rat": 0.1},
        InvalidOptionError,
        r"Did you mean 'learning_rate'",
    ),
    ({"method": "fd-sgd", "learning_rate": -0.1}, InvalidOptionError, r"learning_rate.*-0.1"),
    ({"method": "fd-sgd", "learning_rate": 0.0}, InvalidOptionError, r"learning_rate.*0.0"),
    (
        {"method": "cma-es", "popsize": 1},
        InvalidOptionError,
        r"popsize must be None or an integer >= 2",
    ),
    ({"method": "cma-es", "sigma0": -1.0}, InvalidOptionError, r"sigma0.*-1.0"),
    ({"method": "cma-es", "sigma0": np.inf}, InvalidOptionError, r"sigma0.*inf"),
    ({"method": "cma-es", "tolfun": -1.0}, InvalidOptionError, r"tolfun.*-1.0"),
    ({"method": "cma-es", "bounds": (1.0, 0.0)}, InvalidOptionError, r"lower < upper"),
    ({"method": "cma-es", "bounds": ("a", 1)}, InvalidOptionError, r"lower bound.*'a'"),
    ({"method": "cma-es", "bounds": ([0, 0, 0], 1)}, InvalidOptionError, r"shape \(2,\)"),
    ({"x0": [0.5], "bounds": (-1.0, 1.0)}, InvalidOptionError, r"at least 2 variables"),
    ({"method": "random-search", "sigma": np.nan}, InvalidOptionError, r"sigma.*nan"),
    ({"method": "random-search", "bounds": (1, 1)}, InvalidOptionError, r"lower < upper"),
    ({"method": "spsa", "c": 0}, InvalidOptionError, r"c must be a positive number; got 0"),
    ({"method": "spsa", "n_directions": 0}, InvalidOptionError, r"n_directions.*0"),
    ({"method": "spsa", "step_rule": "adamw"}, InvalidOptionError, r"Did you mean 'adam'"),
    ({"method": "fd-sgd", "scheme": "backward"}, InvalidOptionError, r"'forward' or 'central'"),
    ({"method": "nelder-mead", "xatol": np.nan}, InvalidOptionError, r"xatol.*nan"),
    ({"method": "backprop-sgd"}, GradientNotAvailableError, r"needs gradients.*no gradient"),
    ({"seed": -1}, ValueError, r"seed must be None or a non-negative integer; got -1"),
    ({"seed": 1.5}, TypeError, r"seed must be None or a non-negative integer; got float"),
    ({"max_iter": 0}, ValueError, r"max_iter must be a positive integer; got 0"),
    ({"max_time": -1.0}, ValueError, r"max_time must be a positive"),
    ({"on_error": "ignore"}, InvalidOptionError, r"on_error must be 'raise' or 'worst'"),
    ({"callback": 42}, TypeError, r"callback must be callable; got int"),
    ({"executor": object()}, TypeError, r"executor must be a concurrent.futures.Executor"),
    ({"checkpoint_every": 0}, ValueError, r"checkpoint_every must be a positive integer"),
    ({"resume": True}, ValueError, r"resume=True needs checkpoint="),
    ({"resume": "yes"}, TypeError, r"resume must be True or False; got 'yes'"),
    ({"catch_interrupt": None}, TypeError, r"catch_interrupt must be True or False"),
]


@pytest.mark.parametrize(("kwargs", "exc", "pattern"), BAD_CALLS)
def test_bad_input_raises_before_any_evaluation(kwargs, exc, pattern, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = Counting()
    args = {"x0": np.ones(2), "method": "cma-es", "budget": 100, **kwargs}
    x0 = args.pop("x0")
    with pytest.raises(exc, match=pattern):
        dfo.minimize(f, x0, **args)
    assert f.calls == 0
    assert not list(tmp_path.iterdir())  # no checkpoint written either


def test_objective_of_another_dimension():
    f = Counting()
    with pytest.raises(ShapeError, match="x0 has 3 entries; the objective has dimension 2"):
        dfo.minimize(dfo.as_objective(f, dim=2), np.ones(3))
    assert f.calls == 0


def test_make_optimizer_checks_before_asking():
    with pytest.raises(InvalidOptionError, match="Did you mean 'spsa'"):
        dfo.make_optimizer("spssa", np.zeros(2))
    with pytest.raises(InvalidOptionError, match="popsize"):
        dfo.make_optimizer("cma-es", np.zeros(2), popsize=0)
    opt = dfo.make_optimizer("cma-es", np.zeros(2), seed=0)
    X = opt.ask()
    k = X.shape[0]
    with pytest.raises(
        ShapeError, match=rf"values must have shape \({k},\).*got shape \({k + 1},\)"
    ):
        opt.tell(X, np.zeros(k + 1))
    with pytest.raises(TypeError, match="values must be real numbers; got an array of dtype <U1"):
        opt.tell(X, ["a"] * k)
    with pytest.raises(ShapeError, match=r"X must have shape \(k, 2\); got shape \(6, 3\)"):
        opt.tell(np.zeros((6, 3)), np.zeros(6))
    opt.tell(X, (X**2).sum(axis=1))  # still usable after the bad calls
    assert opt.nit == 1


@pytest.mark.parametrize(
    ("output", "exc", "pattern"),
    [
        (np.ones(2), ObjectiveOutputError, r"scalar for one point; got an array of shape \(2,\)"),
        ([1.0, 2.0], ObjectiveOutputError, r"scalar"),
        ("0.5", TypeError, r"must return a real number; got str"),
        (None, TypeError, r"must return a real number; got NoneType"),
        (1 + 2j, TypeError, r"real number; got complex"),
        (np.array(["a"]), TypeError, r"real number; got an array of dtype <U1"),
    ],
)
def test_objective_returning_a_non_scalar_raises_at_the_first_call(output, exc, pattern):
    calls = []

    def f(x):
        calls.append(x)
        return output

    with pytest.raises(exc, match=pattern):
        dfo.minimize(f, np.ones(2), method="nelder-mead", budget=50)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("output", "exc", "pattern"),
    [
        (lambda X: np.ones(X.shape[0] - 1), ObjectiveOutputError, r"shape \(\d+,\) for a batch"),
        (lambda X: np.ones((X.shape[0], 1)), ObjectiveOutputError, r"got shape \(\d+, 1\)"),
        (
            lambda X: ["x"] * X.shape[0],
            TypeError,
            r"real numbers for a batch; got an array of dtype",
        ),
    ],
)
def test_batched_objective_of_the_wrong_length(output, exc, pattern):
    obj = dfo.as_objective(output, dim=2, batched=True)
    with pytest.raises(exc, match=pattern):
        dfo.minimize(obj, np.ones(2), method="cma-es", budget=50)


def network_data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, size=n)


@pytest.mark.parametrize(
    ("X", "y", "exc", "pattern"),
    [
        (None, np.arange(30) % 4, ValueError, r"labels in \[0, 3\).*got labels in \[0, 3\]"),
        (None, np.zeros(29, dtype=int), ShapeError, r"vector of 30 integer class labels"),
        (None, np.full(30, 0.5), ValueError, r"integer class labels; got the non-integer"),
        (None, np.array(["a"] * 30), TypeError, r"integer class labels; got an array of dtype"),
        (np.full((30, 4), np.nan), None, ValueError, r"X must be finite"),
        (np.ones((30, 5)), None, ShapeError, r"shape \(batch, 4\)"),
        (np.ones((0, 4)), np.zeros(0, dtype=int), ShapeError, r"batch >= 1"),
    ],
)
def test_network_objective_checks_its_data(X, y, exc, pattern):
    X0, y0 = network_data()
    net = dfo.MLP([4, 5, 3])
    with pytest.raises(exc, match=pattern):
        dfo.NetworkObjective(net, X0 if X is None else X, y0 if y is None else y)


# -- 6. numerical robustness ----------------------------------------------------------
@pytest.fixture
def strict_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.usefixtures("strict_warnings")
@pytest.mark.parametrize("scale", [1.0, 1e3, 1e150, 1e300])
def test_cross_entropy_with_extreme_logits(scale):
    rng = np.random.default_rng(1)
    net = dfo.MLP([3, 4])  # one linear layer: logits = X @ W + b
    X = rng.normal(size=(6, 3))
    y = rng.integers(0, 4, size=6)
    theta = rng.normal(size=net.n_params) * scale
    ((W, b),) = net.unflatten(theta)
    Z = X @ W + b
    expected = np.mean(logsumexp(Z, axis=1) - Z[np.arange(6), y])
    value, grad = net.loss_and_grad(theta, X, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx(expected, rel=1e-12)
    P = softmax(Z, axis=1)
    P[np.arange(6), y] -= 1.0
    dW = X.T @ P / 6
    np.testing.assert_allclose(net.unflatten(grad)[0][0], dW, rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("strict_warnings")
def test_sigmoid_at_plus_minus_1000():
    from dfo.nn.activations import get_activation

    z = np.array([-1e308, -1000.0, -40.0, 0.0, 40.0, 1000.0, 1e308])
    a = get_activation("sigmoid")(z.copy())
    expected = [
        0.0,
        0.0,
        math.exp(-40.0) / (1 + math.exp(-40.0)),
        0.5,
        1 / (1 + math.exp(-40.0)),
        1.0,
        1.0,
    ]
    np.testing.assert_allclose(a, expected, rtol=1e-15, atol=0)
    net = dfo.MLP([2, 3, 2], activation="sigmoid")
    X, y = np.array([[1.0, -1.0], [2.0, 0.5]]), np.array([0, 1])
    theta = net.init_params(0) * 1e4  # hidden pre-activations of order +-1000 and beyond
    value, grad = net.loss_and_grad(theta, X, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.usefixtures("strict_warnings")
@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("backprop-sgd", {"learning_rate": 1e8}),
        ("fd-sgd", {"learning_rate": 1e8}),
        ("spsa", {"a": 1e8}),
        ("cma-es", {"sigma0": 1e6}),
        ("random-search", {"sigma": 1e150}),
        ("nelder-mead", {"simplex_scale": 1e300}),
    ],
)
def test_huge_steps_do_not_make_nan(method, options):
    X, y = network_data()
    net = dfo.MLP([4, 5, 3], activation="tanh")
    obj = dfo.NetworkObjective(net, X, y)
    theta0 = net.init_params(0)
    res = dfo.minimize(obj, theta0, method=method, budget=400, seed=0, **options)
    assert np.all(np.isfinite(res.x)) and np.isfinite(res.fun)
    assert res.fun == pytest.approx(obj(res.x), rel=1e-12)
    if method != "cma-es":  # the others evaluate x0 and keep the best
        assert res.fun <= obj(theta0)


@pytest.mark.usefixtures("strict_warnings")
@pytest.mark.parametrize("method", ["backprop-sgd", "fd-sgd"])
def test_divergence_is_detected_and_reported(method):
    # sphere with learning rate 10: x <- x - 20 x grows 19x per step unless caught
    obj = dfo.problems.get("sphere", 4)
    res = dfo.minimize(obj, np.ones(4), method=method, budget=300, seed=0, learning_rate=10.0)
    assert np.all(np.isfinite(res.x))
    assert res.fun < 1e-6  # the step was shrunk until it converged
    assert "failed steps" in res.message and "half the learning rate" in res.message


@pytest.mark.usefixtures("strict_warnings")
@pytest.mark.parametrize("rule", ["sgd", "momentum", "adam"])
def test_a_step_that_overflows_is_undone(rule):
    # a gradient of 1e300 with a learning rate of 1e10 overflows the step to inf
    f = lambda x: float(np.sum(np.tanh(x) ** 2))  # noqa: E731 - finite everywhere
    obj = dfo.as_objective(f, dim=2, grad=lambda x: 1e300 * np.sign(x))
    res = dfo.minimize(
        obj, np.ones(2), "backprop-sgd", 100, seed=0, learning_rate=1e10, step_rule=rule
    )
    assert np.all(np.isfinite(res.x)) and np.isfinite(res.fun)
    assert "the step overflowed" in res.message


@pytest.mark.parametrize(
    "cma_options", [{"maxiter": "many"}, {"tolstagnation": [1, 2]}, {"popsize": 1}]
)
def test_pycma_errors_on_bad_cma_options_are_option_errors(cma_options):
    with pytest.raises(InvalidOptionError, match=r"pycma|popsize"):
        dfo.minimize(
            lambda x: float(x @ x),
            np.ones(3),
            method="cma-es",
            budget=300,
            cma_options=cma_options,
        )


# -- dfo compare killed mid-run and resumed -------------------------------------------
# four runs of about 0.1-0.3 s each, one at a time, in the planned order
COMPARE = [
    "compare", "--task", "sphere", "--dim", "5", "--methods", "spsa", "random-search",
    "--seeds", "2", "--budget", "10000", "--no-plots", "-q",
]  # fmt: skip
TIMING_COLUMNS = ("time_s_median", "time_s_min", "time_s_max", "monitor_seconds")


def dfo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dfo.cli", *args]


def compare_table(folder: Path) -> list[dict[str, str]]:
    """table.csv without its wall-clock columns (and the measured gradient cost, which
    does not enter the table when no method uses gradients)."""
    with open(folder / "table.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for column in (*TIMING_COLUMNS, "gradient_cost_ratio"):
            row.pop(column)
    return rows


def run_records(folder: Path) -> dict[tuple[str, int], dict]:
    out = {}
    for line in (folder / "runs.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("time")
        record["result"]["result"]["history"].pop("time")
        record["result"]["result"].pop("time")
        record["monitor"].pop("seconds")
        record["monitor"]["curve"].pop("time")
        out[record["method"], record["seed"]] = record
    return out


@pytest.fixture(scope="module")
def uninterrupted_compare(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "reference"
    # two processes: the results must not depend on --jobs
    subprocess.run(dfo_command(*COMPARE, "--jobs", "2", "--out", str(out)), check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    return out


@pytest.mark.skipif(os.name != "posix", reason="signals to a child process")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_compare_killed_mid_run_and_resumed_gives_the_same_table(
    sig, tmp_path, uninterrupted_compare
):
    out = tmp_path / "run"
    runs = out / "runs.jsonl"
    proc = subprocess.Popen(
        dfo_command(*COMPARE, "--jobs", "1", "--out", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (runs.exists() and runs.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, "compare ended early"
        time.sleep(0.002)
    proc.send_signal(sig)  # during the second run
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "--resume" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    finished = run_records(out)
    assert 1 <= len(finished) < 4  # killed mid-run, the finished runs are on disk
    assert not (out / "table.csv").exists()

    resumed = subprocess.run(
        dfo_command("compare", "--resume", "--out", str(out), "--jobs", "1", "-q",
                    "--no-plots"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    records = run_records(out)
    assert len(records) == 4 and len(out.joinpath("runs.jsonl").read_text().splitlines()) == 4
    for key, record in finished.items():
        assert records[key] == record  # the finished runs were kept, not run again
    assert records == run_records(uninterrupted_compare)
    assert compare_table(out) == compare_table(uninterrupted_compare)
