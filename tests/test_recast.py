"""scipy's closed loops recast into ask/tell: same points as scipy, exact budgets, resumes."""

from __future__ import annotations

import gc
import pickle
import threading

import numpy as np
import pytest
import scipy.optimize

import dfo
from dfo import problems
from dfo.result import Status

# method -> (scipy's name, options as dfo takes them, the same as scipy takes them)
SCIPY = {
    "nelder-mead": ("Nelder-Mead", {}, {"xatol": 1e-8, "fatol": 1e-8}),
}
RECAST = sorted(SCIPY)


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dfo-scipy-loop"]


class Recorder:
    """An objective that records every point it is given (a copy)."""

    def __init__(self, f):
        self.f, self.points = f, []

    def __call__(self, x):
        self.points.append(np.array(x, copy=True))
        return self.f(x)


def drive(opt, f, steps=None):
    """The documented ask/tell loop; returns the points told, in order."""
    told = []
    while not opt.stop() and (steps is None or len(told) < steps):
        X = opt.ask()
        opt.tell(X, [f(x) for x in X])
        told.extend(X)
    return told


@pytest.mark.parametrize("method", RECAST)
def test_same_points_as_scipy_run_directly(method):
    f = problems.get("rosenbrock", 3)
    x0 = np.array([-1.0, 0.5, 2.0])
    name, _, scipy_options = SCIPY[method]
    theirs = Recorder(f)
    ref = scipy.optimize.minimize(theirs, x0, method=name, options=scipy_options)
    ours = Recorder(f)
    res = dfo.minimize(ours, x0, method=method, budget=len(theirs.points) + 10)
    assert ref.success and res.status == Status.CONVERGED
    np.testing.assert_array_equal(np.array(ours.points), np.array(theirs.points))
    assert res.nfev == ref.nfev == len(theirs.points)
    assert res.fun == ref.fun
    np.testing.assert_array_equal(res.x, ref.x)


@pytest.mark.parametrize("method", RECAST)
@pytest.mark.parametrize("budget", [1, 2, 3, 4, 17])
def test_budget_is_exact_and_stop_names_it(method, budget):
    f = Recorder(problems.get("rosenbrock", 3))
    opt = dfo.make_optimizer(method, np.ones(3) * 2, budget=budget)
    drive(opt, f)
    assert len(f.points) == opt.nfev <= budget
    assert "budget" in opt.stop()
    res = dfo.minimize(f := Recorder(f.f), np.ones(3) * 2, method=method, budget=budget)
    assert len(f.points) == res.nfev <= budget and res.status == Status.BUDGET
    assert not loop_threads()


@pytest.mark.parametrize("method", RECAST)
def test_pickled_optimizer_replays_and_goes_on_identically(method):
    f = problems.get("rosenbrock", 4)
    x0 = np.full(4, 0.5)
    whole = drive(dfo.make_optimizer(method, x0, budget=120), f)
    opt = dfo.make_optimizer(method, x0, budget=120)
    first = drive(opt, f, steps=37)
    restored = pickle.loads(pickle.dumps(opt))
    opt.close()
    rest = drive(restored, f)
    np.testing.assert_array_equal(np.array(first + rest), np.array(whole))
    assert not loop_threads()


@pytest.mark.parametrize("method", RECAST)
def test_larger_budget_continues_after_stopping_at_the_budget(method):
    f = problems.get("rosenbrock", 3)
    whole = drive(dfo.make_optimizer(method, np.zeros(3), budget=80), f)
    opt = dfo.make_optimizer(method, np.zeros(3), budget=30)
    first = drive(opt, f)
    assert "budget" in opt.stop() and not loop_threads()
    opt.budget = 80
    rest = drive(opt, f)
    np.testing.assert_array_equal(np.array(first + rest), np.array(whole))


@pytest.mark.parametrize("method", RECAST)
def test_abandoned_optimizer_ends_its_thread(method):
    opt = dfo.make_optimizer(method, np.zeros(3), budget=100)
    drive(opt, problems.get("sphere", 3), steps=5)
    opt.ask()
    assert len(loop_threads()) == 1
    thread = loop_threads()[0]
    del opt
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


def test_minimize_ends_the_thread_on_max_iter_and_callback_stop():
    f = problems.get("sphere", 3)
    res = dfo.minimize(f, np.ones(3), method="nelder-mead", budget=100, max_iter=7)
    assert res.status == Status.MAX_ITER and res.nfev == 7

    def callback(r):
        raise StopIteration

    res = dfo.minimize(f, np.ones(3), method="nelder-mead", budget=100, callback=callback)
    assert res.status == Status.CALLBACK
    assert not loop_threads()


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    f = problems.get("rosenbrock", 3)
    x0 = np.array([-1.0, 0.5, 2.0])
    whole = dfo.minimize(f, x0, method="nelder-mead", budget=300)
    path = tmp_path / "nm.ckpt"
    part = dfo.minimize(f, x0, method="nelder-mead", budget=300, max_iter=100, checkpoint=path)
    assert part.status == Status.MAX_ITER
    resumed = dfo.minimize(f, x0, method="nelder-mead", budget=300, checkpoint=path, resume=True)
    assert resumed.nfev == whole.nfev and resumed.fun == whole.fun
    np.testing.assert_array_equal(resumed.x, whole.x)
    np.testing.assert_array_equal(resumed.history["best"], whole.history["best"])


def test_replay_that_takes_another_path_is_refused():
    f = problems.get("sphere", 2)
    opt = dfo.make_optimizer("nelder-mead", np.ones(2), budget=50)
    drive(opt, f, steps=10)
    restored = pickle.loads(pickle.dumps(opt))
    opt.close()
    restored.x0 = restored.x0 + 1.0  # scipy's loop now starts elsewhere
    with pytest.raises(RuntimeError, match="replay"):
        restored.stop()


def test_errors_of_scipys_loop_reach_the_caller():
    opt = dfo.make_optimizer("nelder-mead", np.ones(2), budget=50)
    opt.xatol = "not a number"  # scipy itself raises on it, at its first comparison
    with pytest.raises(TypeError):
        drive(opt, problems.get("sphere", 2))
    assert not loop_threads()
