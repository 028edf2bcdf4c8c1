"""The attacks of the second reliability round, one section per attack, each reproduced.

Each test plays the attack and asserts the clear outcome: a refusal with a message
that says what was expected and what was given, before any evaluation is spent, or
a run that goes on and reports what happened.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

import dfo
from dfo.cli.main import main
from dfo.compare import folder, records
from dfo.exceptions import (
    InvalidOptionError,
    NotPicklableError,
    ObjectiveOutputError,
    OutputPathError,
)
from dfo.files import atomic_write
from dfo.result import Status


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


# -- 1. two compares into one folder ---------------------------------------------------

TINY = ["--budget", "120", "--methods", "spsa,random-search", "--seeds", "2"]
QUIET = ["--jobs", "1", "-q", "--no-plots"]


def _compare(capsys, *args):
    """Run ``dfo compare`` in this process: (status, stdout, stderr)."""
    status = main(["compare", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _hold_lock(folder):
    """A separate process holding ``folder``'s lock until killed."""
    code = (
        "import sys, time, pathlib\n"
        "from dfo.compare.folder import lock\n"
        "with lock(pathlib.Path(sys.argv[1])):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_compare_into_a_locked_folder_is_refused_naming_the_first(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = _hold_lock(out)
    try:
        status, _, err = _compare(capsys, "--task", "rastrigin", *TINY, "--out", str(out), *QUIET)
        assert status == 2
        assert f"in use by another dfo compare (process {holder.pid} on" in err
        assert len(err.strip().splitlines()) == 1
        assert sorted(p.name for p in out.iterdir()) == [folder.LOCK_FILE]  # nothing written
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # the holder died without releasing it: the stale lock is recognised and taken over
    status, _, err = _compare(capsys, "--task", "rastrigin", *TINY, "--out", str(out), *QUIET)
    assert status == 0, err
    assert not (out / folder.LOCK_FILE).exists()  # released at the end


def test_records_of_another_compare_are_never_mixed_in(tmp_path, capsys):
    sphere, rastrigin = tmp_path / "sphere", tmp_path / "rastrigin"
    for task, out in (("sphere", sphere), ("rastrigin", rastrigin)):
        assert _compare(capsys, "--task", task, *TINY, "--out", str(out), *QUIET)[0] == 0
    # rastrigin's records appended to sphere's file (as two writers would have mixed them)
    with open(sphere / records.RUNS_FILE, "a") as fh:
        fh.write((rastrigin / records.RUNS_FILE).read_text())
    table = (sphere / records.TABLE_TEXT_FILE).read_text()
    status, printed, err = _compare(capsys, "--resume", "--out", str(sphere), *QUIET)
    assert status == 0, err
    assert printed.strip() == table.strip()  # the same medians: sphere's runs only
    assert "4 damaged lines" in err and "a record of another compare" in err
    config = records.read_config(sphere / records.CONFIG_FILE)
    kept = records.read_runs(sphere / records.RUNS_FILE)
    assert {r["compare_id"] for r in kept.records} == {config["id"]}
    assert {r["task"] for r in kept.records} == {"sphere"}


def test_a_mismatched_resume_names_the_difference(tmp_path, capsys):
    out = tmp_path / "run"
    assert _compare(capsys, "--task", "sphere", *TINY, "--out", str(out), *QUIET)[0] == 0
    status, _, err = _compare(capsys, "--resume", "--task", "rastrigin", "--out", str(out), *QUIET)
    assert status == 2
    assert "task: stored 'sphere', now 'rastrigin'" in err


# -- 2. --out never destroys a user's files --------------------------------------------


def test_out_into_a_folder_of_user_files_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = {"table.csv": "my data\n", "runs.jsonl": "my log\n", "figure.png": "png"}
    for name, text in mine.items():
        (tmp_path / name).write_text(text)
    status, _, err = _compare(capsys, "--task", "sphere", *TINY, "--out", ".", *QUIET)
    assert status == 2
    assert "is not a dfo run folder" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == mine


@pytest.mark.parametrize("kind", ["a file", "below a file", "unwritable"])
def test_out_that_cannot_be_a_folder_is_one_line_exit_2(tmp_path, capsys, kind):
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    out = {"a file": afile, "below a file": afile / "run", "unwritable": "/proc/dfo-run"}[kind]
    status, _, err = _compare(capsys, "--task", "sphere", *TINY, "--out", str(out), *QUIET)
    assert status == 2
    assert err.startswith("dfo compare: error: --out") and len(err.strip().splitlines()) == 1
    assert afile.read_text() == "mine"


def test_resume_of_a_folder_that_does_not_exist_is_refused(tmp_path, capsys):
    out = tmp_path / "nonexistent"
    status, _, err = _compare(capsys, "--resume", "--task", "sphere", "--out", str(out), *QUIET)
    assert status == 2 and "nothing to resume" in err
    assert not out.exists()


# -- 6. a damaged run folder: one exit-2 line, or a skipped and counted line -----------


@pytest.fixture
def finished(tmp_path, capsys):
    """A finished tiny compare's folder, and its printed table."""
    out = tmp_path / "run"
    status, printed, err = _compare(capsys, "--task", "sphere", *TINY, "--out", str(out), *QUIET)
    assert status == 0, err
    return out, printed


def _config_edit(text):
    return lambda path: path.write_text(text)


def _config_field(change):
    def edit(path):
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return edit


DAMAGED_CONFIGS = {
    "truncated": (lambda p: p.write_text(p.read_text()[:40]), "not JSON"),
    "empty": (_config_edit(""), "not JSON"),
    "a list": (_config_edit("[]"), "expected an object"),
    "non-numeric gradient_cost": (
        _config_field(lambda d: d["gradient_cost"].update(ratio="fast")),
        "gradient_cost.ratio: expected a number",
    ),
    "methods: 5": (
        _config_field(lambda d: d["request"].update(methods=5)),
        "request.methods: expected a list",
    ),
    "dim: 10**9": (
        _config_field(lambda d: d["request"]["task_options"].update(dim=10**9)),
        "request.task_options.dim: expected an integer in [1, 10000000]",
    ),
    "not UTF-8": (lambda p: p.write_bytes(b'{"format": "\xff"}'), "not UTF-8"),
}


@pytest.mark.parametrize("damage", list(DAMAGED_CONFIGS))
def test_a_damaged_config_is_one_exit_2_line_naming_the_field(finished, capsys, damage):
    out, _ = finished
    edit, message = DAMAGED_CONFIGS[damage]
    edit(out / records.CONFIG_FILE)
    status, _, err = _compare(capsys, "--resume", "--out", str(out), *QUIET)
    assert status == 2
    assert err.startswith("dfo compare: error:") and len(err.strip().splitlines()) == 1
    assert message in err and "config.json is damaged" in err


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"method":"spsa"}\n', "seed: missing"),
        (b'{"method":"spsa","seed":0,\xff}\n', "not UTF-8"),
        (b"[1, 2]\n", "expected an object"),
    ],
)
def test_a_damaged_runs_line_is_skipped_counted_and_run_again(finished, capsys, line, why):
    out, _ = finished
    runs = out / records.RUNS_FILE

    def results():
        return {(r["method"], r["seed"]): r["fun"] for r in records.read_runs(runs).records}

    before = results()
    lines = runs.read_bytes().splitlines(keepends=True)
    runs.write_bytes(line + b"".join(lines[1:]))  # the first run's line damaged
    assert len(results()) == 3
    status, _, err = _compare(capsys, "--resume", "--out", str(out), *QUIET)
    assert status == 0, err
    assert "1 damaged line" in err and why in err
    assert results() == before  # the lost run was run again, with the same result


