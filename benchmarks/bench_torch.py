"""One backprop SGD step of dfo's numpy network beside PyTorch's CPU eager mode.

Same MLP (tanh hidden layers, cross-entropy on logits), same weights, same batch,
float64 in both. A step is forward, backward and the parameter update:

- dfo, core: ``loss, g = net.loss_and_grad(theta, X, y); theta -= lr * g``;
- dfo, minimize: one iteration of ``dfo.minimize(..., method="backprop-sgd")`` on a
  :class:`dfo.NetworkObjective` of that batch (the toolkit's bookkeeping included),
  timed by the run's own history clock between its first and last iterations;
- PyTorch: ``zero_grad(); cross_entropy(model(X), y).backward(); SGD.step()``.

Both libraries use the same number of threads: numpy's BLAS threads (or ``--threads``)
and ``torch.set_num_threads`` with the same number. Before timing, the script checks
that both compute the same loss and gradient (to 1e-10 relative).

Networks: 64-16-10 at batch 32 and 784-256-256-10 at batch 256.
Target: dfo's step time at most 1.0x PyTorch's on both.

PyTorch is a benchmark-only dependency: ``pip install torch`` (a CPU build).

Run: ``python benchmarks/bench_torch.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import statistics

import numpy as np
from _bench import (
    apply_threads,
    blas_threads,
    calls_for,
    describe_machine,
    parser,
    print_table,
    side_by_side,
    verdict,
)

import dfo

CASES = (([64, 16, 10], 32), ([64, 16, 10], 128), ([784, 256, 256, 10], 256))
LR = 1e-3
#: backprop-sgd through minimize, per iteration, over one bare loss_and_grad
LOOP_TARGET = 1.25


def torch_model(net: dfo.MLP, theta: np.ndarray):  # type: ignore[no-untyped-def]
    """A torch.nn.Sequential equal to ``net`` with parameters ``theta``."""
    import torch

    layers: list[torch.nn.Module] = []
    pairs = net.unflatten(theta)
    for i, (W, b) in enumerate(pairs):
        linear = torch.nn.Linear(W.shape[0], W.shape[1], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(linear)
        if i < len(pairs) - 1:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def torch_grad(model) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The model's gradient, flattened in dfo's layout (W as (n_in, n_out), then b)."""
    parts = []
    for module in model:
        if hasattr(module, "weight"):
            parts.append(module.weight.grad.numpy().T.ravel())
            parts.append(module.bias.grad.numpy().ravel())
    return np.concatenate(parts)


def run_case(sizes: list[int], batch: int, repeats: int) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    net = dfo.MLP(sizes, activation="tanh")
    theta = net.init_params(rng)
    X = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], size=batch)

    model = torch_model(net, theta)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    sgd = torch.optim.SGD(model.parameters(), lr=LR)

    # same loss and gradient before timing anything
    value, grad = net.loss_and_grad(theta, X, y)
    loss = F.cross_entropy(model(Xt), yt)
    loss.backward()
    g_torch = torch_grad(model)
    if not (
        abs(value - loss.item()) <= 1e-10 * abs(value)
        and np.linalg.norm(grad - g_torch) <= 1e-10 * np.linalg.norm(grad)
    ):
        raise RuntimeError("dfo and PyTorch disagree on the loss or the gradient")

    th = theta.copy()

    def dfo_step() -> None:
        _, g = net.loss_and_grad(th, X, y)
        np.subtract(th, LR * g, out=th)

    def torch_step() -> None:
        sgd.zero_grad(set_to_none=True)
        F.cross_entropy(model(Xt), yt).backward()
        sgd.step()

    def dfo_bare() -> None:
        net.loss_and_grad(th, X, y)

    objective = dfo.NetworkObjective(net, X, y)
    # minibatches of the same size drawn from 10x as many rows, as a training run does
    big = rng.standard_normal((10 * batch, sizes[0]))
    minibatches = dfo.NetworkObjective(
        net, big, rng.integers(0, sizes[-1], size=10 * batch), batch_size=batch
    )
    n_iter = 10 if sizes[0] > 100 else 100
    per_iteration: dict[str, list[float]] = {"dfo minimize": [], "dfo minimize, minibatches": []}

    def run(obj: dfo.NetworkObjective, key: str) -> None:
        res = dfo.minimize(
            obj, theta, "backprop-sgd", 10 * n_iter, max_iter=n_iter, seed=0, learning_rate=LR
        )
        t = res.history["time"]  # wall time at the end of each iteration
        per_iteration[key].append((t[-1] - t[0]) / (len(t) - 1))

    steps = {
        "dfo core": dfo_step,
        "dfo bare loss_and_grad": dfo_bare,
        "PyTorch": torch_step,
        "dfo minimize": lambda: run(objective, "dfo minimize"),
        "dfo minimize, minibatches": lambda: run(minibatches, "dfo minimize, minibatches"),
    }
    number = {name: calls_for(fn) for name, fn in steps.items()}
    for key in per_iteration:
        number[key] = 1
        per_iteration[key].clear()
    times = side_by_side(steps, repeats=repeats, number=number, warmup=0)
    # the run's own clock, between the ends of its first and last iterations
    for key, values in per_iteration.items():
        times[key] = statistics.median(values)
    return times


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch): nothing to compare")
        return
    threads = args.threads or blas_threads()[0] or torch.get_num_threads()
    limiter = apply_threads(args.threads)
    torch.set_num_threads(threads)
    repeats = args.repeats or (5 if args.quick else 15)
    print(describe_machine())
    print(
        f"PyTorch {torch.__version__}, torch.set_num_threads({threads}); float64; "
        f"median of {repeats}"
    )
    print()
    rows, loops = [], []
    for sizes, batch in CASES:
        t = run_case(sizes, batch, repeats)
        name = "-".join(map(str, sizes)) + f" @ {batch}"
        for key in ("dfo core", "dfo minimize", "dfo minimize, minibatches"):
            ratio = t[key] / t["PyTorch"]
            rows.append(
                (
                    name,
                    key,
                    t[key] * 1e6,
                    t["PyTorch"] * 1e6,
                    ratio,
                    f"<= 1.0: {verdict(ratio, 1.0, at_least=False)}",
                )
            )
        for key in ("dfo minimize", "dfo minimize, minibatches"):
            ratio = t[key] / t["dfo bare loss_and_grad"]
            loops.append(
                (
                    name,
                    key,
                    t[key] * 1e6,
                    t["dfo bare loss_and_grad"] * 1e6,
                    ratio,
                    f"<= {LOOP_TARGET}: {verdict(ratio, LOOP_TARGET, at_least=False)}",
                )
            )
    print_table(("network @ batch", "dfo step", "dfo us", "PyTorch us", "ratio", "target"), rows)
    print()
    print("The loop's cost over its arithmetic: an iteration of backprop-sgd through minimize")
    print("against one bare net.loss_and_grad call on the same batch:")
    print_table(
        ("network @ batch", "loop", "per iteration us", "loss_and_grad us", "ratio", "target"),
        loops,
    )
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()
