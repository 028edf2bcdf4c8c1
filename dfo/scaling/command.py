"""The ``dfo scaling`` subcommand: its options and the run that prints, writes and plots."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dfo.cli import argtypes
from dfo.exceptions import InvalidOptionError
from dfo.files import check_output_folder
from dfo.scaling.accuracy import estimate_cosine, fd_step_error_curve
from dfo.scaling.costs import GradientTiming, fit_slopes, measure_gradient_costs
from dfo.scaling.workload import sweep_sizes
from dfo.threads import limit_blas

__all__ = ["add_arguments", "run"]

#: the files ``dfo scaling`` writes into ``--out``
OUTPUT_FILES = (
    "gradient_costs.csv",
    "slopes.csv",
    "fd_step_error.csv",
    "estimate_cosine.csv",
    "estimate_cosine_vs_n.csv",
    "gradient_costs.png",
    "fd_step_error.png",
    "estimate_cosine.png",
    "estimate_cosine_vs_n.png",
)


@dataclass(frozen=True)
class _Settings:
    """Resolved options of one run (defaults, or the ``--quick`` preset)."""

    max_params: int = 100_000
    sizes: int = 12
    repeats: int = 5
    batch: int = 256
    min_time: float = 0.01
    fd_exact_max: int = 3_000
    fd_block: int = 64
    fit_from: int = 3_000
    v_params: int = 310
    v_steps: int = 40
    spsa_sizes: tuple[int, ...] = (100, 1_000, 10_000)
    spsa_qmax: int = 1024
    spsa_repeats: int = 3
    cosine_repeats: int = 30


_QUICK = _Settings(
    max_params=2_000,
    sizes=5,
    repeats=1,
    batch=64,
    min_time=0.002,
    fd_exact_max=500,
    fd_block=16,
    fit_from=300,
    v_params=85,
    v_steps=14,
    spsa_sizes=(85, 310),
    spsa_qmax=32,
    spsa_repeats=2,
    cosine_repeats=8,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``dfo scaling`` to ``parser``.

    Options left unset take the default run's values, or the ``--quick`` preset's.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser (or subcommand parser) to add the options to.
    """
    d, q = _Settings(), _QUICK
    parser.add_argument(
        "--out",
        default="dfo-scaling",
        metavar="DIR",
        help="folder for the CSV files and PNG figures (created; default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a small, fast run (sizes up to {q.max_params} parameters, 1 repeat) for "
        "tests and docs; its slopes are dominated by per-call overhead",
    )
    parser.add_argument(
        "--max-params",
        type=argtypes.positive_int,
        metavar="N",
        help=f"largest network in the sweep (default {d.max_params}; quick {q.max_params})",
    )
    parser.add_argument(
        "--sizes",
        type=argtypes.positive_int,
        metavar="K",
        help=f"network sizes in the sweep, spaced evenly in log n from 85 parameters "
        f"(default {d.sizes}; quick {q.sizes})",
    )
    parser.add_argument(
        "--repeats",
        type=argtypes.positive_int,
        metavar="R",
        help=f"timing rounds; the minimum is reported (default {d.repeats}; quick {q.repeats})",
    )
    parser.add_argument(
        "--batch",
        type=argtypes.positive_int,
        metavar="B",
        help=f"digit images in the fixed batch the loss is evaluated on "
        f"(default {d.batch}; quick {q.batch})",
    )
    parser.add_argument(
        "--fd-exact-max",
        type=argtypes.positive_int,
        metavar="N",
        help=f"largest n whose whole finite-difference gradient is timed; above, the time "
        f"is extrapolated from sampled coordinates (default {d.fd_exact_max})",
    )
    parser.add_argument(
        "--fd-block",
        type=argtypes.positive_int,
        metavar="ROWS",
        help=f"finite-difference probe rows per batched evaluation; above --fd-exact-max "
        f"one such block on sampled coordinates is timed (default {d.fd_block}; "
        f"quick {q.fd_block})",
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="clock of the tables, fits and plots (both go to the CSV): the process's CPU "
        "time (default), which does not count the time other processes hold the cores, "
        "or wall-clock time; with single-threaded BLAS the two agree on an idle machine",
    )
    parser.add_argument(
        "--fit-from",
        type=argtypes.positive_int,
        metavar="N",
        help=f"fit the slopes on sizes n >= N, where a call's fixed overhead is small "
        f"(default {d.fit_from}; quick {q.fit_from})",
    )
    parser.add_argument(
        "--tolerance",
        type=argtypes.positive_float,
        default=0.25,
        help="largest accepted |fitted - expected| slope (default %(default)s)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 if a fitted slope is outside the tolerance",
    )
    parser.add_argument(
        "--threads",
        type=argtypes.positive_int,
        default=1,
        metavar="T",
        help="BLAS threads while measuring (default %(default)s: time measures work, not "
        "how many cores BLAS chose at each size); set through threadpoolctl, and the "
        "header prints the threads BLAS reports while measuring",
    )
    parser.add_argument(
        "--seed", type=argtypes.nonneg_int, default=0, help="random seed (default 0)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--no-plots", action="store_true", help="write the CSV files only")


