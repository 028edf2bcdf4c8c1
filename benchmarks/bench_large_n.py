"""Large n: time per iteration and peak memory of spsa, fd-sgd, random-search and cma-es.

For n = 1e3, 1e4, 1e5, 1e6 parameters on the sphere ``sum(x**2)`` (vectorized over a
batch: the objective itself costs ``2 n`` flops per point), each method runs a few
iterations through ``dfo.make_optimizer`` and its documented ask/tell loop, beside a
bare numpy (or pycma) step that does the same arithmetic with the same random draws:

- **spsa**: Rademacher directions from random bits (``rng.integers`` bytes, unpacked),
  ``x +- c d``, the two values, ``g = (f+ - f-) / 2c * d``, ``x -= a g``;
- **fd-sgd**: one forward-difference gradient (``n + 1`` probes in blocks of
  ``PROBE_BLOCK_BYTES``) against the same blocks built and evaluated by hand
  (n = 1e6 is left out: one gradient is 1e12 probe entries);
- **random-search**: ``popsize`` Gaussian candidates around the best point in one
  matrix, against the same draws by hand;
- **cma-es**: separable CMA-ES (dfo's default above 100 parameters) against bare pycma
  with the same options (``CMA_diagonal``), one generation.

Peak memory is ``tracemalloc``'s peak (numpy reports its allocations there) over one
iteration (one gradient for fd-sgd), beyond what was allocated before it.

Targets: fd-sgd's peak memory for one gradient at n = 1e5 <= 64 MB; spsa's time per
iteration at n = 1e6 <= 1.2x the bare numpy step.

Run: ``python benchmarks/bench_large_n.py [--quick] [--max-n 1e5]``.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from _bench import apply_threads, describe_machine, parser, print_table, side_by_side, verdict

import dfo
from dfo.numdiff import PROBE_BLOCK_BYTES

FD_MEMORY_TARGET = 64e6  # bytes, one gradient at n = 1e5
SPSA_TIME_TARGET = 1.2  # dfo / bare at n = 1e6


def sphere(X: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", X, X)


def peak_bytes(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(peak - base)


def loop(opt: Any, f: Callable[[np.ndarray], np.ndarray], iterations: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(iterations):
            X = opt.ask()
            opt.tell(X, f(X))

    return run


# -- bare steps, the same arithmetic and draws ------------------------------------------
def bare_spsa(n: int, seed: int) -> Callable[[], None]:
    rng = np.random.default_rng(seed)
    state = {"x": np.full(n, 0.5), "k": 0}

    def step() -> None:
        x, k = state["x"], state["k"]
        ck, ak = 0.01 / (k + 1) ** 0.101, 0.01 / (k + 11) ** 0.602
        bits = np.unpackbits(
            rng.integers(0, 256, size=(1, (n + 7) // 8), dtype=np.uint8), axis=1, count=n
        )
        d = bits.astype(np.float64)
        d *= -2.0
        d += 1.0
        X = np.empty((2, n))
        np.add(x, ck * d, out=X[:1])
        np.subtract(x, ck * d, out=X[1:])
        fp, fm = sphere(X)
        state["x"] = x - ak * ((fp - fm) / (2 * ck)) * d[0]
        state["k"] = k + 1

    return step


def bare_fd(n: int) -> Callable[[], None]:
    x = np.full(n, 0.5)
    h = np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(x))
    rows = max(2, PROBE_BLOCK_BYTES // (8 * n))

    def gradient() -> None:
        values = np.empty(n + 1)
        values[0] = sphere(x[None])[0]
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            block = np.tile(x, (stop - start, 1))
            idx = np.arange(stop - start)
            block[idx, start + idx] += h[start:stop]
            values[1 + start : 1 + stop] = sphere(block)
        _ = (values[1:] - values[0]) / h

    return gradient


def bare_random_search(n: int, popsize: int, seed: int) -> Callable[[], None]:
    rng = np.random.default_rng(seed)
    best = np.full(n, 0.5)

    def step() -> None:
        X = rng.standard_normal((popsize, n))
        X *= 0.1
        X += best
        sphere(X).argmin()

    return step


def bare_cma(n: int) -> Callable[[], None]:
    import cma

    es = cma.CMAEvolutionStrategy(
        np.full(n, 0.5), 0.1, {"CMA_diagonal": True, "verbose": -9, "seed": 1}
    )

    def step() -> None:
        X = es.ask()
        es.tell(X, list(sphere(np.asarray(X))))

    return step


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--max-n", type=float, default=1e6)
    args = p.parse_args()
    apply_threads(args.threads or 1)
    repeats = args.repeats or (3 if args.quick else 5)
    sizes = [int(10**e) for e in range(3, 7) if 10**e <= args.max_n]
    print(describe_machine())
    print(f"one thread; CPU time of this thread, median of {repeats}; sphere objective")
    print()
    rows, checks = [], []
    for n in sizes:
        x0 = np.full(n, 0.5)
        cases: dict[str, tuple[Callable[[], Any], Callable[[], Any], str]] = {}
        spsa = dfo.make_optimizer("spsa", x0, seed=0, budget=10**9, a=0.01, c=0.01, A=10)
        cases["spsa"] = (loop(spsa, sphere, 1), bare_spsa(n, 0), "iteration")
        if n <= 10**5:
            fd = dfo.make_optimizer("fd-sgd", x0, seed=0, budget=10**12)
            blocks = -(-(n + 1) // fd.max_probes)
            cases["fd-sgd"] = (loop(fd, sphere, blocks), bare_fd(n), "gradient")
        rs = dfo.make_optimizer("random-search", x0, seed=0, budget=10**9)
        cases["random-search"] = (
            loop(rs, sphere, 1),
            bare_random_search(n, rs.popsize, 0),
            "iteration",
        )
        cma_opt = dfo.make_optimizer("cma-es", x0, seed=0, budget=10**9, sigma0=0.1)
        cases["cma-es"] = (loop(cma_opt, sphere, 1), bare_cma(n), "generation")
        for name, (ours, bare, unit) in cases.items():
            number = 1 if n >= 10**5 or name == "fd-sgd" else 5
            t = side_by_side(
                {"dfo": ours, "bare": bare}, repeats=repeats, number=number, clock=time.thread_time
            )
            mem = {"dfo": peak_bytes(ours), "bare": peak_bytes(bare)}
            ratio = t["dfo"] / t["bare"]
            rows.append(
                (
                    name,
                    n,
                    unit,
                    t["dfo"] * 1e3,
                    t["bare"] * 1e3,
                    ratio,
                    mem["dfo"] / 1e6,
                    mem["bare"] / 1e6,
                )
            )
            if name == "spsa" and n == 10**6:
                checks.append(("spsa time at n=1e6 vs bare", ratio, SPSA_TIME_TARGET, False))
            if name == "fd-sgd" and n == 10**5:
                checks.append(
                    ("fd-sgd peak MB at n=1e5", mem["dfo"] / 1e6, FD_MEMORY_TARGET / 1e6, False)
                )
    print_table(
        ("method", "n", "per", "dfo ms", "bare ms", "dfo/bare", "dfo peak MB", "bare peak MB"),
        rows,
    )
    print()
    for name, value, target, at_least in checks:
        sign = ">=" if at_least else "<="
        print(
            f"{name}: {value:.3g} (target {sign} {target:g}): "
            f"{verdict(value, target, at_least=at_least)}"
        )


if __name__ == "__main__":
    main()
