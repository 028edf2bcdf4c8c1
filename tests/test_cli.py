"""Tests of the dfo command line (argument handling; tiny compares)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from dfo.cli.main import build_parser, main, parse_method_options
from dfo.compare import records as rec

TINY = ["--task", "xor", "--budget", "200", "--methods", "spsa,random-search", "--seeds", "2"]
QUIET = ["--jobs", "1", "-q", "--no-plots"]


def test_console_script_is_declared():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("dfo") == "dfo.cli:main"


def test_bare_dfo_prints_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: dfo" in out and "compare" in out and "scaling" in out


def test_help_lists_subcommands():
    proc = subprocess.run(
        [sys.executable, "-m", "dfo.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "compare" in proc.stdout and "scaling" in proc.stdout


def test_compare_help_shows_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--task", "--methods", "--budget", "--max-time", "--seeds", "--out"):
        assert option in out
    for option in ("--option", "--quiet", "--resume", "--jobs"):
        assert option in out


def test_scaling_subcommand_is_wired(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["scaling", "--help"])
    assert exc.value.code == 0
    assert "usage: dfo scaling" in capsys.readouterr().out


def test_list_tasks(capsys):
    assert main(["compare", "--list-tasks"]) == 0
    out = capsys.readouterr().out
    for task in ("digits", "digits-step", "spirals", "xor", "sine", "rosenbrock"):
        assert task in out


def test_compare_prints_table_and_writes_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["compare", *TINY, "--out", str(out), *QUIET]) == 0
    printed = capsys.readouterr().out
    assert "spsa" in printed and "random-search" in printed and "test accuracy" in printed
    records = rec.read_records(out / rec.RUNS_FILE)
    assert sorted((r["method"], r["seed"]) for r in records) == [
        ("random-search", 0),
        ("random-search", 1),
        ("spsa", 0),
        ("spsa", 1),
    ]
    assert all(r["budget"] == 200 and r["nfev"] <= 200 for r in records)
    assert printed.strip() == (out / rec.TABLE_TEXT_FILE).read_text().strip()
    assert printed.splitlines()[1].endswith("; BLAS threads per run: 1 (openblas)")


def test_every_command_runs_blas_single_threaded_and_says_so(tmp_path):
    # BLAS asked for 2 threads by the environment: each command still runs with 1
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "MPLBACKEND": "Agg"}
    compare = subprocess.run(
        [sys.executable, "-m", "dfo.cli", "compare", *TINY, "--jobs", "2", "-q",
         "--no-plots", "--out", str(tmp_path / "c")],
        capture_output=True, text=True, timeout=300, check=True, env=env,
    )  # fmt: skip
    header = compare.stdout.splitlines()[:2]
    assert header[0].startswith("dfo compare — task xor")
    assert header[1].endswith("; BLAS threads per run: 1 (openblas)")
    records = rec.read_records(tmp_path / "c" / rec.RUNS_FILE)
    assert {r["blas_threads"] for r in records} == {"1 (openblas)"}
    scaling = subprocess.run(
        [sys.executable, "-m", "dfo.cli", "scaling", "--quick", "-q", "--no-plots",
         "--out", str(tmp_path / "s")],
        capture_output=True, text=True, timeout=300, check=True, env=env,
    )  # fmt: skip
    assert "BLAS threads: 1 (openblas)" in scaling.stdout
    two = subprocess.run(
        [sys.executable, "-m", "dfo.cli", "scaling", "--quick", "-q", "--no-plots",
         "--threads", "2", "--out", str(tmp_path / "s")],
        capture_output=True, text=True, timeout=300, check=True, env=env,
    )  # fmt: skip
    assert "BLAS threads: 2 (openblas)" in two.stdout  # the header reports, not assumes


def test_commands_share_their_short_flags():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags: dict[str, set[tuple[str, ...]]] = {}
    for command in sub.choices.values():
        for action in command._actions:
            longs = [o for o in action.option_strings if o.startswith("--")]
            if longs:
                flags.setdefault(longs[0], set()).add(tuple(sorted(action.option_strings)))
    assert flags["--quiet"] == {("--quiet", "-q")}
    differing = {name: forms for name, forms in flags.items() if len(forms) > 1}
    assert differing == {}


@pytest.mark.parametrize("text, value", [("1e4", 10_000), ("20_000", 20_000), ("2.0e3", 2000)])
def test_integer_options_accept_integral_numbers(text, value):
    args = build_parser().parse_args(["compare", "--budget", text, "--seeds", "3e0"])
    assert args.budget == value and args.seeds == 3


@pytest.mark.parametrize("text", ["2.5", "1e-1", "0", "nan", "inf", "1e400", "ten"])
def test_integer_options_refuse_other_numbers(text, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["compare", "--budget", text])
    assert info.value.code == 2
    assert "argument --budget: expected a positive integer" in capsys.readouterr().err


def test_resume_reads_settings_from_the_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["compare", *TINY, "-o", "spsa.c=0.1", "--out", str(out), *QUIET]) == 0
    first = capsys.readouterr().out
    before = (out / rec.RUNS_FILE).read_text()
    # nothing is missing: nothing runs again, the table is rebuilt from the records
    assert main(["compare", "--resume", "--out", str(out), *QUIET]) == 0
    assert (out / rec.RUNS_FILE).read_text() == before
    assert capsys.readouterr().out == first
    records = rec.read_records(out / rec.RUNS_FILE)
    assert {r["options"]["c"] for r in records if r["method"] == "spsa"} == {0.1}
    # conflicting settings are refused with a clear message
    assert main(["compare", "--resume", "--budget", "300", "--out", str(out), *QUIET]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "budget" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "digitz"], "did you mean"),
        (["--task", "xor", "--methods", "spsaa"], "did you mean"),
        (["--task", "xor", "-o", "spsa.cc=0.1"], "unknown option 'cc'"),
        (["--task", "xor", "-o", "spsa.c"], "METHOD.NAME=VALUE"),
        (["--task", "xor", "-o", "spsa.c=-1"], "c must be"),
        (["--task", "sphere", "--batch-size", "8"], "batch_size"),
    ],
)
def test_bad_options_exit_2_with_a_message(args, message, tmp_path, capsys):
    assert main(["compare", *args, "--out", str(tmp_path), *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dfo compare: error:")
    assert message.lower() in err.lower()
    assert "Traceback" not in err


def test_argparse_rejects_bad_numbers(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--budget", "-5"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_parse_method_options():
    assert parse_method_options(
        ["spsa.c=0.1", "cma-es.popsize=50", "backprop-sgd.step_rule=adam", "spsa.A=None"]
    ) == {
        "spsa": {"c": 0.1, "A": None},
        "cma-es": {"popsize": 50},
        "backprop-sgd": {"step_rule": "adam"},
    }
    # each value read as its option's declared kind reads it
    assert parse_method_options(
        ["spsa.average=true", "cma-es.popsize=1e2", "cma-es.restarts=1_000", "spsa.c=auto"]
    ) == {"spsa": {"average": True, "c": "auto"}, "cma-es": {"popsize": 100, "restarts": 1000}}


def test_parser_builds_without_loading_scaling():
    parser = build_parser(load_scaling=False)
    args = parser.parse_args(["compare", "--seeds", "5", "--first-seed", "10"])
    assert args.seeds == 5 and args.first_seed == 10 and args.command == "compare"


def test_given_gradient_cost_makes_tables_reproducible(tmp_path, capsys):
    import csv

    tables = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["--task", "xor", "--budget", "150", "--methods", "backprop-sgd", "spsa"]
        assert main(["compare", *args, "--gradient-cost", "2.5", "--out", str(out), *QUIET]) == 0
        with open(out / rec.TABLE_CSV_FILE) as fh:
            tables.append(list(csv.DictReader(fh)))
    assert "as given (not measured)" in capsys.readouterr().out
    timed = {k for k in tables[0][0] if k.startswith("time_s") or k == "monitor_seconds"}
    for a, b in zip(*tables, strict=True):
        assert {k: v for k, v in a.items() if k not in timed} == {
            k: v for k, v in b.items() if k not in timed
        }
    backprop = next(row for row in tables[0] if row["method"] == "backprop-sgd")
    nfev, ngev = float(backprop["nfev_median"]), float(backprop["ngev_median"])
    assert float(backprop["cost_median"]) == nfev - ngev + 2.5 * ngev
