"""The ``dfo`` command: its parser and entry point (see :mod:`dfo.cli`)."""

from __future__ import annotations

import argparse
import ast
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dfo.cli import argtypes

__all__ = ["build_parser", "main"]

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_COMPARE_EPILOG = """\
examples:
  dfo compare                                   # digits, all methods, 3 seeds (< 2 min)
  dfo compare --task digits-step                # step units: backprop trains only the output layer
  dfo compare --methods spsa cma-es --budget 100000 --seeds 5
  dfo compare -o spsa.c=0.1 -o cma-es.popsize=50 -o nelder-mead.budget=30000
  dfo compare --task rosenbrock --dim 20
  dfo compare --resume                          # finish an interrupted compare

The run folder (--out) receives table.txt, table.csv, runs.jsonl (one JSON line
per finished run, with its history), config.json and PNG plots. Each run is
determined by its seed: --jobs changes only wall times. BLAS runs single-threaded
in every process (set OPENBLAS_NUM_THREADS to change that); runs are spread
over --jobs processes instead.
"""


def _single_threaded_blas() -> None:
    """Make BLAS single-threaded unless numpy is already loaded or the user chose."""
    if "numpy" in sys.modules:
        return
    for name in _BLAS_VARS:
        os.environ.setdefault(name, "1")


class _UsageError(Exception):
    """A bad command-line value (reported as ``error: ...``, status 2)."""


def _parse_value(text: str, method: str = "", name: str = "") -> Any:
    """``text`` read as the declared kind of ``method``'s option ``name`` reads it."""
    from dfo.exceptions import InvalidOptionError
    from dfo.optimizers import option_kinds

    try:
        kind = option_kinds(method).get(name) if method else None
    except (InvalidOptionError, TypeError):  # an unknown method: refused later, by name
        kind = None
    if kind is not None:
        return kind.parse(text)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_method_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["spsa.c=0.1", "cma-es.popsize=50"]`` -> ``{"spsa": {"c": 0.1}, ...}``.

    Each value is read as its option's declared kind reads it (see
    :meth:`dfo.options.Kind.parse`): Python literals (numbers, True, None, tuples),
    ``true``/``false`` for flags, ``1e4`` for an integer, or else strings.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        head, sep, value = item.partition("=")
        method, dot, name = head.rpartition(".")
        if not sep or not dot or not method or not name:
            raise _UsageError(
                f"-o/--option expects METHOD.NAME=VALUE, e.g. spsa.c=0.1; got {item!r}"
            )
        method, name = method.strip(), name.strip()
        out.setdefault(method, {})[name] = _parse_value(value.strip(), method, name)
    return out


