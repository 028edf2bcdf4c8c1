"""The lean loop under a callback called at marks: the run and the calls are the full loop's."""

from __future__ import annotations

import numpy as np
import pytest

import dfo
from dfo.datasets import load_digits
from dfo.run import minimize as run_minimize


class Marks:
    """Called when the evaluations reach each mark; records what it saw."""

    def __init__(self, marks, stop_at=None):
        self.marks = list(marks)
        self.seen = []
        self.stop_at = stop_at

    @property
    def next_nfev(self):
        return self.marks[0] if self.marks else 10**9

    def __call__(self, intermediate_result):
        res = intermediate_result
        self.seen.append((res.nfev, res.nit, res.recommendation.copy(), res.fun))
        while self.marks and self.marks[0] <= res.nfev:
            self.marks.pop(0)
        if self.stop_at is not None and res.nfev >= self.stop_at:
            raise StopIteration


def _run(monkeypatch, lean, stop_at=None, method="backprop-sgd"):
    if not lean:
        monkeypatch.setattr(run_minimize, "lean_stream", lambda *a, **k: None)
    X, y = load_digits()
    net = dfo.MLP([64, 16, 10])
    obj = dfo.NetworkObjective(net, X[:600], y[:600], batch_size=32)
    calls = Marks([1, 2, 3, 7, 50, 51, 120, 299], stop_at=stop_at)
    used = []
    chunk = run_minimize.run_lean
    monkeypatch.setattr(run_minimize, "run_lean", lambda *a: used.append(1) or chunk(*a))
    res = dfo.minimize(
        obj,
        net.init_params(2),
        method,
        budget=300,
        seed=5,
        callback=calls,
        learning_rate=0.3 if method == "backprop-sgd" else 0.02,
    )
    return res, calls.seen, used


@pytest.mark.parametrize("method", ["backprop-sgd", "forward-gradient"])
@pytest.mark.parametrize("stop_at", [None, 120])
def test_marked_callback_keeps_the_lean_loop_and_its_bits(monkeypatch, stop_at, method):
    lean, seen_lean, chunks = _run(monkeypatch, True, stop_at, method)
    with monkeypatch.context() as m:
        full, seen_full, none = _run(m, False, stop_at, method)
    assert len(chunks) >= len(seen_lean) and none == []  # the lean loop ran, in chunks
    assert [s[:2] for s in seen_lean] == [s[:2] for s in seen_full]
    assert [s[0] for s in seen_lean][:4] == [1, 2, 3, 7]
    for a, b in zip(seen_lean, seen_full, strict=True):
        np.testing.assert_array_equal(a[2], b[2])
        assert a[3] == b[3]
    np.testing.assert_array_equal(lean.x, full.x)
    np.testing.assert_array_equal(lean.history["value"], full.history["value"])
    assert (lean.nfev, lean.nit, lean.status) == (full.nfev, full.nit, full.status)
    assert (lean.ngev, lean.njvp) == (full.ngev, full.njvp)
    if stop_at is not None:
        assert lean.nfev == stop_at + 1 and lean.message == full.message  # + the final


def test_a_plain_callback_still_takes_the_full_loop(monkeypatch):
    called = []
    stream = run_minimize.lean_stream
    monkeypatch.setattr(
        run_minimize,
        "lean_stream",
        lambda run, obj, *, watched: called.append(watched) or stream(run, obj, watched=watched),
    )
    obj = dfo.as_objective(lambda x: float(x @ x), dim=3, grad=lambda x: 2 * x)
    dfo.minimize(obj, np.ones(3), "backprop-sgd", budget=20, seed=0, callback=lambda xk: None)
    dfo.minimize(obj, np.ones(3), "backprop-sgd", budget=20, seed=0, callback=Marks([5]))
    assert called == [True, False]
