"""The cheap gradient principle, measured: backprop costs a small constant times a forward pass.

For two networks it times, side by side in one process (medians of repeats,
forward and forward+backward interleaved so that both see the same machine load):

- ``loss``: one forward pass and the loss,
- ``loss_and_grad``: the same forward pass, then backpropagation to all parameters,

through the public methods (which validate their inputs) and through the
unchecked kernels that :class:`dfo.NetworkObjective` calls, and prints the ratio
(forward+backward) / forward. Theory: about 2-3 whatever the number of
parameters (the backward pass does one matrix product per weight matrix for
dL/dW and one more per hidden layer for dL/da, against one per layer forward),
where a finite-difference gradient costs ``n + 1`` forward passes.

With ``--population`` it also times ``NetworkObjective.evaluate_batch`` (the
population pass :meth:`dfo.MLP.population_loss`) on ``lambda = 4 + floor(3 ln n)``
points (one CMA-ES generation) against as many single calls ``obj(x)``, on a
64-16-10 network at several batch sizes.

BLAS runs single-threaded by default (``--threads 0`` keeps the library's own
setting): the ratios are about work, and on a small shared machine extra BLAS
threads mostly add scheduling noise.

Run: ``python benchmarks/bench_backward.py [--quick] [--population] [--threads N]``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable


def interleaved_medians(fns: list[Callable[[], object]], number: int, repeats: int) -> list[float]:
    """Median time per call of each function; the functions take turns in each repeat."""
    for fn in fns:
        fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples, strict=True):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            out.append((time.perf_counter() - t0) / number)
    return [statistics.median(s) for s in samples]


def backward_case(sizes: list[int], batch: int, number: int, repeats: int) -> None:
    """Print the forward and forward+backward times of one network."""
    import numpy as np

    import dfo
    from dfo.losses import get_loss

    lossfn = get_loss("cross_entropy")
    rng = np.random.default_rng(0)
    net = dfo.MLP(sizes, "tanh")
    theta = net.init_params(rng)
    X = rng.normal(size=(batch, sizes[0]))
    y = rng.integers(0, sizes[-1], size=batch)
    pairs = {
        "public": (lambda: net.loss(theta, X, y), lambda: net.loss_and_grad(theta, X, y)),
        "kernel": (
            lambda: net._loss(theta, X, y, lossfn),
            lambda: net._loss_and_grad(theta, X, y, lossfn),
        ),
    }
    name = "-".join(map(str, sizes))
    for api, (fwd, both) in pairs.items():
        t_fwd, t_both = interleaved_medians([fwd, both], number, repeats)
        print(
            f"{name:<20}{batch:>6}{net.n_params:>10}{api:>10}"
            f"{t_fwd * 1e6:>10.1f}us{t_both * 1e6:>10.1f}us{t_both / t_fwd:>8.2f}"
        )


def bench_backward(quick: bool) -> None:
    header = (
        f"{'network':<20}{'batch':>6}{'n_params':>10}{'api':>10}"
        f"{'forward':>12}{'fwd+bwd':>12}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    repeats = 7 if quick else 21
    for sizes, batch, number in (([64, 16, 10], 64, 400), ([784, 256, 256, 10], 256, 3)):
        backward_case(sizes, batch, max(1, number // 4) if quick else number, repeats)
    print("\nratio = time(loss_and_grad) / time(loss); target <= 2.5")


def population_case(batch: int, quick: bool) -> None:
    """Print the population pass against single calls at one batch size."""
    import numpy as np

    import dfo

    net = dfo.MLP([64, 16, 10], "tanh")
    k = 4 + math.floor(3 * math.log(net.n_params))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(batch, 64))
    y = rng.integers(0, 10, size=batch)
    obj = dfo.NetworkObjective(net, X, y)
    thetas = net.init_params(rng) + 0.1 * rng.normal(size=(k, net.n_params))
    number = 1 if quick else max(1, 20_000 // (batch * k))
    t_pop, t_single = interleaved_medians(
        [lambda: obj.evaluate_batch(thetas), lambda: [obj(t) for t in thetas]],
        number,
        5 if quick else 11,
    )
    print(f"{batch:>6}{t_pop * 1e6:>12.0f}us{t_single * 1e6:>12.0f}us{t_single / t_pop:>9.2f}")


def bench_population(quick: bool) -> None:
    k = 4 + math.floor(3 * math.log(1210))
    print(
        f"\nNetworkObjective on a 64-16-10 network: evaluate_batch of lambda={k} points "
        f"vs {k} calls obj(x)"
    )
    header = f"{'batch':>6}{'batch call':>14}{'k calls':>14}{'speedup':>9}"
    print(header)
    print("-" * len(header))
    for batch in (100, 500, 1800):
        population_case(batch, quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument(
        "--population", action="store_true", help="also time the population forward pass"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads (default 1; 0 keeps the library's setting)",
    )
    args = parser.parse_args()
    if args.threads > 0:  # must happen before numpy is imported
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    bench_backward(args.quick)
    if args.population:
        bench_population(args.quick)


if __name__ == "__main__":
    main()
