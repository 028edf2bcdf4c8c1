"""``dfo compare --scheduler``: runs as tasks on a Dask cluster (a LocalCluster of 2
worker processes here), with the same table and records as a local compare for the
same seeds, resumable as a local one."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dfo.compare import CompareConfig, GradientCost, run_compare
from dfo.compare import records as rec
from dfo.exceptions import InvalidOptionError

distributed = pytest.importorskip("distributed", reason="needs the 'distributed' extra")

CONFIG = CompareConfig(
    task="rosenbrock",
    task_options={"dim": 4},
    methods=("spsa", "cma-es", "nelder-mead", "random-search"),
    seeds=(0, 1, 2),
    budget=300,
)
TIMING = {"time_s_median", "time_s_min", "time_s_max", "monitor_seconds"}
#: the cost of a gradient is given, not measured (a measurement varies between compares)
COST = GradientCost.given(2.0)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scheduler():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        silence_logs=40,
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _table(folder: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO((folder / rec.TABLE_CSV_FILE).read_text())))
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def _records(folder: Path) -> dict[tuple[str, int], dict]:
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in ("time", "seconds")}
        return [strip(v) for v in obj] if isinstance(obj, list) else obj

    out = {}
    for line in (folder / rec.RUNS_FILE).read_text().splitlines():
        record = json.loads(line)
        out[record["method"], record["seed"]] = strip(record)
    return out


def test_cluster_compare_equals_the_local_one_and_resumes(scheduler, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    run_compare(CONFIG, local, jobs=1, plots=False, gradient_cost=COST)
    result = run_compare(CONFIG, remote, plots=False, scheduler=scheduler, gradient_cost=COST)
    assert len(result.records) == 12
    assert _table(remote) == _table(local)
    assert _records(remote) == _records(local)
    assert {r["blas_threads"] for r in result.records} == {"1 (openblas)"}
    assert "2 at a time" in (remote / rec.TABLE_TEXT_FILE).read_text()

    # an interrupted cluster compare: keep 5 of the 12 runs, resume on the cluster
    lines = (remote / rec.RUNS_FILE).read_text().splitlines(keepends=True)
    (remote / rec.RUNS_FILE).write_text("".join(lines[:5]))
    resumed = run_compare(CONFIG, remote, resume=True, plots=False, scheduler=scheduler)
    assert len(resumed.records) == 12
    assert (remote / rec.RUNS_FILE).read_text().splitlines(keepends=True)[:5] == lines[:5]
    assert _table(remote) == _table(local)
    assert _records(remote) == _records(local)


def test_command_line_scheduler_option(scheduler, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "dfo.cli", "compare", "--task", "sphere", "--dim", "3",
         "--budget", "1e2", "--seeds", "2", "--methods", "spsa,cma-es", "-q", "--no-plots",
         "--scheduler", scheduler, "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[1].endswith("; BLAS threads per run: 1 (openblas)")
    assert "in parallel processes, 2 at a time" in proc.stdout  # the cluster's 2 workers
    assert len(rec.read_records(tmp_path / "run" / rec.RUNS_FILE)) == 4


def test_no_scheduler_at_the_address_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidOptionError, match="no Dask scheduler answered at"):
        run_compare(CONFIG, tmp_path / "x", plots=False, scheduler="tcp://127.0.0.1:9")