# -- 8. no warnings from non-finite arithmetic near the float64 limit ------------------


def near_limit(x):
    """Values between 0 and 1.7e308, smooth, never overflowing in the objective itself."""
    s = sum(min(float(v) * float(v), 1e300) for v in x)
    return 1.7e308 * (0.5 + 0.5 * math.tanh(s - 3.0))


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("spsa", {}),
        ("spsa", {"n_directions": 4}),
        ("spsa", {"c": 0.1}),
        ("fd-sgd", {}),
        ("fd-sgd", {"scheme": "central"}),
        ("cma-es", {}),
        ("random-search", {}),
        ("nelder-mead", {}),
    ],
)
def test_values_near_the_float64_limit_raise_no_warning(method, options):
    # RuntimeWarning is an error in this suite (pyproject.toml)
    res = dfo.minimize(near_limit, np.ones(3), method, budget=300, seed=0, **options)
    assert np.isfinite(res.x).all() and np.isfinite(res.fun)
    assert res.fun <= near_limit(np.ones(3))


class Watching:
    """Records every point it is given that holds inf or nan."""

    def __init__(self) -> None:
        self.bad_points = 0

    def __call__(self, x):
        if not np.isfinite(x).all():
            self.bad_points += 1
        return float(np.tanh(np.clip(x, -1, 1)).sum())


