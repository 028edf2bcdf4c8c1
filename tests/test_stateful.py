"""Stateful property tests: ask/tell sequences for every method, run-folder readers.

A hypothesis ``RuleBasedStateMachine`` drives each registered method through any
order of ask, tell, tell twice, tell other points, checkpoint, resume and
interrupt (an ask whose evaluation never returned), and checks after every step
what the contract promises: misuse raises :class:`~dfo.exceptions.AskTellError` and
changes nothing, a resumed copy asks exactly what the original asks, the budget is
never exceeded, the best value is the lowest finite value told. The readers of a
run folder are fed mutated files and must return complete records or raise one
:class:`~dfo.exceptions.RunFolderError`, nothing else.

Examples are derandomized (``tests/conftest.py``) and few, so the run is fast and
the same on every machine.
"""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import dfo
from dfo.compare import folder, records
from dfo.exceptions import AskTellError, RunFolderError
from dfo.schema import SchemaError, validate

DIM = 3
BUDGET = 60
CENTER = np.array([0.5, -0.3, 0.2])
STATEFUL = settings(
    max_examples=8,
    stateful_step_count=14,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def sphere(X: np.ndarray) -> np.ndarray:
    return ((X - CENTER) ** 2).sum(axis=1)


class AskTell(RuleBasedStateMachine):
    """One optimizer of ``method``, driven by any sequence of calls."""

    method = ""

    def __init__(self) -> None:
        super().__init__()
        self.opt = dfo.make_optimizer(self.method, np.ones(DIM), seed=0, budget=BUDGET)
        self.pending: np.ndarray | None = None
        self.told: list[float] = []  # every finite value told, in order
        self.saved: tuple[bytes, np.ndarray | None, list[float]] | None = None

    # -- helpers --------------------------------------------------------------------------
    def _answers(self, X: np.ndarray, bad: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        values = sphere(X)
        if bad is not None:
            values[0] = {"nan": math.nan, "inf": math.inf}[bad]
        if self.opt.needs_gradient:
            return values, 2 * (X - CENTER)
        if self.opt.needs_jvp:
            return values, np.einsum("ij,ij->i", 2 * (X - CENTER), self.opt.directions())
        return values, None

    def _state(self) -> tuple[int, int, float]:
        return self.opt.nit, self.opt.nfev, self.opt.best_f

    # -- rules ----------------------------------------------------------------------------
    @precondition(lambda self: not self.opt.stop())
    @rule()
    def ask(self) -> None:
        X = self.opt.ask()
        assert X.ndim == 2 and X.shape[1] == DIM and X.shape[0] >= 1
        assert np.isfinite(X).all()
        again = self.opt.ask()
        np.testing.assert_array_equal(again, X)  # asking again: the same points
        if self.pending is not None:
            np.testing.assert_array_equal(X, self.pending)
        self.pending = X

    @precondition(lambda self: self.pending is not None)
    @rule(bad=st.sampled_from([None, None, "nan", "inf"]))
    def tell(self, bad: str | None) -> None:
        X = self.pending
        assert X is not None
        nit, nfev, _ = self._state()
        values, grads = self._answers(X, bad)
        self.opt.tell(X, values, grads)
        self.pending = None
        self.told += [v for v in values.tolist() if math.isfinite(v)]
        assert self.opt.nit == nit + 1 and self.opt.nfev == nfev + X.shape[0]

    @precondition(lambda self: self.pending is None and self.opt.nit > 0)
    @rule()
    def tell_twice(self) -> None:
        before = self._state()
        X = np.full((1, DIM), 7.25)  # no point a method would ask here
        values, grads = sphere(X), (2 * X if self.opt.needs_gradient else None)
        if self.opt.needs_jvp:
            grads = np.zeros(1)
        with pytest.raises(AskTellError):
            self.opt.tell(X, values, grads)
        assert self._state() == before

    @precondition(lambda self: self.pending is not None)
    @rule(shift=st.floats(0.5, 3.0))
    def tell_other_points(self, shift: float) -> None:
        X = self.pending
        assert X is not None
        before = self._state()
        other = X + shift
        values, grads = self._answers(other, None)
        with pytest.raises(AskTellError):
            self.opt.tell(other, values, grads)
        assert self._state() == before
        np.testing.assert_array_equal(self.opt.ask(), X)  # still pending, unchanged

    @rule()
    def checkpoint(self) -> None:
        pending = None if self.pending is None else self.pending.copy()
        self.saved = (pickle.dumps(self.opt), pending, list(self.told))
        # a copy made now continues exactly as the original
        copy = pickle.loads(self.saved[0])
        assert copy.nit == self.opt.nit and copy.best_f == self.opt.best_f
        if not self.opt.stop():
            np.testing.assert_array_equal(copy.ask(), self.opt.ask())
            self.pending = self.opt.ask()

    @precondition(lambda self: self.saved is not None)
    @rule()
    def resume(self) -> None:
        assert self.saved is not None
        blob, pending, told = self.saved
        self.opt = pickle.loads(blob)
        self.pending, self.told = pending, list(told)
        if pending is not None:
            np.testing.assert_array_equal(self.opt.ask(), pending)

    @precondition(lambda self: self.pending is not None)
    @rule()
    def interrupt(self) -> None:
        # the evaluation of the pending points never returned (Ctrl-C, a crash): the
        # caller asks again and gets the same points
        before = self._state()
        np.testing.assert_array_equal(self.opt.ask(), self.pending)
        assert self._state() == before

    # -- invariants -----------------------------------------------------------------------
    @invariant()
    def within_budget(self) -> None:
        assert self.opt.nfev <= BUDGET

    @invariant()
    def best_is_the_lowest_finite_value_told(self) -> None:
        expected = min(self.told) if self.told else math.inf
        assert self.opt.best_f == expected

    @invariant()
    def recommendation_is_finite(self) -> None:
        rec = self.opt.recommend()
        assert rec.shape == (DIM,) and np.isfinite(rec).all()

    @invariant()
    def stop_gives_reasons(self) -> None:
        reasons = self.opt.stop()
        assert isinstance(reasons, dict)
        if self.opt.nfev >= BUDGET:
            assert reasons  # the budget is spent: every method says stop


for _method in dfo.methods():
    _machine = type(f"AskTell_{_method.replace('-', '_')}", (AskTell,), {"method": _method})
    _case = _machine.TestCase
    _case.settings = STATEFUL
    globals()[f"TestAskTell_{_method.replace('-', '_')}"] = _case
del _machine, _case


# -- the run-folder readers over mutated files -------------------------------------------

GOOD_RECORD = {
    "method": "spsa",
    "seed": 0,
    "budget": 100,
    "status": "budget",
    "nfev": 100,
    "ngev": 0,
    "time": 0.5,
    "fun": 0.25,
    "train_loss": 0.25,
    "test_metric": None,
    "start_train_loss": 4.0,
    "start_test_metric": None,
    "compare_id": "0123456789abcdef",
    "monitor": {
        "points": 2,
        "evaluations": 2,
        "seconds": 0.01,
        "curve": {
            "nfev": [0, 100],
            "ngev": [0, 0],
            "time": [0.0, 0.5],
            "train_loss": [4.0, 0.25],
            "test_metric": [None, None],
        },
    },
}

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, (*prefix, i))


def _set(obj, path, value):
    if not path:
        return value
    obj = json.loads(json.dumps(obj))
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return obj


RECORD_PATHS = list(_paths(GOOD_RECORD))


@st.composite
def mutated_lines(draw):
    """A runs.jsonl line: the good record with one field replaced, cut, or with bad bytes."""
    kind = draw(st.sampled_from(["field", "drop", "cut", "bytes"]))
    record = GOOD_RECORD
    if kind == "field":
        path = draw(st.sampled_from(RECORD_PATHS))
        record = _set(record, path, draw(JSON_SCALARS))
    elif kind == "drop":
        path = draw(st.sampled_from([p for p in RECORD_PATHS if p]))
        record = json.loads(json.dumps(record))
        target = record
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    line = json.dumps(record).encode()
    if kind == "cut":
        line = line[: draw(st.integers(0, len(line) - 1))]
    elif kind == "bytes":
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.binary(min_size=1, max_size=3)) + line[at:]
    return line.replace(b"\n", b"\r") + b"\n"  # one line of the file


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(mutated_lines(), min_size=1, max_size=4), tail=st.binary(max_size=30))
def test_runs_reader_keeps_only_complete_records(tmp_path_factory, lines, tail):
    path = tmp_path_factory.mktemp("runs") / "runs.jsonl"
    good = (json.dumps(GOOD_RECORD) + "\n").encode()
    tail = tail.replace(b"\n", b"\r")  # a last line cut short by a kill
    path.write_bytes(good + b"".join(lines) + good + tail)
    runs = records.read_runs(path, compare=GOOD_RECORD["compare_id"])
    for record in runs.records:
        records.check_record(record)  # every record returned is complete
        assert record["compare_id"] == GOOD_RECORD["compare_id"]
    assert len(runs.records) >= 2  # the good lines around the damage survive
    lines_in_file = [ln for ln in (good, *lines, good, tail) if ln.strip()]
    assert len(runs.records) + runs.skipped == len(lines_in_file)
    # repairing leaves a file of exactly the records kept
    repaired = records.read_runs(path, compare=GOOD_RECORD["compare_id"], repair=True)
    again = records.read_runs(path, compare=GOOD_RECORD["compare_id"])
    assert again.records == repaired.records and again.skipped == 0


