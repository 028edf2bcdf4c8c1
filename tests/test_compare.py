"""Tests of dfo compare: runs, records, resume, the table and the plots, on tiny tasks."""

from __future__ import annotations

import csv
import io
import statistics

import numpy as np
import pytest

from dfo.compare import (
    CompareConfig,
    GradientCost,
    ResumeMismatchError,
    get_task,
    plan_runs,
    run_compare,
    run_cost,
    run_one,
)
from dfo.compare import records as rec
from dfo.compare import runner as compare_runner
from dfo.compare.cost import measure_gradient_cost
from dfo.compare.plots import band
from dfo.exceptions import InvalidOptionError
from dfo.run.minimize import minimize

# a fixed ratio keeps tables comparable across processes (it is measured otherwise)
FIXED_COST = GradientCost(
    ratio=2.0, forward_seconds=1e-5, gradient_seconds=2e-5, repeats=1, number=1, batch_size=None
)
TINY = CompareConfig(
    task="xor", methods=("backprop-sgd", "spsa", "random-search"), seeds=(0, 1, 2), budget=300
)
TIME_FIELDS = {"time", "seconds"}


def _strip_times(obj):
    """A record without its wall-clock fields (everything else is determined by the seed)."""
    if isinstance(obj, dict):
        return {k: _strip_times(v) for k, v in obj.items() if k not in TIME_FIELDS}
    if isinstance(obj, list):
        return [_strip_times(v) for v in obj]
    return obj


def _csv_rows(text):
    return {row["method"]: row for row in csv.DictReader(io.StringIO(text))}


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return run_compare(TINY, out, gradient_cost=FIXED_COST, plots=True)


# -- the table equals the runs' results ------------------------------------------------------


def test_table_numbers_equal_the_records(tiny_result):
    table = tiny_result.table
    records = rec.read_records(tiny_result.out / rec.RUNS_FILE)
    assert len(records) == 9
    csv_rows = _csv_rows((tiny_result.out / rec.TABLE_CSV_FILE).read_text())
    for method in TINY.methods:
        mine = [r for r in records if r["method"] == method]
        assert sorted(r["seed"] for r in mine) == [0, 1, 2]
        losses = [r["train_loss"] for r in mine]
        accs = [r["test_metric"] for r in mine]
        costs = [r["nfev"] - r["ngev"] + 2.0 * r["ngev"] for r in mine]
        row = table.row(method)
        assert row.train_loss == (statistics.median(losses), min(losses), max(losses))
        assert row.test_metric == (statistics.median(accs), min(accs), max(accs))
        assert row.cost[0] == pytest.approx(statistics.median(costs), rel=1e-12)
        assert row.nfev[0] == statistics.median(r["nfev"] for r in mine)
        # the CSV holds the same numbers, exactly
        line = csv_rows[method]
        assert float(line["training_cross_entropy_median"]) == statistics.median(losses)
        assert float(line["test_accuracy_min"]) == min(accs)
        assert float(line["test_accuracy_max"]) == max(accs)
        assert float(line["cost_median"]) == pytest.approx(statistics.median(costs), rel=1e-12)
        # and the printed table shows the median accuracy in percent
        text_line = next(t for t in table.text.splitlines() if t.startswith(method))
        assert f"{100 * statistics.median(accs):.1f}" in text_line


def test_best_derivative_free_note(tiny_result):
    table = tiny_result.table
    free = {m: table.row(m).test_metric[0] for m in ("spsa", "random-search")}
    best = max(free, key=free.get)
    note = next(t for t in table.text.splitlines() if t.startswith("Best derivative-free"))
    assert f"method: {best}, median test accuracy {100 * free[best]:.1f}%" in note
    diff = 100 * (free[best] - table.row("backprop-sgd").test_metric[0])
    assert f"({diff:+.1f} points)" in note


def test_records_are_honest_about_budget_and_final_point(tiny_result):
    task = get_task("xor")
    for r in tiny_result.records:
        assert r["nfev"] <= r["budget"] == 300
        curve = r["monitor"]["curve"]
        # monitoring is counted apart: two evaluations (train loss, test accuracy) per point
        assert r["monitor"]["evaluations"] == 2 * r["monitor"]["points"] == 2 * len(curve["nfev"])
        assert curve["nfev"][0] == 0 and curve["nfev"][-1] == r["nfev"]
        assert np.all(np.diff(curve["nfev"]) >= 0)
        # the start point is the seed's, the same for every method
        x0 = task.start(r["seed"])
        assert r["start_train_loss"] == task.train_loss(x0)
        assert r["start_test_metric"] == task.test_metric(x0)
        assert r["status"] in ("budget", "converged")


