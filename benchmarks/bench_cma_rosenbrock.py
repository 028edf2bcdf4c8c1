"""dfo's CMA-ES against pycma driven directly: evaluations to target; pycma's own cost.

1. **Performance.** Rosenbrock in 10 dimensions from ``x0 = 0`` with
   ``sigma0 = 0.5``: evaluations until ``f < 1e-8``, through
   ``dfo.minimize(method="cma-es")`` and through pycma's own ask/tell loop
   (seeded by pycma), over the same number of seeds. The two should agree (pycma's
   known figure is about 5,000-6,000 evaluations); the median through dfo must be
   under 8,000.
2. **pycma's own cost per generation** (``ask`` + ``tell``, no dfo, a free
   objective) for the full and the separable (diagonal) variant, timed alternately
   in one process, medians of repeats, in 10, 100 and 1000 dimensions: why
   ``separable="auto"`` switches above 100 dimensions. pycma is imported before
   timing (its first import takes about a second). What dfo adds around pycma is
   measured by ``bench_cma.py``.

Run: ``python benchmarks/bench_cma_rosenbrock.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import dfo
from dfo.problems import Rosenbrock
from dfo.threads import describe_blas

TARGET = 1e-8


def evals_through_dfo(seed: int, budget: int) -> float:
    f = Rosenbrock(10)
    reached: list[int] = []

    def stop_at_target(intermediate_result: dfo.Result) -> None:
        if intermediate_result.fun < TARGET:
            reached.append(intermediate_result.nfev)
            raise StopIteration

    dfo.minimize(
        f, np.zeros(10), method="cma-es", budget=budget, seed=seed, callback=stop_at_target
    )
    return reached[0] if reached else np.inf


def evals_through_pycma(seed: int, budget: int) -> float:
    import cma

    f = Rosenbrock(10)
    opts = {"seed": seed + 1, "verbose": -9, "verb_log": 0, "verb_disp": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es = cma.CMAEvolutionStrategy(np.zeros(10), 0.5, opts)
        evaluations = 0
        while not es.stop() and evaluations < budget:
            X = es.ask()
            values = f.evaluate_batch(np.array(X))
            evaluations += len(X)
            if values.min() < TARGET:
                return evaluations
            es.tell(X, values.tolist())
    return np.inf


def seconds_per_generation(dim: int, repeats: int) -> tuple[float, float]:
    """Median seconds of one pycma generation, full and separable, side by side."""
    import cma

    strategies = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for separable in (False, True):
            opts = {"verbose": -9, "verb_log": 0, "seed": 1, "CMA_diagonal": separable}
            strategies[separable] = cma.CMAEvolutionStrategy(np.ones(dim), 0.5, opts)
    values = {key: np.arange(es.popsize, dtype=float).tolist() for key, es in strategies.items()}

    def generation(separable: bool) -> None:
        es = strategies[separable]
        es.tell(es.ask(), values[separable])

    times: dict[bool, list[float]] = {False: [], True: []}
    number = max(20, 2000 // dim)  # amortizes pycma's occasional eigendecompositions
    for separable in (False, True):
        generation(separable)  # warm-up
    for _ in range(repeats):
        for separable in (False, True):
            t0 = time.perf_counter()
            for _ in range(number):
                generation(separable)
            times[separable].append((time.perf_counter() - t0) / number)
    return statistics.median(times[False]), statistics.median(times[True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and repeats")
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")  # one BLAS thread, as dfo runs
    print(f"BLAS threads: {describe_blas()}")
    seeds = range(5) if args.quick else range(11)
    budget = 20_000

    t0 = time.perf_counter()
    import cma  # noqa: F401 - imported once, before anything is timed

    print(f"(import cma: {time.perf_counter() - t0:.2f} s)\n")
    ours = [evals_through_dfo(s, budget) for s in seeds]
    theirs = [evals_through_pycma(s, budget) for s in seeds]
    print(f"Rosenbrock 10-D from x0 = 0, sigma0 = 0.5: evaluations until f < {TARGET:g}")
    print(f"  through dfo  : median {np.median(ours):>7.0f}  runs {ours}")
    print(f"  pycma direct : median {np.median(theirs):>7.0f}  runs {theirs}")
    verdict = "OK" if np.median(ours) < 8000 else "FAIL"
    print(f"  median through dfo < 8,000: {verdict} (inf: stuck in the local minimum)\n")

    repeats = 3 if args.quick else 5
    print("pycma's own seconds per generation (ask + tell), median of repeats")
    for dim in (10, 100, 1000):
        full, separable = seconds_per_generation(dim, repeats)
        print(
            f"  n = {dim:>4}   full {full * 1e3:8.3f} ms   separable {separable * 1e3:7.3f} ms"
            f"   full / separable {full / separable:6.1f}"
        )
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
