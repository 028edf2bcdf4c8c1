"""es's lean loop (dfo.run.lean.run_lean_population) gives the ask/tell loop's bits."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
from test_lean_loop import _data, _interrupt_at
from test_lean_marks import Marks
from test_lean_pairs import _same_run

import dfo
from dfo.optimizers.es import EvolutionStrategy
from dfo.result import Status
from dfo.run import minimize as run_minimize


def _lean_calls(monkeypatch):
    """Count the lean loop's tells (es's populations told in scalars)."""
    calls = []
    tell = EvolutionStrategy.tell_lean
    monkeypatch.setattr(
        EvolutionStrategy, "tell_lean", lambda self, v: calls.append(1) or tell(self, v)
    )
    return calls


CASES = {
    "full batch": ({}, {}),
    "minibatches": ({"batch_size": 16}, {}),
    "popsize 40, sgd": ({"batch_size": 16}, {"popsize": 40, "step_rule": "sgd"}),
    "momentum, weight decay": (
        {"batch_size": 16},
        {"step_rule": "momentum", "weight_decay": 0.01, "learning_rate": 0.01},
    ),
    "overlapping directions": ({"batch_size": 16}, {"noise_table": 60, "popsize": 30}),
    "failed steps": ({"batch_size": 16}, {"learning_rate": 20.0, "divergence": 0.05}),
    "failed steps, patience 1": (
        {"batch_size": 16},
        {"learning_rate": 20.0, "divergence": 0.05, "patience": 1},
    ),
    "target": ({}, {"target": 1.15}),
    "max_iter": ({"batch_size": 16}, {"max_iter": 7}),
    "bounds": ({"batch_size": 16}, {"bounds": (-0.3, 0.3), "learning_rate": 0.1}),
    "budget not a multiple": ({"batch_size": 16}, {"budget": 307, "popsize": 6}),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_lean_population_gives_the_bits_of_the_ask_tell_loop(case, dtype, monkeypatch):
    net, X, y, theta = _data(dtype)
    obj_kw, run_kw = CASES[case]
    obj = dfo.NetworkObjective(net, X, y, **obj_kw)
    kwargs = {"budget": 300, "seed": 3, "sigma": 0.05, "popsize": 10, **run_kw}
    calls = _lean_calls(monkeypatch)
    lean = dfo.minimize(obj, theta, "es", **kwargs)
    ran = len(calls)
    # a callback makes the run loop take the ask/tell path
    full = dfo.minimize(obj, theta, "es", callback=lambda r: None, **kwargs)
    assert len(calls) == ran  # no lean tell in the full loop
    _same_run(lean, full)
    assert ran == lean.nit  # every iteration in the lean loop
    if case.startswith("failed steps"):
        assert "failed steps" in lean.message
    if case == "failed steps, patience 1":  # stop() is asked after the lean loop's failed step
        assert lean.status == Status.NONFINITE and lean.nit == 2
    if case == "target":
        assert lean.status == Status.CONVERGED and lean.nfev < 200
    if case == "max_iter":
        assert lean.nit == 7
    if case == "budget not a multiple":
        assert lean.nit == 51 and lean.nfev == 307  # and the final evaluation


def test_non_finite_values_are_the_ask_tell_loops(monkeypatch):
    def f(x):  # nan beyond 0.4, inf below -0.6: ranked worst, booked as non-finite
        if x[0] > 0.4:
            return np.nan
        return np.inf if x[1] < -0.6 else float(np.sum((x - 2.0) ** 2))

    kwargs = {"budget": 600, "seed": 1, "sigma": 0.3, "popsize": 8, "learning_rate": 0.1}
    calls = _lean_calls(monkeypatch)
    lean = dfo.minimize(f, np.zeros(4), "es", **kwargs)
    full = dfo.minimize(f, np.zeros(4), "es", callback=lambda r: None, **kwargs)
    _same_run(lean, full)
    assert lean.n_nonfinite > 0 and len(calls) == lean.nit


def test_all_values_non_finite_fail_the_step_as_the_ask_tell_loop_does(monkeypatch):
    def f(x):
        return np.nan if x[0] > 0.05 else float(np.sum(x**2) - x[0])

    kwargs = {"budget": 400, "seed": 2, "sigma": 0.01, "popsize": 4, "learning_rate": 0.5}
    calls = _lean_calls(monkeypatch)
    lean = dfo.minimize(f, np.zeros(3), "es", step_rule="sgd", **kwargs)
    full = dfo.minimize(f, np.zeros(3), "es", step_rule="sgd", callback=lambda r: None, **kwargs)
    _same_run(lean, full)
    assert "failed steps" in lean.message and len(calls) == lean.nit


class Batch(dfo.Objective):
    """``sum((x - 1)^2)`` for each row; ``vandal`` overwrites the points it is handed."""

    def __init__(self, vandal):
        super().__init__(3)
        self.vandal = vandal

    def _evaluate_batch(self, X):
        values = np.sum((X - 1.0) ** 2, axis=1)
        if self.vandal:
            X.fill(1e9)
        return values


def test_an_objective_that_changes_its_points_changes_nothing_of_the_run():
    kwargs = {"budget": 400, "seed": 0, "sigma": 0.1, "learning_rate": 0.1, "popsize": 8}
    runs = [dfo.minimize(Batch(v), np.zeros(3), "es", **kwargs) for v in (False, True)]
    _same_run(*runs)
    assert np.all(np.abs(runs[1].x - 1.0) < 0.5)


@pytest.mark.parametrize(
    "options", [{"tol": 1e-3}, {"xtol": 1e-9}, {"on_error": "worst"}, {"history_x": True}]
)
def test_tol_and_watched_runs_keep_the_ask_tell_loop(options, monkeypatch):
    net, X, y, theta = _data()
    calls = _lean_calls(monkeypatch)
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    res = dfo.minimize(obj, theta, "es", budget=100, seed=0, popsize=10, **options)
    assert calls == [] and res.nit > 5


def test_a_checkpointed_run_keeps_the_ask_tell_loop_and_resumes_to_the_same_bits(
    tmp_path, monkeypatch
):
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    kwargs = {"budget": 200, "seed": 6, "popsize": 10}
    lean = dfo.minimize(obj, theta, "es", **kwargs)
    calls = _lean_calls(monkeypatch)
    path = tmp_path / "es.ckpt"
    saved = dfo.minimize(obj, theta, "es", checkpoint=path, checkpoint_every=3, **kwargs)
    assert calls == []
    _same_run(lean, saved)
    resumed = dfo.minimize(obj, theta, "es", checkpoint=path, resume=True, **kwargs)
    _same_run(lean, resumed)


def test_the_lean_population_names_the_iteration_where_the_objective_raised():
    def f(x):
        if x[0] > 0.5:
            raise RuntimeError("boom")
        return float(np.sum((x - 1.0) ** 2))

    kwargs = {"budget": 800, "seed": 0, "sigma": 0.01, "learning_rate": 0.05, "popsize": 4}
    with pytest.raises(RuntimeError, match="boom") as info:
        dfo.minimize(f, np.zeros(2), "es", **kwargs)
    with pytest.raises(RuntimeError, match="boom") as ref:
        dfo.minimize(f, np.zeros(2), "es", callback=lambda r: None, **kwargs)
    notes = "\n".join(info.value.__notes__)
    assert notes == "\n".join(ref.value.__notes__)
    assert "of method 'es'" in notes and "iteration 0 " not in notes


def test_ctrl_c_in_the_lean_population_keeps_what_was_found(monkeypatch):
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    kwargs = {"budget": 300, "seed": 4, "popsize": 10}
    ref = dfo.minimize(obj, theta, "es", **kwargs)
    _interrupt_at(monkeypatch, "population_loss", 21)
    stopped = dfo.minimize(obj, theta, "es", **kwargs)
    assert stopped.status == Status.INTERRUPTED and stopped.nit == 20
    np.testing.assert_array_equal(stopped.history["best"], ref.history["best"][:20])
    assert stopped.fun == ref.history["best"][19]


def test_a_deferred_ctrl_c_is_raised_after_the_booking(monkeypatch):
    # Ctrl-C during the step: the iteration is booked whole, then the run ends
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    kwargs = {"budget": 300, "seed": 4, "popsize": 10}
    ref = dfo.minimize(obj, theta, "es", **kwargs)
    tell = EvolutionStrategy._tell
    calls = {"n": 0}

    def signalled(self, *args):
        calls["n"] += 1
        if calls["n"] == 9:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGINT)
        return tell(self, *args)

    monkeypatch.setattr(EvolutionStrategy, "_tell", signalled)
    stopped = dfo.minimize(obj, theta, "es", **kwargs)
    assert stopped.status == Status.INTERRUPTED and stopped.nit == 9
    np.testing.assert_array_equal(stopped.history["best"], ref.history["best"][:9])


def test_a_callback_at_marks_keeps_the_lean_population_and_gets_the_same_calls(monkeypatch):
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    kwargs = {"budget": 300, "seed": 5, "popsize": 10}
    runs = []
    for lean in (True, False):
        with monkeypatch.context() as m:
            calls = _lean_calls(m)
            if not lean:
                m.setattr(run_minimize, "lean_population", lambda *a, **k: None)
            marks = Marks([1, 2, 3, 11, 12, 50, 51, 120, 297])
            res = dfo.minimize(obj, theta, "es", callback=marks, **kwargs)
            runs.append((res, marks.seen, len(calls)))
    (lean, seen_lean, n_lean), (full, seen_full, n_full) = runs
    assert n_lean == lean.nit and n_full == 0
    _same_run(lean, full)
    assert [s[:2] for s in seen_lean] == [s[:2] for s in seen_full]
    for a, b in zip(seen_lean, seen_full, strict=True):
        np.testing.assert_array_equal(a[2], b[2])
        assert a[3] == b[3]


def test_a_stochastic_function_takes_the_default_batch_stream_with_the_same_bits(monkeypatch):
    def noisy(x, rng):
        return float(np.sum((x - 1.0) ** 2) + 0.1 * rng.standard_normal())

    obj = dfo.as_objective(noisy, dim=4, stochastic=True)
    kwargs = {"budget": 300, "seed": 2, "sigma": 0.2, "popsize": 6}
    calls = _lean_calls(monkeypatch)
    lean = dfo.minimize(obj, np.zeros(4), "es", **kwargs)
    full = dfo.minimize(obj, np.zeros(4), "es", callback=lambda r: None, **kwargs)
    _same_run(lean, full)
    assert len(calls) == lean.nit


def test_an_optimizer_after_the_lean_loop_pickles_and_goes_on_as_asked_and_told():
    # the state the lean loop leaves is ask/tell's: a pickled copy continues by hand
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y)
    opt = dfo.make_optimizer("es", theta, seed=7, popsize=10, budget=10**6)
    twin = pickle.loads(pickle.dumps(opt))
    for _ in range(5):
        opt.tell_lean(obj.evaluate_batch(opt.lean_population()))
        X_asked = twin.ask()
        twin.tell(X_asked, obj.evaluate_batch(X_asked))
    np.testing.assert_array_equal(opt.x, twin.x)
    np.testing.assert_array_equal(opt.best_x, twin.best_x)
    assert opt.ledger.history[-1][1:3] == twin.ledger.history[-1][1:3]
    again = pickle.loads(pickle.dumps(opt))
    X_asked = again.ask()
    np.testing.assert_array_equal(X_asked, twin.ask())


def test_max_time_ends_the_lean_population_between_iterations(monkeypatch):
    class Slow(Batch):
        def _evaluate_batch(self, X):
            time.sleep(0.01)
            return super()._evaluate_batch(X)

    calls = _lean_calls(monkeypatch)
    res = dfo.minimize(Slow(False), np.zeros(3), "es", budget=10**5, seed=0, max_time=0.05)
    assert res.status == Status.MAX_TIME and 1 <= res.nit < 50 and len(calls) == res.nit