def _settings(args: argparse.Namespace) -> _Settings:
    base = _QUICK if getattr(args, "quick", False) else _Settings()
    overrides = {
        name: getattr(args, name)
        for name in (
            "max_params",
            "sizes",
            "repeats",
            "batch",
            "fd_exact_max",
            "fd_block",
            "fit_from",
        )
        if getattr(args, name, None) is not None
    }
    s = _Settings(**{**base.__dict__, **overrides})
    if s.max_params < 85:
        raise InvalidOptionError(
            f"--max-params must be at least 85 (the smallest network, 64-1-10); got {s.max_params}"
        )
    if s.sizes < 2:
        raise InvalidOptionError(f"--sizes must be at least 2 to fit a slope; got {s.sizes}")
    return s


_CLOCK_NAMES = {"cpu": "process CPU time", "wall": "wall-clock time"}


def _summary(records: Sequence[GradientTiming]) -> str:
    """One sentence comparing FD and backprop at the largest size."""
    n = max(r.n_params for r in records)
    at = {r.method: r for r in records if r.n_params == n}
    fd, bp, loss = at["forward-fd"], at["backprop"], at["loss"]
    fm = at.get("forward-mode")
    how = "extrapolated" if fd.extrapolated else "measured"
    text = (
        f"At n = {n}: one evaluation {loss.seconds * 1e3:.3g} ms; backprop gradient "
        f"{bp.seconds * 1e3:.3g} ms ({bp.forward_equivalents:.1f} evaluations' time); "
        f"forward-FD gradient {fd.seconds:.3g} s ({how}, {fd.forward_equivalents:.3g} "
        f"evaluations' time), {fd.seconds / bp.seconds:.3g} times backprop"
    )
    if fm is not None:
        text += (
            f"; forward-mode gradient (exact, error {fm.rel_error:.0e}) {fm.seconds:.3g} s, "
            f"{fm.seconds / bp.seconds:.3g} times backprop: the same knowledge of the "
            "function, propagated the other way"
        )
    return text + "."


def _spsa_sizes(s: _Settings) -> list[int]:
    sizes = [n for n in s.spsa_sizes if n <= s.max_params]
    return sizes or [85]


