"""A piecewise-constant objective: which methods stall (and say so), which solve it.

``f(x) = floor(sum((x - 3)**2))`` in 10 variables from ``x0 = 0`` (``f(x0) = 90``,
minimum 0 wherever ``|x - 3| < 1``), budget 2000, each method with its defaults.
A gradient estimate from small perturbations is exactly zero almost everywhere:
SPSA and FD-SGD must stop with status ``STALLED`` and ``success=False`` (before
this, both reported success after moving ``x`` by 0.2 and 1.5e-8), while
``method="auto"`` and the ranking methods solve it.

Printed per method, over seeds 0-4: the statuses, how many runs succeeded, the
median final value, evaluations spent, and how far ``x`` moved from ``x0``.

Run: ``python benchmarks/bench_plateau.py [--budget N] [--seeds K]`` (about 10 s).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import dfo
from dfo.threads import describe_blas

DIM = 10
METHODS = ("spsa", "fd-sgd", "auto", "cma-es", "nelder-mead", "random-search")


def plateau(x: np.ndarray) -> float:
    """``floor(sum((x - 3)**2))``: piecewise constant, minimum 0 near x = 3."""
    return float(np.floor(np.sum((x - 3.0) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")  # one BLAS thread, as dfo runs
    print(f"BLAS threads: {describe_blas()}")
    t0 = time.perf_counter()
    print(
        f"f = floor(sum((x - 3)**2)), n = {DIM}, x0 = 0 (f = 90), budget {args.budget}, "
        f"defaults, seeds 0-{args.seeds - 1}"
    )
    head = f"{'method':<14}{'status':<22}{'success':>8}{'median f':>10}{'nfev':>7}{'|x-x0|':>8}"
    print(head + "  chosen")
    x0 = np.zeros(DIM)
    for method in [m for m in METHODS if m in dfo.methods()]:
        runs = [
            dfo.minimize(plateau, x0, method=method, budget=args.budget, seed=s)
            for s in range(args.seeds)
        ]
        statuses = sorted({r.status.name for r in runs})
        chosen = sorted({r.auto["method"] for r in runs}) if method == "auto" else ""
        print(
            f"{method:<14}{','.join(statuses):<22}"
            f"{sum(r.success for r in runs):>5}/{len(runs):<2}"
            f"{statistics.median(r.fun for r in runs):>10g}"
            f"{statistics.median(r.nfev for r in runs):>7g}"
            f"{statistics.median(float(np.linalg.norm(r.x - x0)) for r in runs):>8.2g}"
            f"  {','.join(chosen)}"
        )
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
