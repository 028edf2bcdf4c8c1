"""es at population scale: evaluations per second against a bare population forward.

On the digits network of ``dfo compare`` (64-16-10 tanh, minibatches of 128 of the
training split, cross-entropy), ``dfo.minimize(..., method="es")`` runs ``ITERATIONS``
iterations of its default population, timed beside the same number of bare
``evaluate_batch`` calls on one minibatch with a population of the same size (what
the evaluations alone cost: no draws, no ranks, no step, no bookkeeping), in float64
and in float32 (a float32 ``NetworkObjective``: es builds its population in float32),
for the default population (26 here) and for 200 (the run loop's cost per iteration is
shared by more evaluations).

Target: es's time per evaluation within 1.2x of the bare population forward's.

Run: ``python benchmarks/bench_es.py [--quick]``.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from _bench import apply_threads, describe_machine, parser, print_table, side_by_side, verdict

import dfo
from dfo.datasets import load

TARGET = 1.2
ITERATIONS = 200


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    apply_threads(args.threads or 1)
    repeats = args.repeats or (3 if args.quick else 7)
    data = load("digits", seed=0)
    net = dfo.MLP([64, 16, 10], "tanh")
    x0 = net.init_params(np.random.default_rng(0))
    default = dfo.make_optimizer("es", x0).popsize
    print(describe_machine())
    print(
        f"digits 64-16-10, minibatches of 128, {ITERATIONS} iterations; "
        f"one thread, CPU time, median of {repeats}"
    )
    print()
    rows = []
    for popsize, dtype in itertools.product((default, 200), ("float64", "float32")):
        obj = dfo.NetworkObjective(net, data.X_train, data.y_train, batch_size=128, dtype=dtype)
        sample = obj.realization(np.random.default_rng(1))
        T = x0 + 0.05 * np.random.default_rng(2).standard_normal((popsize, net.n_params))
        T = T.astype(dtype)
        budget = ITERATIONS * popsize

        def es(obj: dfo.NetworkObjective = obj, budget: int = budget, k: int = popsize) -> None:
            res = dfo.minimize(obj, x0, method="es", budget=budget + 1, seed=0, popsize=k)
            assert res.nit >= ITERATIONS - 1

        def bare(sample: dfo.Objective = sample, T: np.ndarray = T) -> None:
            for _ in range(ITERATIONS):
                sample.evaluate_batch(T)

        t = side_by_side({"es": es, "bare": bare}, repeats=repeats, clock=time.thread_time)
        per_es, per_bare = t["es"] / budget, t["bare"] / budget
        ratio = per_es / per_bare
        rows.append(
            (
                popsize,
                dtype,
                1 / per_es,
                1 / per_bare,
                ratio,
                f"<= {TARGET}: {verdict(ratio, TARGET, at_least=False)}",
            )
        )
    print_table(("popsize", "dtype", "es evals/s", "bare evals/s", "time ratio", "target"), rows)


if __name__ == "__main__":
    main()
