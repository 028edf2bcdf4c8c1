"""One backprop SGD step of dfo's numpy network beside PyTorch's CPU eager mode.

Same MLP (tanh hidden layers, cross-entropy on logits), same weights, same batch,
float64 in both (``--dtype float32``: float32 in both, backprop-sgd's iterate and steps
included). A step is forward, backward and the parameter update:

- dfo, core: ``loss, g = net.loss_and_grad(theta, X, y); theta -= lr * g``;
- dfo, minimize: one iteration of ``dfo.minimize(..., method="backprop-sgd")`` on a
  :class:`dfo.NetworkObjective` of that batch (the toolkit's bookkeeping included), and
  on minibatches of the same size drawn from 10x as many rows (shuffled epochs): the
  difference between a run of ``2m`` and a run of ``m`` iterations, over ``m`` (the
  run's set-up cancels);
- PyTorch: ``zero_grad(); cross_entropy(model(X), y).backward(); SGD.step()``.

The loop's cost is also printed over its arithmetic: an iteration through minimize
against one bare ``net.loss_and_grad(theta, X, y, check=False)`` (what the objective
calls, ``X`` held as the objective holds it, with the first layer's column of ones) on
a fixed batch of the same size (the target's measure); against an iteration of a plain
numpy SGD loop doing the same work, ``loss_and_grad`` and ``theta -= lr * g`` on the
same batches (minibatches as such a loop draws them: each epoch a permutation, ``idx``
a slice of it, the rows copied by ``X[idx]``, ``y[idx]``), so that a minibatch loop is
also set against a bare loop that pays for its minibatches; and the run layer's own
cost per iteration, on an objective whose value and gradient cost nothing (of the
small net's dimension).

Both libraries use the same number of threads: numpy's BLAS threads (``--threads``,
default 1) and ``torch.set_num_threads`` with the same number. Everything is timed
alternately in each repeat; at one thread by the process's CPU time
(``time.process_time``: a shared machine's waits for a core are not counted), else by
wall time. Before timing, the script checks that both compute the same loss and
gradient (to 1e-10 relative; 1e-4 in float32).

Networks: 64-16-10 at batch 32 and 128, 784-256-256-10 at batch 256.
Targets: dfo's step through minimize faster than PyTorch's (ratio <= 1.0) on both, and
the loop at most 1.25x its bare loss_and_grad. With minibatches, the bare call on one
batch that stays in cache pays for no rows at all (a plain numpy loop spends 1.0-1.2x the
bare call drawing and copying them on 64-16-10), so the column "like for like" judges
the same 1.25 against the plain numpy SGD loop on the same minibatches.

PyTorch is a benchmark-only dependency: ``pip install torch`` (a CPU build).

Run: ``python benchmarks/bench_torch.py [--quick] [--threads N] [--dtype float32]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

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
    """A torch.nn.Sequential equal to ``net`` with parameters ``theta`` (in its dtype)."""
    import torch

    dtype = getattr(torch, net.dtype.name)

    layers: list[torch.nn.Module] = []
    pairs = net.unflatten(theta)
    for i, (W, b) in enumerate(pairs):
        linear = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
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


def run_case(
    sizes: list[int], batch: int, repeats: int, clock: Callable[[], float], dtype: str
) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    net = dfo.MLP(sizes, activation="tanh", dtype=dtype)
    theta = net.init_params(rng)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], size=batch)

    model = torch_model(net, theta)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    sgd = torch.optim.SGD(model.parameters(), lr=LR)

    # same loss and gradient before timing anything
    value, grad = net.loss_and_grad(theta, X, y)
    loss = F.cross_entropy(model(Xt), yt)
    loss.backward()
    g_torch = torch_grad(model)
    tol = 1e-10 if dtype == "float64" else 1e-4
    if not (
        abs(value - loss.item()) <= tol * abs(value)
        and np.linalg.norm(grad - g_torch) <= tol * np.linalg.norm(grad)
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

    X1 = net._inputs(X)  # [X, 1], as the objective holds its inputs

    def dfo_bare() -> None:
        net.loss_and_grad(th, X1, y, check=False)

    objective = dfo.NetworkObjective(net, X, y)
    # minibatches of the same size drawn from 10x as many rows, as a training run does
    big = rng.standard_normal((10 * batch, sizes[0])).astype(dtype)
    y_big = rng.integers(0, sizes[-1], size=10 * batch)
    minibatches = dfo.NetworkObjective(net, big, y_big, batch_size=batch)
    bare_sgd = {
        "fixed": bare_sgd_step(net, theta, X1, y, None),
        "minibatches": bare_sgd_step(net, theta, net._inputs(big), y_big, batch),
    }
    m = 10 if sizes[0] > 100 else 200

    def run(obj: dfo.NetworkObjective, n_iter: int) -> Callable[[], None]:
        def go() -> None:
            dfo.minimize(
                obj, theta, "backprop-sgd", 10 * m, max_iter=n_iter, seed=0, learning_rate=LR
            )

        return go

    steps = {
        "dfo core": dfo_step,
        "dfo bare loss_and_grad": dfo_bare,
        "PyTorch": torch_step,
        "bare SGD, fixed": bare_sgd["fixed"],
        "bare SGD, minibatches": bare_sgd["minibatches"],
        "fixed, m": run(objective, m),
        "fixed, 2m": run(objective, 2 * m),
        "minibatches, m": run(minibatches, m),
        "minibatches, 2m": run(minibatches, 2 * m),
    }
    number = {name: calls_for(fn) for name, fn in steps.items()}
    for name in steps:
        if ", " in name and not name.startswith("bare"):
            number[name] = 1
    times = side_by_side(steps, repeats=repeats, number=number, warmup=0, clock=clock)
    for key in ("fixed", "minibatches"):
        times[f"dfo minimize, {key}"] = (times[f"{key}, 2m"] - times[f"{key}, m"]) / m
    return times


def bare_sgd_step(
    net: dfo.MLP, theta: np.ndarray, X1: np.ndarray, y: np.ndarray, batch: int | None
) -> Callable[[], None]:
    """One iteration of a plain numpy SGD loop on ``net.loss_and_grad`` (no dfo loop).

    ``batch=None``: on all of ``(X1, y)`` every time. Otherwise on the next minibatch
    of shuffled epochs, drawn as a numpy loop draws it: ``idx`` a slice of the
    epoch's permutation, the rows copied by ``X1[idx]``, ``y[idx]``.
    """
    th, rng, n = theta.copy(), np.random.default_rng(1), X1.shape[0]
    state = {"order": rng.permutation(n), "at": 0}

    def step() -> None:
        if batch is None:
            _, g = net.loss_and_grad(th, X1, y, check=False)
        else:
            at = state["at"]
            if at + batch > n:
                state["order"], at = rng.permutation(n), 0
            idx = state["order"][at : at + batch]
            state["at"] = at + batch
            _, g = net.loss_and_grad(th, X1[idx], y[idx], check=False)
        np.subtract(th, LR * g, out=th)

    return step


class Instant(dfo.Objective):
    """A gradient objective that costs nothing: what is left is the run layer's own cost."""

    has_gradient = True

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.grad = np.full(dim, 1e-6)

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        return np.zeros(X.shape[0])

    def _value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return 1.0, self.grad


