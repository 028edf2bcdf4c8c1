"""Vectorized populations on the digits network: one batched call against a Python loop.

The digits network is ``MLP([64, 16, 10])`` (1210 parameters, tanh) on the training
split of the bundled 8x8 digits, cross-entropy. Two comparisons, timed side by side:

- **Population**: ``objective.evaluate_batch(Thetas)`` for ``lambda = 4 + floor(3 ln n)``
  candidates (CMA-ES's default population, 25 here) against ``lambda`` single calls
  ``objective(theta)``.
- **FD gradient**: :func:`dfo.finite_difference` (the ``n + 1`` forward-difference probes
  evaluated in batched calls) against the naive loop that tweaks one weight at a time
  and evaluates the loss after each tweak.

Each is measured on a minibatch of 128 samples (the digits task of ``dfo compare``),
of 32, and on the whole training split. The script first checks that both ways
compute the same numbers.

Targets: the batched population and the batched FD gradient at least 5x faster than
the loops. Batching does not change the arithmetic, only the number of calls, so the
speed-up is bounded by the ratio of one call's cost to one candidate's share of a
batched call; the script prints both, and the bound falls as the minibatch grows.

Run: ``python benchmarks/bench_population.py [--quick]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from _bench import apply_threads, describe_machine, parser, print_table, side_by_side, verdict

import dfo
from dfo.datasets import load
from dfo.numdiff import fd_steps

TARGET = 5.0
#: minibatch of the digits task in ``dfo compare``
BATCH = 128


def naive_fd(f: Callable[[np.ndarray], float], theta: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Forward differences the way one first writes them: tweak each weight, re-evaluate."""
    theta = theta.copy()
    f0 = f(theta)
    grad = np.empty(theta.size)
    for i in range(theta.size):
        old = theta[i]
        theta[i] = old + h[i]
        grad[i] = (f(theta) - f0) / h[i]
        theta[i] = old
    return grad


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    apply_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 9)
    data = load("digits", seed=0)
    net = dfo.MLP([64, 16, 10], activation="tanh")
    n = net.n_params
    lam = 4 + int(3 * np.log(n))
    rng = np.random.default_rng(0)
    theta = net.init_params(rng)
    thetas = theta + 0.1 * rng.standard_normal((lam, n))
    h = fd_steps(theta)

    print(describe_machine())
    print(
        f"digits network {list(net.sizes)}: n = {n} parameters, lambda = {lam}; "
        f"median of {repeats}"
    )
    print()
    sets = {
        f"minibatch of {BATCH}": (data.X_train[:BATCH], data.y_train[:BATCH]),
        "minibatch of 32": (data.X_train[:32], data.y_train[:32]),
        f"training split ({data.X_train.shape[0]})": (data.X_train, data.y_train),
    }
    rows = []
    bounds: list[tuple[str, float, float]] = []
    for label, (X, y) in sets.items():
        objective = dfo.NetworkObjective(net, X, y)

        def batched_population(obj: dfo.NetworkObjective = objective) -> np.ndarray:
            return obj.evaluate_batch(thetas)

        def single_calls(obj: dfo.NetworkObjective = objective) -> list[float]:
            return [obj(t) for t in thetas]

        def batched_fd(obj: dfo.NetworkObjective = objective) -> np.ndarray:
            return dfo.finite_difference(obj, theta).grad

        def looped_fd(obj: dfo.NetworkObjective = objective) -> np.ndarray:
            return naive_fd(obj, theta, h)

        # the same numbers both ways (to rounding; FD divides differences by h ~ 1e-8)
        np.testing.assert_allclose(batched_population(), single_calls(), rtol=1e-12)
        g_batched, g_looped = batched_fd(), looped_fd()
        scale = np.linalg.norm(g_looped)
        if np.linalg.norm(g_batched - g_looped) > 1e-5 * scale:
            raise RuntimeError("batched and looped finite differences disagree")

        pop = side_by_side(
            {"batched": batched_population, "loop": single_calls}, repeats=repeats, number=5
        )
        fd = side_by_side({"batched": batched_fd, "loop": looped_fd}, repeats=repeats)
        for what, t in ((f"population of {lam}", pop), (f"FD gradient ({n + 1} evals)", fd)):
            ratio = t["loop"] / t["batched"]
            target = f">= {TARGET:g}: {verdict(ratio, TARGET, at_least=True)}"
            rows.append((what, label, t["batched"] * 1e3, t["loop"] * 1e3, ratio, target))
        bounds.append((label, pop["loop"] / lam * 1e6, pop["batched"] / lam * 1e6))
    print_table(
        ("comparison", "data", "batched ms", "loop ms", "speed-up", "target"),
        rows,
    )
    print()
    print("Batching computes the same flops; it saves the cost of each separate call. The")
    print("speed-up is therefore at most (one call) / (one candidate's share of a batched call):")
    for label, single, share in bounds:
        print(f"  {label}: one call {single:.1f} us, share of a batched call {share:.1f} us")


if __name__ == "__main__":
    main()