def _good_config():
    planned = {
        "task": "sphere",
        "task_options": {"dim": 2},
        "methods": ["spsa"],
        "seeds": [0],
        "n_monitor": 40,
        "runs": {"spsa": {"budget": 100, "max_time": None, "options": {}}},
    }
    return {
        "format": folder.FORMAT,
        "format_version": folder.FORMAT_VERSION,
        "id": folder.compare_id(planned),
        "request": {"task": "sphere", "task_options": {"dim": 2}, "seeds": [0]},
        "compare": planned,
        "gradient_cost": None,
    }


CONFIG_PATHS = list(_paths(_good_config()))


@settings(max_examples=60, deadline=None)
@given(
    path=st.sampled_from(CONFIG_PATHS),
    value=JSON_SCALARS,
    cut=st.one_of(st.none(), st.integers(0, 400)),
)
def test_config_reader_returns_a_valid_config_or_one_error(tmp_path_factory, path, value, cut):
    file = tmp_path_factory.mktemp("cfg") / "config.json"
    text = json.dumps(_set(_good_config(), path, value)).encode()
    file.write_bytes(text if cut is None else text[:cut])
    try:
        config = records.read_config(file)
    except RunFolderError as exc:
        assert "\n" not in str(exc)  # one line
        return
    validate(config, records.CONFIG_SCHEMA)  # what comes back fits the schema


def test_schema_errors_name_the_field():
    bad = _set(GOOD_RECORD, ("monitor", "curve", "nfev"), "x")
    with pytest.raises(SchemaError, match=r"monitor\.curve\.nfev: expected a list"):
        records.check_record(bad)
