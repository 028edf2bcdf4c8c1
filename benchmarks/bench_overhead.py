"""The toolkit's own cost per evaluation, beside nevergrad's on the same objective.

On a trivial objective (``f(x) = x . x``, n = 100) the time of a whole
:func:`dfo.minimize` run minus the time spent inside the objective, divided by the
number of evaluations, is what the toolkit itself costs per evaluation: asking,
counting, checking values, tracking the best point, recording history and the
method's own update.

Two clocks are reported. *CPU*: the run's CPU time (``time.thread_time``) minus
``nfev`` times the CPU cost of one call of the objective (measured by calling it
in a plain loop); it does not count time the process waits while other programs
run, so it is the figure checked against the target on a shared machine. *Wall*:
the run's wall time minus the wall time the objective measured inside itself
(``perf_counter``); equal to the CPU figure on an idle machine.

Methods: SPSA (2 evaluations per iteration, the hardest case), FD-SGD (n + 1 per
iteration) and random search (a population per iteration). When nevergrad is
installed, its SPSA and RandomSearch run the same objective with the same budget
(through ``optimizer.minimize``), measured the same way.

It also checks that the cost per evaluation does not grow with the run's length
(a 10x longer run costs the same per evaluation).

Target: at most 10 microseconds per evaluation for dfo's three methods.

Run: ``python benchmarks/bench_overhead.py [--quick]``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from _bench import apply_threads, describe_machine, parser, print_table, verdict

import dfo

DIM = 100
TARGET_US = 10.0


class TimedSphere:
    """``f(x) = x . x`` that adds the time spent inside it to ``self.inside``."""

    def __init__(self) -> None:
        self.inside = 0.0
        self.calls = 0

    def __call__(self, x: np.ndarray) -> float:
        t0 = time.perf_counter()
        value = float(x @ x)
        self.inside += time.perf_counter() - t0
        self.calls += 1
        return value


def call_cost(n_calls: int = 20_000) -> float:
    """CPU seconds of one call of the timed objective, called in a plain loop."""
    f = TimedSphere()
    X = np.random.default_rng(0).standard_normal((256, DIM))
    rows = list(X) * (n_calls // 256 + 1)
    rows = rows[:n_calls]
    t0 = time.thread_time()
    for x in rows:
        f(x)
    return (time.thread_time() - t0) / n_calls


def measure(run: Callable[[TimedSphere], None], cost: float) -> tuple[float, float]:
    """(CPU, wall) microseconds of overhead per evaluation of ``run(f)``."""
    f = TimedSphere()
    c0, w0 = time.thread_time(), time.perf_counter()
    run(f)
    cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    return (cpu / f.calls - cost) * 1e6, (wall - f.inside) / f.calls * 1e6


def run_dfo(method: str, budget: int, seed: int) -> Callable[[TimedSphere], None]:
    def run(f: TimedSphere) -> None:
        res = dfo.minimize(f, np.ones(DIM), method=method, budget=budget, seed=seed)
        if res.nfev != f.calls:
            raise RuntimeError(f"{method}: nfev={res.nfev} but the objective saw {f.calls}")

    return run


def run_nevergrad(name: str, budget: int, seed: int) -> Callable[[TimedSphere], None]:
    def run(f: TimedSphere) -> None:
        import nevergrad as ng

        param = ng.p.Array(init=np.ones(DIM))
        param.random_state = np.random.RandomState(seed)
        ng.optimizers.registry[name](parametrization=param, budget=budget).minimize(f)

    return run


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    apply_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 7)
    budget = 4_000 if args.quick else 20_000
    print(describe_machine())
    print(f"objective f(x) = x.x, n = {DIM}; budget {budget} evaluations; median of {repeats}")
    print()

    runs: dict[str, Callable[[int], Callable[[TimedSphere], None]]] = {
        "dfo spsa": lambda s: run_dfo("spsa", budget, s),
        "dfo fd-sgd": lambda s: run_dfo("fd-sgd", budget, s),
        "dfo random-search": lambda s: run_dfo("random-search", budget, s),
        "dfo spsa, 10x shorter run": lambda s: run_dfo("spsa", budget // 10, s),
    }
    try:
        import nevergrad as ng

        ng_budget = max(200, budget // 10)  # nevergrad is slow; its cost per evaluation is flat
        runs["nevergrad SPSA"] = lambda s: run_nevergrad("SPSA", ng_budget, s)
        runs["nevergrad RandomSearch"] = lambda s: run_nevergrad("RandomSearch", ng_budget, s)
        ng_version = ng.__version__
    except ImportError:
        ng_version = None

    cpu: dict[str, list[float]] = {name: [] for name in runs}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    for make in runs.values():  # warm-up (imports, caches)
        measure(make(0), call_cost())
    for rep in range(repeats):
        cost = call_cost()
        for name, make in runs.items():
            c, w = measure(make(rep), cost)
            cpu[name].append(c)
            wall[name].append(w)
    us = {name: statistics.median(v) for name, v in cpu.items()}
    us_wall = {name: statistics.median(v) for name, v in wall.items()}

    rows = []
    for name, value in us.items():
        target = ""
        if name in ("dfo spsa", "dfo fd-sgd", "dfo random-search"):
            target = f"<= {TARGET_US:g}: {verdict(value, TARGET_US, at_least=False)}"
        rows.append((name, value, us_wall[name], target))
    print_table(("method", "CPU us/eval", "wall us/eval", "target (CPU)"), rows)
    print(f"(one call of the objective itself: {call_cost() * 1e6:.2f} us CPU)")
    print()
    growth = us["dfo spsa"] / us["dfo spsa, 10x shorter run"]
    print(
        f"ratio  spsa overhead per evaluation, run of {budget} / run of {budget // 10} "
        f"evaluations: {growth:.2f}x (flat = 1)"
    )
    if ng_version:
        for ours, theirs in (
            ("dfo spsa", "nevergrad SPSA"),
            ("dfo random-search", "nevergrad RandomSearch"),
        ):
            print(
                f"ratio  {theirs} ({ng_version}) / {ours} overhead: {us[theirs] / us[ours]:.1f}x"
            )
    else:
        print("nevergrad is not installed (pip install nevergrad): its rows are skipped")


if __name__ == "__main__":
    main()