def run(args: argparse.Namespace) -> int:
    """Run ``dfo scaling``: measure, print the tables, write CSV files and figures.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of :func:`add_arguments`.

    Returns
    -------
    int
        0; with ``--check``, 1 if a fitted slope is further than ``--tolerance``
        from the expected one.
    """
    from dfo.scaling import plots

    s = _settings(args)
    # checked before the measurements: a file, an unwritable path or a folder of
    # someone else's files is refused at once, not after minutes of timing
    out = check_output_folder(args.out, OUTPUT_FILES, "--out")
    progress = not args.quiet
    start = time.perf_counter()
    sizes = sweep_sizes(s.max_params, count=s.sizes)
    qs = [2**i for i in range(int(math.log2(s.spsa_qmax)) + 1)]
    with limit_blas(args.threads) as threads_note:
        costs = measure_gradient_costs(
            sizes,
            batch=s.batch,
            repeats=s.repeats,
            min_time=s.min_time,
            fd_exact_max=s.fd_exact_max,
            fd_block=s.fd_block,
            clock=args.clock,
            seed=args.seed,
            progress=progress,
        )
        t_costs = time.perf_counter() - start
        steps = np.logspace(-13, 0, s.v_steps)
        errors = fd_step_error_curve(
            n_params=s.v_params, steps=steps, batch=s.batch, seed=args.seed, progress=progress
        )
        cosines = estimate_cosine(
            _spsa_sizes(s),
            qs,
            repeats=s.spsa_repeats,
            batch=s.batch,
            seed=args.seed,
            progress=progress,
        )
        cosines_n = estimate_cosine(
            sizes, [1], repeats=s.cosine_repeats, batch=s.batch, seed=args.seed, progress=progress
        )
    slopes = fit_slopes(costs, fit_from=s.fit_from)

    print(
        f"Cost of one gradient against the number of parameters n\n"
        f"network 64-h-10 (tanh), cross-entropy on a fixed batch of {s.batch} digits: one "
        f"evaluation costs O(n)\n"
        f"time per gradient ({_CLOCK_NAMES[args.clock]}): minimum over {s.repeats} "
        f"interleaved round(s); BLAS threads: {threads_note}\n"
        f"FD probes are evaluated {s.fd_block} rows per batched call "
        f"(finite_difference(..., chunk_size={s.fd_block})); * = FD time extrapolated: "
        f"one such block on sampled coordinates (column 'rows') timed and scaled by "
        f"(n+1)/rows forward, 2n/rows central\n"
        f"err = |g_FD - g_backprop| / |g_backprop| (on the sampled coordinates for *); "
        f"x eval = backprop time / one evaluation's time\n"
    )
    print(plots.cost_table(costs))
    check = plots.extrapolation_check(costs)
    if check:
        print("\nExtrapolation check where the whole gradient was timed too:\n" + check)
    print(
        f"\nLog-log slopes: least squares of log(value) on log(n) over the sizes n >= "
        f"{s.fit_from}, where the O(n) arithmetic dominates a call's fixed overhead (Python, "
        f"argument checks, small matrices); 'all sizes' fits every size, overhead included."
    )
    print(plots.slope_table(slopes, tolerance=args.tolerance, clock=args.clock))
    print("\n" + _summary(costs))
    print(
        f"\nFD gradient error against the step h ({errors[0].n_params if errors else 0}-"
        f"parameter network; float32 = point and steps in float32, loss rounded to float32)"
    )
    print(plots.step_error_table(errors))
    print(
        "\nStochastic estimates: cosine between the estimate averaged over q directions and "
        "the gradient (mean over repeats; theory sqrt(q/(q+n-1)) for SPSA, sqrt(q/(q+n+1)) "
        "for the forward gradient)"
    )
    print(plots.cosine_table(cosines))
    print(
        f"\nOne direction (q = 1) against n: root mean square of the cosine over "
        f"{s.cosine_repeats} draws; theory 1/sqrt(n) for both"
    )
    print(plots.cosine_n_table(cosines_n))

    subtitle = (
        f"64-h-10 tanh network, cross-entropy on a fixed batch of {s.batch} digits; "
        f"{_CLOCK_NAMES[args.clock]}, min of {s.repeats} round(s); fits over n ≥ {s.fit_from}"
    )
    written = [
        plots.write_csv(out / "gradient_costs.csv", costs),
        plots.write_csv(out / "slopes.csv", slopes),
        plots.write_csv(out / "fd_step_error.csv", errors),
        plots.write_csv(out / "estimate_cosine.csv", cosines),
        plots.write_csv(out / "estimate_cosine_vs_n.csv", cosines_n),
    ]
    if not getattr(args, "no_plots", False):
        written += [
            plots.plot_gradient_costs(
                costs, slopes, out / "gradient_costs.png", subtitle=subtitle
            ),
            plots.plot_step_error(errors, out / "fd_step_error.png"),
            plots.plot_spsa_cosine(cosines, out / "estimate_cosine.png"),
            plots.plot_cosine_vs_n(cosines_n, out / "estimate_cosine_vs_n.png"),
        ]
    elapsed = time.perf_counter() - start
    print(
        f"\nWrote {', '.join(p.name for p in written)} to {out}/ "
        f"({elapsed:.0f} s; the cost sweep took {t_costs:.0f} s)."
    )
    bad = [sl for sl in slopes if not sl.ok(args.tolerance)]
    if bad:
        names = ", ".join(f"{sl.method} {sl.quantity} ({sl.slope:.2f})" for sl in bad)
        print(f"Slopes outside {args.tolerance:g} of the expected: {names}")
        return 1 if args.check else 0
    return 0
