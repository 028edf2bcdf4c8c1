"""The attacks of the second reliability round, one section per attack, each reproduced.

Each test plays the attack and asserts the clear outcome: a refusal with a message
that says what was expected and what was given, before any evaluation is spent, or
a run that goes on and reports what happened.
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import dfo
from dfo.compare import records
from dfo.exceptions import NotPicklableError, OutputPathError
from dfo.files import atomic_write


class Counting:
    """``||x||^2``, counting its calls (a module-level class: it pickles)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: np.ndarray) -> float:
        self.calls += 1
        return float(np.sum(np.asarray(x) ** 2))


# -- 3. the checkpoint path is checked before the work ---------------------------------


@pytest.mark.parametrize("where", ["a directory", "a missing folder"])
def test_checkpoint_path_is_checked_before_any_evaluation(tmp_path, where):
    path = tmp_path if where == "a directory" else tmp_path / "missing" / "ck.pkl"
    f = Counting()
    pattern = "is a directory" if where == "a directory" else "does not exist"
    with pytest.raises(OutputPathError, match=pattern):
        dfo.minimize(f, np.ones(3), "spsa", budget=200, seed=0, checkpoint=path)
    assert f.calls == 0
    assert list(tmp_path.iterdir()) == []  # no stray temporary file


def test_a_failed_checkpoint_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "ck.pkl"

    def explode(fh):
        fh.write(b"half a pickle")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, explode)
    assert list(tmp_path.iterdir()) == []


# -- 4. an unpicklable objective with a process pool -----------------------------------


def test_unpicklable_objective_with_a_process_pool_is_refused_up_front():
    calls = []

    def f(x):  # a nested function: a process pool cannot pickle it
        calls.append(1)
        return float(x @ x)

    obj = dfo.as_objective(f, dim=2, grad=lambda x: 2 * x)
    with ProcessPoolExecutor(1) as pool:
        for method in ("backprop-sgd", "cma-es"):
            with pytest.raises(NotPicklableError, match=r"does not pickle.*module level"):
                dfo.minimize(obj, np.ones(2), method, budget=50, seed=0, executor=pool)
    assert calls == []


def test_picklable_objective_with_a_process_pool_still_runs():
    with ProcessPoolExecutor(1) as pool:
        res = dfo.minimize(Counting(), np.ones(2), "cma-es", budget=30, seed=0, executor=pool)
    assert res.nfev <= 30 and np.isfinite(res.fun)


# -- 5. temporary files never follow symlinks ------------------------------------------


def test_a_symlink_planted_at_the_old_temporary_name_is_not_followed(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    ck = tmp_path / "ck.pkl"
    for name in ("ck.pkl.tmp", ".ck.pkl.tmp"):
        os.symlink(victim, tmp_path / name)
    res = dfo.minimize(Counting(), np.ones(2), "spsa", budget=40, seed=0, checkpoint=ck)
    assert victim.read_text() == "keep me"
    with open(ck, "rb") as fh:
        assert pickle.load(fh)["version"]  # a real checkpoint
    assert res.nfev <= 40
    leftovers = {p.name for p in tmp_path.iterdir()}
    assert leftovers == {"precious.txt", "ck.pkl", "ck.pkl.tmp", ".ck.pkl.tmp"}


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    target = tmp_path / "config.json"
    os.symlink(victim, target)
    records.write_json(target, {"a": 1})
    assert victim.read_text() == "keep me"
    assert not target.is_symlink() and target.read_text() == '{\n  "a": 1\n}\n'


def test_runs_jsonl_repair_is_atomic_and_ignores_planted_symlinks(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    runs = tmp_path / "runs.jsonl"
    runs.write_text('{"method": "spsa", "seed": 0}\n{"method": "sp')
    os.symlink(victim, tmp_path / "runs.jsonl.tmp")
    got = records.read_records(runs, repair=True)
    assert got == [{"method": "spsa", "seed": 0}]
    assert runs.read_text() == '{"method":"spsa","seed":0}\n'
    assert victim.read_text() == "keep me"


def test_atomic_write_keeps_the_permissions_open_would_give(tmp_path):
    target = tmp_path / "t.txt"
    atomic_write(target, "x")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert (target.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)