def run_layer_cost(dim: int, repeats: int, clock: Callable[[], float]) -> float:
    """Seconds per backprop-sgd iteration of minimize on :class:`Instant` (``dim`` entries)."""
    objective, x0, m = Instant(dim), np.zeros(dim), 2000

    def run(n_iter: int) -> Callable[[], None]:
        return lambda: dfo.minimize(
            objective, x0, "backprop-sgd", 10 * m, max_iter=n_iter, seed=0, learning_rate=LR
        )

    times = side_by_side({"m": run(m), "2m": run(2 * m)}, repeats=repeats, warmup=0, clock=clock)
    return (times["2m"] - times["m"]) / m


def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument(
        "--dtype", choices=("float64", "float32"), default="float64", help="in both libraries"
    )
    args = cli.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch): nothing to compare")
        return
    threads = args.threads or blas_threads()[0] or torch.get_num_threads()
    limiter = apply_threads(args.threads)
    torch.set_num_threads(threads)
    repeats = args.repeats or (5 if args.quick else 15)
    clock = time.process_time if threads == 1 else time.perf_counter
    print(describe_machine())
    print(
        f"PyTorch {torch.__version__}, torch.set_num_threads({threads}); {args.dtype}; "
        f"median of {repeats}, clock: {clock.__name__}"
    )
    print()
    rows, loops = [], []
    keys = ("dfo minimize, fixed", "dfo minimize, minibatches")
    for sizes, batch in CASES:
        t = run_case(sizes, batch, repeats, clock, args.dtype)
        name = "-".join(map(str, sizes)) + f" @ {batch}"
        for key in ("dfo core", *keys):
            ratio = t[key] / t["PyTorch"]
            target = f"<= 1.0: {verdict(ratio, 1.0, at_least=False)}" if key in keys else ""
            rows.append((name, key, t[key] * 1e6, t["PyTorch"] * 1e6, ratio, target))
        for key in keys:
            bare, plain = t["dfo bare loss_and_grad"], t["bare SGD, " + key.split(", ")[1]]
            loops.append(
                (
                    name,
                    key,
                    t[key] * 1e6,
                    bare * 1e6,
                    t[key] / bare,
                    f"<= {LOOP_TARGET}: {verdict(t[key] / bare, LOOP_TARGET, at_least=False)}",
                    plain * 1e6,
                    t[key] / plain,
                    f"<= {LOOP_TARGET}: {verdict(t[key] / plain, LOOP_TARGET, at_least=False)}",
                )
            )
    print_table(("network @ batch", "dfo step", "dfo us", "PyTorch us", "ratio", "target"), rows)
    print()
    print("The loop's cost over its arithmetic: an iteration of backprop-sgd through minimize")
    print("against one bare net.loss_and_grad(..., check=False) on a fixed batch of the same")
    print("size (the target), and against an iteration of a plain numpy SGD loop on the same")
    print("batches (minibatches: X[idx] with idx a slice of the epoch's permutation):")
    print_table(
        (
            "network @ batch",
            "loop",
            "per iteration us",
            "loss_and_grad us",
            "ratio",
            "target",
            "numpy SGD loop us",
            "ratio",
            "like for like",
        ),
        loops,
    )
    dim = dfo.MLP(list(CASES[0][0])).n_params
    cost = run_layer_cost(dim, repeats, clock)
    print()
    print(
        f"The run layer's own cost per iteration (minimize on an objective that costs "
        f"nothing, n = {dim}): {cost * 1e6:.1f} us"
    )
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()