def test_monitoring_is_not_charged_and_does_not_change_the_run():
    task = get_task("xor")
    spec = plan_runs(CompareConfig(task="xor", methods=("spsa",), seeds=(3,), budget=400))[1][0]
    record = run_one(spec)
    # the same run without any monitoring callback
    res = minimize(task.objective, task.start(3), "spsa", budget=400, seed=3, **spec.options)
    assert record["nfev"] == res.nfev and record["nit"] == res.nit
    assert record["fun"] == res.fun
    assert record["train_loss"] == task.train_loss(res.x)
    assert record["test_metric"] == task.test_metric(res.x)
    assert record["monitor"]["points"] > 10
    # monitored at the first iteration reaching each log-spaced mark, as a callback
    # called after every iteration would have been (the loop calls it at the marks only)
    marks = compare_runner.Monitor(task, 400, spec.n_monitor).marks
    nfev = res.history["nfev"]
    first = [int(nfev[np.searchsorted(nfev, m)]) for m in marks if m <= nfev[-1]]
    assert record["monitor"]["curve"]["nfev"][1:-1] == sorted(set(first))


def test_a_record_holds_the_run_as_a_result_document(tmp_path):
    from dfo.result_io import FORMAT, result_from_document

    task = get_task("xor")
    spec = plan_runs(CompareConfig(task="xor", methods=("cma-es",), seeds=(2,), budget=500))[1][0]
    record = run_one(spec)
    rec.check_record(record)
    res = minimize(task.objective, task.start(2), "cma-es", budget=500, seed=2, **spec.options)
    assert record["result"]["format"] == FORMAT and "history" not in record
    back = result_from_document(record["result"])
    np.testing.assert_array_equal(back.x, res.x)
    assert (back.fun, back.nfev, back.nit, back.status) == (res.fun, res.nfev, res.nit, res.status)
    assert back.options == res.options and back.message == res.message
    # the history is thinned to log-spaced rows, the last one kept, each row exact
    rows = np.searchsorted(res.history["nit"], back.history["nit"])
    assert back.history["nit"][-1] == res.nit and len(rows) <= compare_runner.HISTORY_ROWS
    for name in ("nfev", "value", "best"):
        np.testing.assert_array_equal(back.history[name], res.history[name][rows])
    # what the file holds after a compare reads back the same way
    out = tmp_path / "run"
    run_compare(CompareConfig(task="xor", methods=("cma-es",), seeds=(2,), budget=500), out,
                plots=False)  # fmt: skip
    (line,) = rec.read_records(out / rec.RUNS_FILE)
    np.testing.assert_array_equal(result_from_document(line["result"]).x, res.x)


def test_runs_are_determined_by_their_seed():
    _, specs = plan_runs(
        CompareConfig(task="xor", methods=("random-search",), seeds=(1,), budget=300)
    )
    a, b = run_one(specs[0]), run_one(specs[0])
    assert _strip_times(a) == _strip_times(b)


def test_stochastic_task_record(tmp_path):
    # a minibatch task: monitoring evaluates the full training set, the run a minibatch
    config = CompareConfig(
        task="spirals", methods=("backprop-sgd",), seeds=(0,), budget=200, n_monitor=5
    )
    task, specs = plan_runs(config)
    assert task.objective.is_stochastic and task.batch_size == 64
    record = run_one(specs[0])
    assert record["ngev"] >= 199 and record["nfev"] <= 200
    assert record["monitor"]["points"] <= 5 + 2


# -- the run folder, interruption and resume ----------------------------------------------------


