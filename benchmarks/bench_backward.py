"""The cheap gradient principle, measured: backprop costs a small constant times a forward pass.

For two tanh networks with cross-entropy, 64-16-10 at batch 64 and
784-256-256-10 at batch 256, it times side by side in one process (medians of
repeats, the two alternating within each repeat so that both see the same load):

- ``loss``: one forward pass and the loss,
- ``loss_and_grad``: the same forward pass, then backpropagation to every parameter,

through the public methods (which validate their inputs) and through the
unchecked kernels that :class:`dfo.NetworkObjective` calls, and prints the ratio
(forward + backward) / forward. Theory: a small constant whatever the number of
parameters -- the backward pass does one matrix product per layer for dL/dW and
one per hidden layer for dL/da, against one per layer forward, so about 2.2 for
the large network in flops, while a forward-difference gradient costs
``n + 1 = 269,323`` forward passes.

BLAS runs single-threaded unless ``--threads N`` says otherwise: the ratio is
about work, and on a small shared machine extra BLAS threads mostly add
scheduling noise.

Target: ratio <= 2.5 for both networks.

Run: ``python benchmarks/bench_backward.py [--quick] [--repeats R] [--threads N]``.
"""

from __future__ import annotations

import os
import time

from _bench import apply_threads, describe_machine, parser, print_table, side_by_side, verdict

TARGET = 2.5
CASES = (([64, 16, 10], 64), ([784, 256, 256, 10], 256))


def time_case(sizes: list[int], batch: int, repeats: int) -> list[tuple]:
    """Rows of the table for one network: public methods and kernels."""
    import numpy as np

    import dfo
    from dfo.nn.losses import get_loss

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
    # about 20 ms per timed block
    t0 = time.perf_counter()
    net.loss_and_grad(theta, X, y)
    number = max(1, round(0.02 / (time.perf_counter() - t0)))
    rows = []
    name = "-".join(map(str, sizes))
    for api, (fwd, both) in pairs.items():
        t = side_by_side({"fwd": fwd, "both": both}, repeats=repeats, number=number)
        ratio = t["both"] / t["fwd"]
        rows.append(
            (
                name,
                batch,
                net.n_params,
                api,
                t["fwd"] * 1e6,
                t["both"] * 1e6,
                ratio,
                f"<= {TARGET:g}: {verdict(ratio, TARGET, at_least=False)}",
            )
        )
    return rows


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.threads is None:  # default here: one BLAS thread (set before numpy loads)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
    _limit = apply_threads(args.threads)  # the limit holds while this is alive
    repeats = args.repeats or (5 if args.quick else 21)
    print(describe_machine())
    print(f"tanh networks, cross-entropy; median of {repeats}")
    print()
    rows = []
    for sizes, batch in CASES:
        rows += time_case(sizes, batch, repeats)
    print_table(
        ("network", "batch", "n_params", "api", "fwd us", "fwd+bwd us", "ratio", "target"),
        rows,
    )


if __name__ == "__main__":
    main()