@pytest.mark.parametrize(
    ("x0", "options"),
    [
        (np.zeros(3), {"sigma": 1e308}),
        (np.full(3, 1.7e308), {}),
        (np.zeros(3), {"bounds": (-1.7e308, 1.7e308)}),
    ],
)
def test_random_search_never_hands_a_non_finite_point_to_the_objective(x0, options):
    f = Watching()
    res = dfo.minimize(f, x0, "random-search", budget=49, seed=0, **options)
    assert res.nfev == 49 and f.bad_points == 0 and res.n_nonfinite == 0


def test_ecnoise_near_the_float64_limit_equals_the_scaled_estimate():
    from dfo.noise import ecnoise

    rng = np.random.default_rng(3)
    base = 1.0 + 1e-3 * rng.standard_normal(9)
    level, inform = ecnoise(base)
    big_level, big_inform = ecnoise(base * 2.0**1020)  # values near 1e307
    assert (big_inform, big_level) == (inform, level * 2.0**1020)  # exactly, by scaling


# -- 10. non-finite regions: probes left out, the run goes on, the right diagnosis -----

CENTER = np.array([0.3, -0.2, 0.1, 0.4, -0.5])
START = CENTER + np.array([1.0, 0.5, -0.5, 0.5, 0.5])
AXIS = math.atan2(CENTER[1] - START[1], CENTER[0] - START[0])


def wedge(x):
    """``||x - CENTER||^2``, nan on a third of every ball around the minimizer."""
    d = np.asarray(x) - CENTER
    angle = (math.atan2(d[1], d[0]) - AXIS + math.pi) % (2 * math.pi) - math.pi
    return math.nan if abs(angle) < math.pi / 3 else float(d @ d)


@pytest.mark.parametrize(
    ("method", "options", "seed"),
    [("spsa", {}, 0), ("fd-sgd", {"learning_rate": 0.9}, 0), ("fd-sgd", {"scheme": "central"}, 0)],
)
def test_a_nan_region_does_not_stop_a_gradient_estimator(method, options, seed):
    # before: spsa stopped after 105 of 1,000 evaluations, blaming the learning rate
    res = dfo.minimize(wedge, START, method, budget=1000, seed=seed, **options)
    assert res.status == Status.BUDGET and res.nfev >= 990, res.message
    assert res.n_nonfinite > 0 and "learning rate may be" not in res.message
    assert res.fun < 1e-3 * wedge(START)


def test_fd_leaves_out_the_coordinate_whose_probe_is_not_finite():
    x0 = np.array([1.0, 2.0, 3.0])

    def f(x):  # nan just above x0 in coordinate 1
        return math.nan if x[1] > x0[1] else float(x @ x)

    opt = dfo.make_optimizer("fd-sgd", x0, learning_rate=0.1)
    X = opt.ask()
    opt.tell(X, [f(x) for x in X])
    steps = X[1:].diagonal() - x0
    fd = np.array([(f(X[1 + i]) - f(x0)) / steps[i] if i != 1 else 0.0 for i in range(3)])
    np.testing.assert_array_equal(opt.x, x0 - 0.1 * fd)  # coordinate 1 did not move
    assert opt.x[1] == x0[1] and opt.n_excluded == 1
    assert opt.n_backtracks == 0 and opt.lr_scale == 1.0  # not a failed step