def test_run_folder_files(tiny_result):
    out = tiny_result.out
    for name in ("config.json", "runs.jsonl", "table.txt", "table.csv"):
        assert (out / name).is_file()
    for name in ("loss_vs_cost.png", "loss_vs_time.png", "final_metric.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = rec.read_json(out / "config.json")
    assert config["compare"]["methods"] == list(TINY.methods)
    assert config["gradient_cost"]["ratio"] == 2.0
    assert (out / "table.txt").read_text().strip() == tiny_result.table.text.strip()


def test_interrupt_keeps_finished_runs_and_resume_gives_the_same_table(
    tiny_result, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    calls = []
    real = compare_runner.run_one

    def interrupted_after_four(spec):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(spec.key)
        return real(spec)

    monkeypatch.setattr(compare_runner, "run_one", interrupted_after_four)
    with pytest.raises(KeyboardInterrupt):
        run_compare(TINY, out, gradient_cost=FIXED_COST, plots=False)
    assert len(rec.read_records(out / rec.RUNS_FILE)) == 4
    # a kill in the middle of a write leaves a partial last line: it is dropped
    with open(out / rec.RUNS_FILE, "a") as fh:
        fh.write('{"method": "spsa", "se')

    resumed = []

    def counting(spec):
        resumed.append(spec.key)
        return real(spec)

    monkeypatch.setattr(compare_runner, "run_one", counting)
    result = run_compare(TINY, out, resume=True, plots=False)
    assert sorted(resumed) == sorted(set(s.key for s in result.specs) - set(calls))
    assert len(rec.read_records(out / rec.RUNS_FILE)) == 9
    # same numbers as the uninterrupted compare, wall times aside
    uninterrupted = {(r["method"], r["seed"]): r for r in tiny_result.records}
    for r in result.records:
        assert _strip_times(r) == _strip_times(uninterrupted[(r["method"], r["seed"])])
    for method in TINY.methods:
        a, b = result.table.row(method), tiny_result.table.row(method)
        assert (a.train_loss, a.test_metric, a.nfev, a.ngev, a.cost) == (
            b.train_loss,
            b.test_metric,
            b.nfev,
            b.ngev,
            b.cost,
        )
    # the stored measurement of the gradient cost was reused
    assert result.gradient_cost == FIXED_COST


def test_resume_refuses_other_settings(tmp_path):
    config = CompareConfig(task="xor", methods=("spsa",), seeds=(0,), budget=100)
    run_compare(config, tmp_path, gradient_cost=FIXED_COST, plots=False)
    other = CompareConfig(task="xor", methods=("spsa",), seeds=(0,), budget=200)
    with pytest.raises(ResumeMismatchError, match="budget"):
        run_compare(other, tmp_path, resume=True, plots=False)
    # without resume the folder is started afresh
    result = run_compare(other, tmp_path, gradient_cost=FIXED_COST, plots=False)
    records = rec.read_records(tmp_path / rec.RUNS_FILE)
    assert [r["budget"] for r in records] == [200] and result.records == records


def test_partial_table_lists_missing_runs(tiny_result):
    from dfo.compare.table import build_table

    task, specs = plan_runs(TINY)
    table = build_table(task, specs, tiny_result.records[:4], FIXED_COST)
    assert len(table.missing) == 5
    assert "Incomplete: 5 planned runs" in table.text


def test_read_records_repairs_a_cut_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    rec.append_record(path, {"method": "a", "seed": 0, "x": np.float64(1.5)})
    rec.append_record(path, {"method": "b", "seed": 1, "v": float("inf")})
    with open(path, "a") as fh:
        fh.write('{"method": "c"')
    records = rec.read_records(path, repair=True)
    assert records == [
        {"method": "a", "seed": 0, "x": 1.5},
        {"method": "b", "seed": 1, "v": np.inf},
    ]
    assert path.read_text().count("\n") == 2


# -- planning and options ---------------------------------------------------------------------


def test_plan_merges_task_defaults_with_user_options():
    config = CompareConfig(
        task="digits",
        methods=("spsa", "nelder-mead"),
        seeds=(0, 1),
        options={"spsa": {"c": 0.2, "budget": 500}},
    )
    task, specs = plan_runs(config)
    assert task.dim == 1210
    spsa = [s for s in specs if s.method == "spsa"]
    assert [s.seed for s in spsa] == [0, 1]
    assert spsa[0].options == {**task.options["spsa"], "c": 0.2}
    assert spsa[0].budget == 500
    nm = next(s for s in specs if s.method == "nelder-mead")
    assert nm.budget == 2 * (1210 + 1) < task.budget


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (CompareConfig(task="digitz"), "digits"),
        (CompareConfig(task="xor", methods=("spsaa",)), "spsa"),
        (CompareConfig(task="xor", methods=("spsa",), options={"spsa": {"cc": 1}}), "'c'"),
        (CompareConfig(task="xor", methods=("spsa",), options={"spsa": {"c": -1.0}}), "c must"),
        (CompareConfig(task="xor", methods=("spsa",), options={"cma-es": {}}), "not among"),
        (CompareConfig(task="xor", seeds=(0, 0)), "twice"),
        (CompareConfig(task="xor", budget=0), "budget"),
        (CompareConfig(task="xor", task_options={"dim": 3}), "batch_size"),
    ],
)
def test_bad_settings_raise_before_any_run(config, match):
    with pytest.raises(InvalidOptionError, match=match):
        plan_runs(config)