def _split_methods(values: Sequence[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    return tuple(name for name in names if name)


def _add_compare_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_argument_group("what to compare")
    what.add_argument(
        "--task",
        default=None,
        metavar="NAME",
        help="digits (default), digits-step (not differentiable), spirals, xor, sine, or a "
        "test function: sphere, ellipsoid, rosenbrock, rastrigin, skewed-quartic "
        "(see --list-tasks)",
    )
    what.add_argument("--list-tasks", action="store_true", help="list the tasks and exit")
    what.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="METHOD",
        help="methods to run, by name, separated by spaces or commas (default: the task's: "
        "backprop-sgd forward-gradient fd-sgd fd-bfgs spsa cma-es nelder-mead random-search)",
    )
    what.add_argument(
        "--budget",
        type=argtypes.positive_int,
        default=None,
        metavar="N",
        help="objective evaluations per run, the same for every method (default: the "
        "task's, 20,000 for digits; Nelder-Mead is capped at 2(n+1) above 100 "
        "parameters, see the table's notes)",
    )
    what.add_argument(
        "--max-time",
        type=argtypes.seconds,
        default=None,
        metavar="SECONDS",
        help="wall-clock limit per run (off by default; with it, results depend on the "
        "machine's speed)",
    )
    what.add_argument(
        "--seeds",
        type=argtypes.positive_int,
        default=None,
        metavar="N",
        help="number of seeds per method (default 3); the seeds are FIRST .. FIRST+N-1",
    )
    what.add_argument(
        "--first-seed", type=argtypes.nonneg_int, default=None, metavar="FIRST", help="default 0"
    )
    what.add_argument(
        "-o",
        "--option",
        action="append",
        default=None,
        metavar="METHOD.NAME=VALUE",
        help="a per-method option, repeatable: e.g. -o spsa.c=0.1 -o cma-es.sigma0=0.2 "
        "-o backprop-sgd.step_rule=adam; NAME may also be budget or max_time. Options "
        "override the task's tuned defaults (listed under the table)",
    )
    what.add_argument(
        "--batch-size",
        type=argtypes.positive_int,
        default=None,
        metavar="B",
        help="minibatch size of a network task (default: the task's, 128 for digits)",
    )
    what.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default=None,
        help="float type of a network task's arithmetic (default float64)",
    )
    what.add_argument(
        "--dim",
        type=argtypes.positive_int,
        default=None,
        metavar="N",
        help="number of variables of a test function task (default 10)",
    )
    how = p.add_argument_group("how to run")
    how.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="run folder (default: dfo-runs/TASK): new, empty, or a dfo run folder, whose "
        "earlier results are replaced unless --resume; locked while the compare runs",
    )
    how.add_argument(
        "--resume",
        action="store_true",
        help="keep the finished runs in --out and run only the missing ones (the "
        "settings are read from the folder; other settings are refused, and damaged "
        "lines of runs.jsonl are skipped and run again)",
    )
    how.add_argument(
        "--jobs",
        type=argtypes.positive_int,
        default=None,
        metavar="J",
        help="runs at a time, in separate processes (default: the number of CPUs)",
    )
    how.add_argument(
        "--gradient-cost",
        type=argtypes.positive_float,
        default=None,
        metavar="RATIO",
        help="cost of one gradient in forward evaluations, instead of measuring it "
        "(makes the cost column reproducible across compares)",
    )
    how.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the method x seed runs as tasks on the Dask cluster whose scheduler is at "
        "ADDRESS (e.g. tcp://scheduler-host:8786; its workers need dfo installed); the "
        "table and --resume are as with local processes, --jobs is not used",
    )
    how.add_argument("--no-plots", action="store_true", help="do not write the PNG plots")
    how.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar and no messages; the table is still printed",
    )


def _list_tasks() -> int:
    from dfo.compare.tasks import TASKS

    width = max(len(name) for name in TASKS)
    for name, info in TASKS.items():
        print(f"{name.ljust(width)}  {info.summary}")
    return 0


def _compare_config(args: argparse.Namespace) -> tuple[Any, Path]:
    from dfo.compare import records as rec
    from dfo.compare.runner import CompareConfig

    task = args.task or "digits"
    out = Path(args.out) if args.out is not None else Path("dfo-runs") / task
    base: dict[str, Any] = {}
    if args.resume and (out / rec.CONFIG_FILE).is_file():
        base = dict(rec.read_config(out / rec.CONFIG_FILE)["request"])
    given: dict[str, Any] = {}
    if args.task is not None:
        given["task"] = args.task
    methods = _split_methods(args.methods)
    if methods is not None:
        given["methods"] = methods
    if args.budget is not None:
        given["budget"] = args.budget
    if args.max_time is not None:
        given["max_time"] = args.max_time
    if args.seeds is not None or args.first_seed is not None:
        n = args.seeds if args.seeds is not None else len(base.get("seeds", (0, 1, 2)))
        first = args.first_seed if args.first_seed is not None else 0
        given["seeds"] = tuple(range(first, first + n))
    if args.option:
        given["options"] = parse_method_options(args.option)
    same_task = given.get("task", base.get("task")) == base.get("task")
    task_options = dict(base.get("task_options", {})) if same_task else {}
    if args.batch_size is not None:
        task_options["batch_size"] = args.batch_size
    if args.dtype is not None:
        task_options["dtype"] = args.dtype
    if args.dim is not None:
        task_options["dim"] = args.dim
    given["task_options"] = task_options
    config = CompareConfig.from_dict({**base, **given})
    return config, out


