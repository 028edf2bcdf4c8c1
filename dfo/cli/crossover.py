"""The ``dfo crossover`` subcommand: cost to a fixed target as the network widens."""

from __future__ import annotations

import argparse

from dfo.cli import argtypes

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``dfo crossover`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument(
        "--widths",
        type=argtypes.positive_int,
        nargs="+",
        default=[4, 16, 64, 256],
        metavar="H",
        help="hidden widths of the 64-H-10 digits network (default: %(default)s)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["backprop-sgd", "forward-gradient", "spsa", "cma-es", "fd-sgd"],
        metavar="METHOD",
        help="methods (default: %(default)s)",
    )
    parser.add_argument(
        "--seeds",
        type=argtypes.positive_int,
        default=2,
        metavar="N",
        help="seeds per method and width, 0 .. N-1 (default %(default)s)",
    )
    parser.add_argument(
        "--budget",
        type=argtypes.positive_int,
        default=20_000,
        help="evaluations per run, every width (default: %(default)s)",
    )
    parser.add_argument(
        "--target",
        type=argtypes.positive_float,
        default=None,
        help="training-loss level to reach (default: the task's middle target, 0.5)",
    )
    parser.add_argument(
        "--task", default="digits", choices=("digits", "digits-step"), help="default: digits"
    )
    parser.add_argument(
        "--out",
        default="dfo-runs/crossover",
        metavar="DIR",
        help="folder: one compare run folder per width (hidden-H/) and crossover.txt, "
        ".csv, .png (default: %(default)s)",
    )
    parser.add_argument(
        "--jobs",
        type=argtypes.positive_int,
        default=None,
        help="runs at a time in separate processes (default: the CPUs available)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--no-plots", action="store_true", help="no PNG files")


def run(args: argparse.Namespace) -> int:
    """Run ``dfo crossover``; print the table, slopes and the crossover statement.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of :func:`add_arguments`.

    Returns
    -------
    int
        0.
    """
    from dfo.compare.crossover import run_crossover
    from dfo.compare.runner import default_jobs, single_threaded_blas

    with single_threaded_blas():
        result = run_crossover(
            widths=args.widths,
            methods=args.methods,
            seeds=tuple(range(args.seeds)),
            budget=args.budget,
            target=args.target,
            task=args.task,
            out=args.out,
            jobs=args.jobs or default_jobs(),
            progress=not args.quiet,
            plots=not args.no_plots,
        )
    print(result.text)
    print(
        f"\nfolder: {args.out}/ (crossover.txt, crossover.csv, hidden-H/ per width"
        + ("" if args.no_plots else ", crossover.png")
        + ")"
    )
    return 0