def test_tasks_start_points_and_metrics():
    task = get_task("sphere", dim=5)
    x0 = task.start(0)
    assert x0.shape == (5,) and np.all(np.abs(x0) <= 2)
    assert task.train_loss(x0) == pytest.approx(float(np.sum(x0**2)))
    assert np.array_equal(task.start(0), x0) and not np.array_equal(task.start(1), x0)
    assert task.test_metric is None
    sine = get_task("sine")
    assert sine.test_label == "test MSE" and not sine.higher_is_better
    assert get_task("digits-step").objective.net.activation == "step"


# -- cost accounting ----------------------------------------------------------------------------


def test_run_cost_formula():
    assert run_cost(100, 0, 2.5) == 100
    assert run_cost(100, 100, 2.5) == 250
    assert np.array_equal(run_cost([10, 20], [5, 0], 3.0), [20.0, 20.0])
    assert run_cost(7, 3, None) == 7


def test_measured_gradient_cost_is_a_timing_ratio():
    task = get_task("spirals")
    cost = measure_gradient_cost(task.objective, task.start(0), repeats=3, min_seconds=2e-4)
    assert cost.batch_size == 64
    assert cost.ratio == pytest.approx(cost.gradient_seconds / cost.forward_seconds)
    assert 0.3 < cost.ratio < 30  # a gradient is a small constant times a forward pass
    assert "minibatch of 64" in cost.describe()
    assert GradientCost.from_dict(cost.to_dict()) == cost
    from dfo.objective import as_objective

    assert measure_gradient_cost(as_objective(lambda x: 0.0, dim=2), np.zeros(2)) is None


# -- table text and plots -----------------------------------------------------------------------


def test_table_text_shows_no_progress_plainly(tmp_path):
    config = CompareConfig(
        task="xor", methods=("backprop-sgd", "nelder-mead"), seeds=(0,), budget=150
    )
    result = run_compare(config, None, gradient_cost=FIXED_COST)
    text = result.table.text
    assert "start (x0)" in text and "nelder-mead" in text
    start_loss = result.records[0]["start_train_loss"]
    nm = result.table.row("nelder-mead")
    stalled = nm.train_loss[0] > start_loss - 0.1 * start_loss
    assert ("No progress: nelder-mead" in text) == stalled
    assert "No progress: backprop-sgd" not in text
    assert "2.00 x gradients" in text and "Monitoring, not charged" in text


def test_band_of_step_curves():
    curves = [
        (np.array([1.0, 10.0, 100.0]), np.array([5.0, 3.0, 1.0])),
        (np.array([2.0, 20.0]), np.array([6.0, 2.0])),
    ]
    grid, med, lo, hi = band(curves)
    assert np.array_equal(grid, [1, 2, 10, 20, 100])
    # at x=1 only the first curve has started; afterwards a curve holds its last value
    assert np.array_equal(lo, [5, 5, 3, 2, 1])
    assert np.array_equal(hi, [5, 6, 6, 3, 2])
    assert np.array_equal(med, [5, 5.5, 4.5, 2.5, 1.5])


def test_network_task_dtype():
    from dfo.compare.tasks import get_task

    task = get_task("xor", dtype="float32")
    assert task.objective.dtype == np.float32 and "float32" in task.description
    assert task.start(0).dtype == np.float64
    assert "float64" in get_task("xor").description


def test_parallel_compare_checks_options_in_the_workers(tmp_path):
    # the parent never imports pycma, yet a bad cma-es value is refused before any run
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import sys
        from dfo.compare import CompareConfig, run_compare
        from dfo.exceptions import InvalidOptionError
        cfg = dict(task="sphere", methods=("cma-es", "spsa"), seeds=(0, 1), budget=60)
        result = run_compare(CompareConfig(**cfg), {str(tmp_path / "ok")!r}, jobs=2, plots=False)
        assert len(result.records) == 4
        print("cma" in sys.modules)
        bad = CompareConfig(**cfg, options={{"cma-es": {{"sigma0": -1.0}}}})
        try:
            run_compare(bad, {str(tmp_path / "bad")!r}, jobs=2, plots=False)
        except InvalidOptionError as exc:
            print("refused:", "sigma0" in str(exc))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split("\n")
    assert out[0] == "False" and out[1] == "refused: True"
    assert not (tmp_path / "bad" / "runs.jsonl").exists()


def _loaded(name):
    """Whether module ``name`` is imported in this (worker) process."""
    import sys

    return name in sys.modules


def test_workers_import_the_libraries_of_their_methods_as_they_start():
    with compare_runner.Workers(2, 2, methods=("spsa", "cma-es")) as workers:
        assert workers.pool.map(_loaded, ["cma", "cma"], chunksize=1) == [True, True]
    with compare_runner.Workers(2, 2, methods=("spsa",)) as workers:
        assert workers.pool.map(_loaded, ["cma", "dfo"], chunksize=1) == [False, True]
