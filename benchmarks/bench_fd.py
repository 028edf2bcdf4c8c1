"""What a finite-difference gradient costs, measured side by side in one process.

For each dimension ``n`` it times, as medians of repeats:

- one evaluation of the objective at one point,
- its exact gradient (``value_and_grad``),
- a forward-difference gradient through one batched call (``finite_difference``),
- the same forward difference evaluated one probe at a time (a Python loop),
- the batched one again in blocks of about 4 MB of probes (``chunk_size``),

and prints the ratios: FD over one evaluation (theory: ``n + 1`` evaluations, and
``O(n^2)`` flops since each probe costs ``O(n)``), FD over the exact gradient,
the looped over the batched FD (what batching the probes saves), and the one-call
over the 4 MB-block FD (for a cheap objective, cache-sized blocks can beat one
huge block).

Run: ``python benchmarks/bench_fd.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from dfo.numdiff import fd_gradient, fd_probes, fd_steps, finite_difference
from dfo.problems import Rosenbrock, SkewedQuartic
from dfo.threads import describe_blas


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def looped_fd(f, x: np.ndarray) -> np.ndarray:
    step = fd_steps(x)
    values = np.array([f(p) for p in fd_probes(x, step)])
    return fd_gradient(values, step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")  # one BLAS thread, as dfo runs
    print(f"BLAS threads: {describe_blas()}")
    dims = [10, 100, 1000] if args.quick else [10, 100, 1000, 3000]
    repeats = 5 if args.quick else 9
    rng = np.random.default_rng(0)
    header = (
        f"{'problem':<15}{'n':>6}{'nfev':>7}{'fd/eval':>10}{'fd/grad':>10}"
        f"{'loop/batch':>12}{'1call/4MB':>11}{'fd err':>10}"
    )
    print(header)
    print("-" * len(header))
    for problem in (Rosenbrock, SkewedQuartic):
        for n in dims:
            f = problem(n)
            x = rng.uniform(-1, 1, size=n)
            t_eval = median_time(lambda f=f, x=x: f(x), repeats)
            t_grad = median_time(lambda f=f, x=x: f.value_and_grad(x), repeats)
            t_fd = median_time(lambda f=f, x=x: finite_difference(f, x), repeats)
            loop_repeats = max(1, repeats // 3) if n >= 1000 else repeats
            t_loop = median_time(lambda f=f, x=x: looped_fd(f, x), loop_repeats)
            rows_4mb = max(1, 4 * 2**20 // (8 * n))
            t_chunk = median_time(
                lambda f=f, x=x, c=rows_4mb: finite_difference(f, x, chunk_size=c), repeats
            )
            res = finite_difference(f, x)
            g = f.value_and_grad(x)[1]
            err = np.linalg.norm(res.grad - g) / np.linalg.norm(g)
            print(
                f"{problem.__name__:<15}{n:>6}{res.nfev:>7}{t_fd / t_eval:>10.1f}"
                f"{t_fd / t_grad:>10.1f}{t_loop / t_fd:>12.1f}{t_fd / t_chunk:>11.1f}{err:>10.1e}"
            )
    print(
        "\nfd/eval: time of one batched forward-difference gradient over one evaluation;"
        "\nfd/grad: over one exact gradient; loop/batch: probes one at a time over batched;"
        "\n1call/4MB: one evaluate_batch call over blocks of ~4 MB of probes;"
        "\nfd err: relative error of the forward difference against the exact gradient."
    )


if __name__ == "__main__":
    main()