def _run_compare(args: argparse.Namespace) -> int:
    if args.list_tasks:
        return _list_tasks()
    _single_threaded_blas()
    from dfo.compare import records as rec
    from dfo.compare.cost import GradientCost
    from dfo.compare.runner import default_jobs, run_compare

    config, out = _compare_config(args)
    given = None if args.gradient_cost is None else GradientCost.given(args.gradient_cost)
    jobs = args.jobs if args.jobs is not None else default_jobs()
    try:
        result = run_compare(
            config,
            out,
            resume=args.resume,
            jobs=jobs,
            progress=not args.quiet,
            plots=not args.no_plots,
            gradient_cost=given,
            scheduler=args.scheduler,
        )
    except KeyboardInterrupt:
        done = len(rec.read_records(out / rec.RUNS_FILE))
        print(
            f"\ninterrupted: {done} finished run{'s' * (done != 1)} saved in {out}; "
            f"continue with: dfo compare --resume --out {out}",
            file=sys.stderr,
        )
        return 130
    if result.skipped:
        print(
            f"dfo compare: note: {result.skipped} damaged line{'s' * (result.skipped != 1)} "
            f"of {out / rec.RUNS_FILE} skipped and removed ("
            + "; ".join(result.skipped_reasons)
            + "); their runs were run again",
            file=sys.stderr,
        )
    print(result.table.text)
    if not args.quiet:
        files = [rec.TABLE_TEXT_FILE, rec.TABLE_CSV_FILE, rec.RUNS_FILE, rec.CONFIG_FILE]
        if not args.no_plots:
            files += [
                "loss_vs_cost.png",
                "loss_vs_time.png",
                "final_metric.png",
                "runtime_distribution.png",
            ]
        print(f"\nrun folder: {out}/ ({', '.join(files)})")
    return 0


def _scaling_unavailable(args: argparse.Namespace) -> int:
    print("dfo scaling: not available in this installation", file=sys.stderr)
    return 1


def _add_scaling(sub: Any, load: bool) -> None:
    help_text = "measure why backprop is cheaper than finite differences as n grows"
    if not load:
        # listed in `dfo --help`; the module is imported only when the command is used
        sub.add_parser("scaling", help=help_text, add_help=False)
        return
    try:
        from dfo import scaling  # the package dfo.scaling
    except ModuleNotFoundError as exc:
        if exc.name != "dfo.scaling":
            raise
        p = sub.add_parser("scaling", help=help_text)
        p.set_defaults(handler=_scaling_unavailable)
        return
    p = sub.add_parser(
        "scaling",
        help=help_text,
        description=(scaling.__doc__ or help_text).split("\n\n")[0].strip("` \n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scaling.add_arguments(p)
    p.set_defaults(handler=scaling.run)


def build_parser(*, load_scaling: bool = True) -> argparse.ArgumentParser:
    """The ``dfo`` argument parser with its subcommands.

    Parameters
    ----------
    load_scaling : bool, default True
        Import :mod:`dfo.scaling` for the ``scaling`` subcommand's options; when
        False the subcommand is only listed.
    """
    from dfo import __version__

    parser = argparse.ArgumentParser(
        prog="dfo",
        description="Derivative-free optimization against backpropagation, measured: "
        "train one network with finite differences, SPSA, CMA-ES, Nelder-Mead and "
        "backprop under the same budget. Without a subcommand, prints this help.",
    )
    parser.add_argument("--version", action="version", version=f"dfo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    p = sub.add_parser(
        "compare",
        help="run several methods x seeds on one task; print a table, write plots",
        description="Train one task with several methods under the same evaluation budget "
        "and several seeds; print a table (final training loss and test accuracy, "
        "evaluations, gradients, cost in forward-evaluation equivalents, wall time) and "
        "write the run folder with plots.",
        epilog=_COMPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_compare_arguments(p)
    p.set_defaults(handler=_run_compare)
    _add_scaling(sub, load_scaling)
    from dfo.cli import crossover

    p = sub.add_parser(
        "crossover",
        help="the gap as networks grow: cost to a fixed target against the width",
        description="Run dfo compare on the digits network at several hidden widths and "
        "print each method's cost to one training-loss target against the number of "
        "parameters, with fitted log-log slopes and where the curves cross.",
    )
    crossover.add_arguments(p)
    p.set_defaults(handler=crossover.run)
    return parser


def _first_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dfo`` command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for bad options, 130 when interrupted.

    Raises
    ------
    SystemExit
        From :mod:`argparse`: with status 2 for arguments it cannot parse (an
        unknown flag, a malformed number), with status 0 after ``--help`` or
        ``--version``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(load_scaling=_first_command(argv) == "scaling")
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    from dfo.exceptions import (
        GradientNotAvailableError,
        InvalidOptionError,
        OutputPathError,
        RunFolderError,
        ShapeError,
    )

    usage = (
        _UsageError,
        InvalidOptionError,
        ShapeError,
        GradientNotAvailableError,
        OutputPathError,
        RunFolderError,
    )
    try:
        return int(handler(args) or 0)
    except usage as exc:
        print(f"dfo {args.command}: error: {exc}", file=sys.stderr)
        return 2
