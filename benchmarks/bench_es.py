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

"floor" is the same OpenAI-ES iteration written as a bare numpy loop, timed in the same
run: the population built from a block of a noise table drawn beforehand with es's two
operations in place, the same minibatch stream (the objective's ``batch_stream``, as es's
lean loop draws it), centered ranks from one sort, the
estimate as one product with the directions, Adam written in place; no ledger, no
checks, no table drawn. What es needs beyond the evaluations and the minibatches and
cannot do without (writing the population, reading the directions back) shows in
"floor / bare"; dfo's own cost in "es / floor".

"es / floor+table" sets es beside the floor with its noise table drawn as es draws it
(2**20 normal draws of the population's type, timed in the same alternation): what an
OpenAI-ES that slices its directions from a table (Salimans et al.) also spends, and
what es spends once per run ("table" below). Spread over 200 iterations it is about a
fifth of the floor at popsize 26; over the compare's digits budget (20,000
evaluations, 769 iterations at 26) a twentieth.

A second table says where es spends its time, per iteration, in the documented
ask/tell loop driven by hand (as ``minimize`` drives it, with the objective's own
minibatch stream): the noise table drawn once (spread over the iterations), ``stop``
and ``ask`` (the population built from the table), the minibatch draw,
``evaluate_batch`` (which the bare forward is), and ``tell`` (centered ranks, the
estimate, the step rule and the ledger); "run loop" is what ``minimize`` spends
beyond the loop driven by hand (both timed in the same alternation): below zero, as
``minimize`` runs es in its lean loop (the population on the objective's batch stream,
booked in scalars, no ``stop`` per iteration), which the loop by hand does not.

Run: ``python benchmarks/bench_es.py [--quick]``.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from _bench import apply_threads, describe_machine, parser, print_table, side_by_side, verdict

import dfo
from dfo.datasets import load
from dfo.optimizers.es import noise_table

TARGET = 1.2
ITERATIONS = 200


PARTS = ("table", "stop+ask", "minibatch", "evaluate", "tell")


def parts(obj: dfo.NetworkObjective, x0: np.ndarray, k: int, budget: int) -> dict[str, float]:
    """CPU seconds per iteration of each part of one es run driven by hand (see above)."""
    clock = time.thread_time
    spent = dict.fromkeys(PARTS, 0.0)
    t0 = clock()
    opt = dfo.make_optimizer("es", x0, seed=0, budget=budget, popsize=k, dtype=obj.dtype.name)
    spent["table"] = clock() - t0
    rng, sampler = np.random.default_rng(1), obj.sampler()
    while True:
        t0 = clock()
        if opt.stop():
            break
        X = opt.ask()
        t1 = clock()
        sample = obj.realization(rng, sampler)
        t2 = clock()
        values = sample.evaluate_batch(X)
        t3 = clock()
        opt.tell_evaluated(values)
        t4 = clock()
        for name, a, b in zip(PARTS[1:], (t0, t1, t2, t3), (t1, t2, t3, t4), strict=True):
            spent[name] += b - a
    return {name: v / opt.nit for name, v in spent.items()}


def floor_loop(
    obj: dfo.NetworkObjective, x0: np.ndarray, k: int, table: np.ndarray, sigma: float = 0.05
) -> None:
    """``ITERATIONS`` iterations of OpenAI-ES with Adam in bare numpy (see above)."""
    n, m, dtype = x0.size, k // 2, table.dtype
    x, mu, nu = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
    grid, u, w = np.arange(k) / (k - 1) - 0.5, np.empty(k), np.empty(m)
    signs = np.array([sigma, -sigma], dtype)[:, None, None]
    rng = np.random.default_rng(1)
    stream = obj.batch_stream(rng, obj.sampler())  # the minibatches, without objects
    starts = rng.integers(0, table.size - m * n + 1, ITERATIONS)
    for t, start in enumerate(starts, 1):
        eps = table[start : start + m * n].reshape(m, n)
        X = np.empty((k, n), dtype)
        halves = X.reshape(2, m, n)
        np.multiply(eps, signs, out=halves)
        halves += x.astype(dtype, copy=False)
        values = stream(X)
        u[values.argsort(kind="stable")] = grid
        np.subtract(u[:m], u[m:], out=w)
        w /= k * sigma
        g = (w.astype(dtype) @ eps).astype(np.float64)
        mu *= 0.9
        mu += 0.1 * g
        nu *= 0.999
        nu += 0.001 * (g * g)
        step = np.sqrt(nu / (1 - 0.999**t))
        step += 1e-8
        np.divide(mu, step, out=step)
        step *= -0.03 / (1 - 0.9**t)
        x += step


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
    rows, breakdown = [], []
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

        table = noise_table(0, 2**20, dtype)

        def floor(obj: dfo.NetworkObjective = obj, k: int = popsize, table=table) -> None:
            floor_loop(obj, x0, k, table)

        runs: list[dict[str, float]] = []

        def by_hand(
            obj: dfo.NetworkObjective = obj, k: int = popsize, b: int = budget, runs=runs
        ) -> None:
            runs.append(parts(obj, x0, k, b))

        def draw(dtype: str = dtype) -> None:
            noise_table(0, 2**20, dtype)

        fns = {"es": es, "bare": bare, "floor": floor, "by hand": by_hand, "table": draw}
        t = side_by_side(fns, repeats=repeats, clock=time.thread_time)
        part = {name: float(np.median([r[name] for r in runs])) for name in PARTS}
        loop = (t["es"] - t["by hand"]) / ITERATIONS
        breakdown.append(
            (
                popsize,
                dtype,
                *(part[name] * 1e6 for name in PARTS),
                loop * 1e6,
                t["bare"] / ITERATIONS * 1e6,
            )
        )
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
                t["floor"] / t["bare"],
                t["es"] / t["floor"],
                t["es"] / (t["floor"] + t["table"]),
            )
        )
    header = ("popsize", "dtype", "es evals/s", "bare evals/s", "time ratio", "target")
    print_table((*header, "floor / bare", "es / floor", "es / floor+table"), rows)
    print()
    print("where es spends an iteration (us of CPU time, median; bare: the bare forward's)")
    print_table(("popsize", "dtype", *PARTS, "run loop", "bare"), breakdown)


if __name__ == "__main__":
    main()