def test_spsa_draws_a_new_direction_when_its_pair_is_not_finite():
    opt = dfo.make_optimizer("spsa", np.zeros(4), seed=0, a=0.1, c=0.5, budget=1000)
    X = opt.ask()
    opt.tell(X, [math.nan, 1.0])  # the + probe met nan
    assert opt.k == 0 and np.array_equal(opt.x, np.zeros(4))  # no step, same gain index
    assert opt.n_excluded == 1 and opt.redraws == 1
    Y = opt.ask()
    np.testing.assert_allclose(np.abs(Y[0]), np.abs(X[0]) / 2)  # half as far
    opt.tell(Y, [1.0, 0.5])
    assert opt.k == 1 and opt.redraws == 0 and not np.array_equal(opt.x, np.zeros(4))


@pytest.mark.parametrize("method", ["spsa", "fd-sgd"])
def test_a_run_that_finds_no_finite_value_says_so(method):
    x0 = np.ones(3)

    def only_x0(x):  # finite at x0 alone
        return 1.0 if np.array_equal(x, x0) else math.nan

    res = dfo.minimize(only_x0, x0, method, budget=500, seed=0)
    assert res.status == Status.NONFINITE, res.message
    assert "not finite" in res.message and "learning rate may be" not in res.message
    assert res.nfev < 500


# -- 7. only documented exceptions, before the first evaluation where possible ---------


def test_an_objective_returning_a_huge_integer_is_an_output_error():
    with pytest.raises(ObjectiveOutputError, match="integer too large for a float"):
        dfo.minimize(lambda x: 10**400, np.zeros(3), "cma-es", budget=50, seed=0)


def test_a_huge_integer_in_x0_is_a_value_error_before_any_evaluation():
    f = Counting()
    with pytest.raises(ValueError, match=r"x0 must be finite.*too large for a float"):
        dfo.minimize(f, [10**400, 0, 0], "cma-es", budget=50, seed=0)
    assert f.calls == 0


def test_a_gradient_holding_a_huge_integer_is_an_output_error():
    obj = dfo.as_objective(lambda x: 0.0, dim=3, grad=lambda x: [10**400, 0, 0])
    with pytest.raises(ObjectiveOutputError, match="gradient holds an integer too large"):
        dfo.minimize(obj, np.zeros(3), "backprop-sgd", budget=50, seed=0)


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"gamma": 1e12}, r"gamma must be a positive number below 128.5 .*got 1000000000000.0"),
        ({"alpha": 1e8}, r"alpha must be a positive number below"),
        ({"learning_rate": 10**400}, r"learning_rate must be .*too large for a float"),
    ],
)
def test_exponents_and_rates_that_overflow_are_refused_before_any_evaluation(options, pattern):
    f = Counting()
    method, extra = ("fd-sgd", {}) if "learning_rate" in options else ("spsa", {"c": 0.1})
    with pytest.raises(InvalidOptionError, match=pattern):
        dfo.minimize(f, np.ones(3), method, budget=500, seed=0, **extra, **options)
    assert f.calls == 0


def test_spsa_gains_within_the_limit_still_run():
    res = dfo.minimize(Counting(), np.ones(3), "spsa", budget=500, seed=0, c=0.1, gamma=100.0)
    assert res.nfev <= 500


@pytest.mark.parametrize(
    ("method", "options", "pattern"),
    [
        ("random-search", {"popsize": 10**12}, r"popsize=10+ asks for .* more than this machine"),
        ("cma-es", {"popsize": 10**12}, r"popsize=10+ asks for .* more than this machine"),
        ("spsa", {"n_directions": 10**12, "c": 0.1}, r"n_directions=10+ asks for"),
        ("random-search", {"popsize": 600}, r"needs 600 evaluations per iteration, more than"),
    ],
)
def test_populations_that_cannot_fit_are_refused_before_any_allocation(method, options, pattern):
    f = Counting()
    with pytest.raises(InvalidOptionError, match=pattern):
        dfo.minimize(f, np.ones(3), method, budget=500, seed=0, **options)
    assert f.calls == 0


