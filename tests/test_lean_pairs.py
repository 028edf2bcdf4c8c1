"""spsa's lean loop (dfo.run.lean.run_lean_pairs) gives the ask/tell loop's bits."""

from __future__ import annotations

import numpy as np
import pytest
from test_lean_loop import _data, _interrupt_at
from test_lean_marks import Marks

import dfo
from dfo.optimizers.gradient import SPSA
from dfo.result import Status
from dfo.run import minimize as run_minimize


def _same_run(a, b):
    assert (a.message, a.status) == (b.message, b.status)
    assert (a.nit, a.nfev, a.ngev, a.n_nonfinite) == (b.nit, b.nfev, b.ngev, b.n_nonfinite)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.fun == b.fun or (np.isnan(a.fun) and np.isnan(b.fun))
    assert a.options == b.options
    for key in a.history:
        if key != "time":
            np.testing.assert_array_equal(a.history[key], b.history[key])


def _lean_calls(monkeypatch):
    """Count the lean loop's tells (spsa's pairs told in scalars)."""
    calls = []
    tell = SPSA.tell_lean
    monkeypatch.setattr(SPSA, "tell_lean", lambda self, v: calls.append(1) or tell(self, v))
    return calls


CASES = {
    "full batch": ({}, {}),
    "minibatches": ({"batch_size": 16}, {}),
    "adam": ({"batch_size": 16}, {"step_rule": "adam"}),
    "momentum, average": ({"batch_size": 16}, {"step_rule": "momentum", "average": True}),
    "c measured": ({}, {"c": "auto", "budget": 400}),
    "failed steps": ({"batch_size": 16}, {"initial_step": 50.0, "divergence": 0.05}),
    "failed steps, patience 1": (
        {"batch_size": 16},
        {"initial_step": 50.0, "divergence": 0.05, "patience": 1},
    ),
    "target": ({}, {"target": 1.06}),
    "max_iter": ({"batch_size": 16}, {"max_iter": 37}),
    "bounds": ({"batch_size": 16}, {"bounds": (-0.3, 0.3), "initial_step": 0.5}),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_lean_pairs_give_the_bits_of_the_ask_tell_loop(case, dtype, monkeypatch):
    net, X, y, theta = _data(dtype)
    obj_kw, run_kw = CASES[case]
    obj = dfo.NetworkObjective(net, X, y, **obj_kw)
    kwargs = {"budget": 300, "seed": 3, "c": 0.05, "initial_step": 0.05, **run_kw}
    calls = _lean_calls(monkeypatch)
    lean = dfo.minimize(obj, theta, "spsa", **kwargs)
    ran = len(calls)
    # a callback makes the run loop take the ask/tell path
    full = dfo.minimize(obj, theta, "spsa", callback=lambda r: None, **kwargs)
    assert len(calls) == ran  # no lean tell in the full loop
    _same_run(lean, full)
    # the lean loop ran every iteration after the first (calibration) or the noise probe
    first = 1 if case != "c measured" else 1 + int(np.sum(full.history["nfev"] <= 27))
    assert ran >= lean.nit - first - lean.n_nonfinite
    if case == "failed steps":
        assert "failed steps" in lean.message
    if case == "failed steps, patience 1":  # stop() is asked after the lean loop's failed step
        assert lean.status == Status.NONFINITE and lean.nit == 2 and ran == 1
    if case == "target":
        assert lean.status == Status.CONVERGED and lean.nfev < 299
    if case == "max_iter":
        assert lean.nit == 37


def test_non_finite_values_and_the_pairs_left_out_are_the_ask_tell_loops(monkeypatch):
    def f(x):  # nan beyond 1.2: the pairs that meet it are left out or redrawn
        return np.nan if abs(x[0]) > 1.2 else float(np.sum((x - 2.0) ** 2))

    obj = dfo.as_objective(f, dim=4)
    kwargs = {"budget": 400, "seed": 1, "c": 0.3, "a": 0.05}
    calls = _lean_calls(monkeypatch)
    lean = dfo.minimize(obj, np.zeros(4), "spsa", **kwargs)
    full = dfo.minimize(obj, np.zeros(4), "spsa", callback=lambda r: None, **kwargs)
    _same_run(lean, full)
    assert lean.n_nonfinite > 0 and "left out" in lean.message and len(calls) > 0


def test_a_stall_in_the_lean_pairs_stops_where_the_ask_tell_loop_stops(monkeypatch):
    def steps(x):  # piecewise constant: exactly zero estimates at a small c
        return float(np.floor(3.0 * x[0]))

    kwargs = {"budget": 300, "seed": 3, "c": 0.01, "a": 0.1}
    calls = _lean_calls(monkeypatch)
    lean = dfo.minimize(steps, np.zeros(3), "spsa", **kwargs)
    full = dfo.minimize(steps, np.zeros(3), "spsa", callback=lambda r: None, **kwargs)
    _same_run(lean, full)
    assert lean.status == Status.STALLED and len(calls) == lean.nit  # a given: no calibration


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
    kwargs = {"budget": 200, "seed": 0, "c": 0.1, "a": 0.1}
    runs = [dfo.minimize(Batch(v), np.zeros(3), "spsa", **kwargs) for v in (False, True)]
    _same_run(*runs)
    assert np.all(np.abs(runs[1].x - 1.0) < 0.5)


@pytest.mark.parametrize("options", [{"n_directions": 2}, {"regenerate": True}, {"xtol": 1e-9}])
def test_several_directions_regenerate_and_tol_keep_the_ask_tell_loop(options, monkeypatch):
    net, X, y, theta = _data()
    calls = _lean_calls(monkeypatch)
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    res = dfo.minimize(obj, theta, "spsa", budget=100, seed=0, c=0.05, **options)
    assert calls == [] and res.nit > 5


def test_the_lean_pairs_name_the_iteration_where_the_objective_raised():
    def f(x):
        if x[0] > 0.5:
            raise RuntimeError("boom")
        return float(np.sum((x - 1.0) ** 2))

    with pytest.raises(RuntimeError, match="boom") as info:
        dfo.minimize(f, np.zeros(2), "spsa", budget=400, seed=0, c=0.01, a=0.05)
    with pytest.raises(RuntimeError, match="boom") as ref:
        dfo.minimize(
            f, np.zeros(2), "spsa", budget=400, seed=0, c=0.01, a=0.05, callback=lambda r: None
        )
    notes = "\n".join(info.value.__notes__)
    assert notes == "\n".join(ref.value.__notes__)
    assert "of method 'spsa'" in notes and "iteration 0 " not in notes


def test_ctrl_c_in_the_lean_pairs_keeps_what_was_found(monkeypatch):
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    kwargs = {"budget": 300, "seed": 4, "c": 0.05}
    ref = dfo.minimize(obj, theta, "spsa", **kwargs)
    _interrupt_at(monkeypatch, "population_loss", 61)
    stopped = dfo.minimize(obj, theta, "spsa", **kwargs)
    assert stopped.status == Status.INTERRUPTED and stopped.nit == 60
    np.testing.assert_array_equal(stopped.history["best"], ref.history["best"][:60])
    assert stopped.fun == ref.history["best"][59]


def test_a_callback_at_marks_keeps_the_lean_pairs_and_gets_the_same_calls(monkeypatch):
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    kwargs = {"budget": 300, "seed": 5, "c": 0.05}
    runs = []
    for lean in (True, False):
        with monkeypatch.context() as m:
            calls = _lean_calls(m)
            if not lean:
                m.setattr(run_minimize, "lean_pairs", lambda *a, **k: None)
            marks = Marks([1, 2, 3, 11, 12, 50, 51, 120, 297])
            res = dfo.minimize(obj, theta, "spsa", callback=marks, **kwargs)
            runs.append((res, marks.seen, len(calls)))
    (lean, seen_lean, n_lean), (full, seen_full, n_full) = runs
    assert n_lean == lean.nit - 1 and n_full == 0
    _same_run(lean, full)
    assert [s[:2] for s in seen_lean] == [s[:2] for s in seen_full]
    for a, b in zip(seen_lean, seen_full, strict=True):
        np.testing.assert_array_equal(a[2], b[2])
        assert a[3] == b[3]


def test_a_stochastic_function_takes_the_default_batch_stream_with_the_same_bits(monkeypatch):
    def noisy(x, rng):
        return float(np.sum((x - 1.0) ** 2) + 0.1 * rng.standard_normal())

    obj = dfo.as_objective(noisy, dim=4, stochastic=True)
    kwargs = {"budget": 300, "seed": 2, "c": 0.2}
    calls = _lean_calls(monkeypatch)
    lean = dfo.minimize(obj, np.zeros(4), "spsa", **kwargs)
    full = dfo.minimize(obj, np.zeros(4), "spsa", callback=lambda r: None, **kwargs)
    _same_run(lean, full)
    assert len(calls) == lean.nit - 1