def test_an_objective_subclass_without_its_hook_is_refused_before_any_evaluation():
    class Unfinished(dfo.Objective):
        pass

    with pytest.raises(TypeError, match="does not implement _evaluate_batch"):
        dfo.minimize(Unfinished(3), np.ones(3), "cma-es", budget=50, seed=0)

    class NoGradient(dfo.Objective):
        has_gradient = True

        def _evaluate_batch(self, X):
            return (X**2).sum(axis=1)

    with pytest.raises(TypeError, match="does not implement _value_and_grad"):
        dfo.minimize(NoGradient(3), np.ones(3), "backprop-sgd", budget=50, seed=0)


# -- 9. one validator per kind: flags, numpy scalars, budgets, cma_options -------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: dfo.make_optimizer("spsa", np.ones(2), average="no"),
        lambda: dfo.make_optimizer("spsa", np.ones(2), regenerate="no"),
        lambda: dfo.as_objective(lambda x: 0.0, dim=2, stochastic="no"),
        lambda: dfo.as_objective(lambda x: 0.0, dim=2, batched="no"),
    ],
)
def test_flags_refuse_strings(call):
    with pytest.raises(TypeError, match=r"must be True or False; got 'no'"):
        call()


@pytest.mark.parametrize(
    "options",
    [
        {"c": np.float32(0.1)},
        {"c": np.float64(0.1), "n_directions": np.int32(2)},
        {"budget": np.float64(100.0)},
        {"budget": np.float32(100)},
        {"budget": 1e2},
    ],
)
def test_numpy_scalars_and_integral_floats_are_accepted(options):
    options = {"budget": 100, "c": 0.1, **options}
    res = dfo.minimize(Counting(), np.ones(2), "spsa", seed=0, **options)
    assert res.nfev <= 100


def test_budgets_written_1e3_are_accepted_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = _compare(
        capsys,
        "--task",
        "sphere",
        *TINY,
        "--budget",
        "1.2e2",
        "-o",
        "spsa.budget=1.5e2",
        "--out",
        str(out),
        *QUIET,
    )
    assert status == 0, err
    budgets = {r["method"]: r["budget"] for r in records.read_runs(out / "runs.jsonl").records}
    assert budgets == {"spsa": 150, "random-search": 120}


def test_a_bad_cma_options_value_is_caught_before_any_evaluation():
    f = Counting()
    with pytest.raises(InvalidOptionError, match=r"cma_options\['maxiter'\] must be a number"):
        dfo.minimize(f, np.ones(3), "cma-es", budget=100, seed=0, cma_options={"maxiter": "abc"})
    assert f.calls == 0
    # pycma's own expressions still work
    res = dfo.minimize(f, np.ones(3), "cma-es", budget=100, seed=0, cma_options={"maxiter": "3*N"})
    assert res.nfev > 0


# -- 10 (cont.). Ctrl-C with on_error="worst", and a dead worker ------------------------


class InterruptAt:
    """Raises KeyboardInterrupt at its n-th call and RuntimeError where x[0] > 1.2."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self, x):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        if x[0] > 1.2:
            raise RuntimeError("simulation failed")
        return float(x @ x)


@pytest.mark.parametrize("method", ["nelder-mead", "cma-es", "spsa", "random-search"])
def test_ctrl_c_with_on_error_worst_counts_the_same_with_an_executor(method):
    # before: Nelder-Mead reported nfev 16 serially and 15 with an executor
    seen = []
    for executor in (None, ThreadPoolExecutor(2)):
        res = dfo.minimize(
            InterruptAt(16),
            np.ones(3),
            method,
            budget=200,
            seed=0,
            on_error="worst",
            executor=executor,
        )
        seen.append((res.status, res.nfev, res.nit, res.n_errors))
        if executor is not None:
            executor.shutdown()
    assert seen[0] == seen[1]
    assert seen[0][0] == Status.INTERRUPTED and seen[0][1] < 16


class DiesInWorker(dfo.Objective):
    """Kills the worker process that evaluates it (a segfault stand-in)."""

    def _evaluate_batch(self, X):
        if multiprocessing.parent_process() is not None:
            os._exit(3)
        return np.sum(X**2, axis=1)


def test_a_dead_worker_gets_a_note_that_helps():
    with ProcessPoolExecutor(1) as pool:
        with pytest.raises(BrokenProcessPool) as info:
            dfo.minimize(
                DiesInWorker(2),
                np.ones(2),
                "cma-es",
                budget=30,
                seed=0,
                executor=pool,
                on_error="worst",
            )
    notes = " ".join(info.value.__notes__)
    assert "worker process of the executor died" in notes
    assert "Run serially" in notes and "pass on_error='worst' to count" not in notes


def test_a_checkpoint_of_an_optimizer_that_does_not_pickle_is_refused_up_front(tmp_path):
    from dfo.optimizers.step_rules import StepRule

    f = Counting()
    rule = StepRule(init=lambda x: (), update=lambda g, s, lr: (-lr * g, s))
    with pytest.raises(NotPicklableError, match="checkpoint= saves the optimizer's state"):
        dfo.minimize(
            f,
            np.ones(3),
            "fd-sgd",
            budget=300,
            seed=0,
            step_rule=rule,
            checkpoint=tmp_path / "ck.pkl",
            checkpoint_every=50,
        )
    assert f.calls == 0 and list(tmp_path.iterdir()) == []
    # the same run without a checkpoint is fine
    assert dfo.minimize(f, np.ones(3), "fd-sgd", budget=30, seed=0, step_rule=rule).nfev > 0


# -- 6 (cont.). a damaged result file is one ValueError naming what is wrong -----------


@pytest.fixture(scope="module")
def result_document(tmp_path_factory):
    path = tmp_path_factory.mktemp("result") / "r.json"
    dfo.minimize(Counting(), np.ones(2), "cma-es", budget=40, seed=0).save(path)
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("nfev", "many", "result.nfev: expected an integer >= 0"),
        ("fun", [1, 2], "result.fun: expected a number"),
        ("history", 5, "result.history: expected an object"),
        ("status", {"__status__": "GREAT"}, "status 'GREAT'; expected one of"),
        ("x", {"__ndarray__": [1.0], "dtype": "object", "shape": [1]}, "dtype 'object'"),
        ("x", {"__ndarray__": [1.0], "dtype": "float64", "shape": [10**9]}, "shape [1000000000]"),
        ("x", {"__ndarray__": ["a"], "dtype": "float64", "shape": [1]}, "not of numbers"),
    ],
)
def test_a_damaged_result_file_is_a_value_error_naming_the_field(
    tmp_path, result_document, field, value, message
):
    doc = json.loads(json.dumps(result_document))
    doc["result"][field] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=re.escape(message)):
        dfo.load_result(path)


def test_a_result_file_that_is_not_utf8_is_a_value_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(b'{"format": "dfo-result", "x": "\xff"}')
    with pytest.raises(ValueError, match="not UTF-8"):
        dfo.load_result(path)


def test_dfo_scaling_refuses_its_out_before_measuring(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    assert main(["scaling", "--quick", "--quiet", "--out", str(afile)]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err
    # --out . among one's own files, one of which scaling would overwrite
    monkeypatch.chdir(tmp_path)
    (tmp_path / "slopes.csv").write_text("my slopes")
    assert main(["scaling", "--quick", "--quiet", "--out", "."]) == 2
    err = capsys.readouterr().err
    assert "holds files dfo did not write (notes.txt)" in err and "slopes.csv" in err
    assert (tmp_path / "slopes.csv").read_text() == "my slopes"


def test_an_earlier_output_folder_is_accepted(tmp_path):
    from dfo.files import check_output_folder

    (tmp_path / "slopes.csv").write_text("an earlier run")
    assert check_output_folder(tmp_path, ("slopes.csv", "x.png"), "--out") == tmp_path
    (tmp_path / "notes.txt").write_text("mine")  # a file of the user beside it
    with pytest.raises(OutputPathError, match="beside files it would overwrite"):
        check_output_folder(tmp_path, ("slopes.csv",), "--out")
    assert check_output_folder(tmp_path / "new" / "deep", ("slopes.csv",)).is_dir()
