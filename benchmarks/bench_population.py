"""Population evaluation against the machine's matrix-product rate and the fastest peers.

``NetworkObjective.evaluate_batch(Thetas)`` (one vectorized forward pass of ``k``
networks plus the softmax cross-entropy) is the hot path of every population and
finite-difference method. For each network (64-16-10, 64-256-10, 784-256-256-10, tanh),
minibatch (128, 1347 rows) and population (10, 50, 200), in float64 and float32, the
script prints:

- the achieved GFLOP/s (``2 * batch * k * sum(n_in * n_out)`` multiply-adds counted,
  nothing else) and its percentage of a large square matrix product (dgemm/sgemm)
  measured in the same run;
- the ratio of ``k`` single calls ``objective(theta)`` to one batched call (the first
  ten single calls timed, scaled to ``k``);
- float32 over float64 (dfo's own);
- when installed, dfo's speed over ``jax.jit(jax.vmap(loss))`` and over torch
  (``torch.func.vmap`` of the same loss; eager mode), each in both dtypes
  (above 1: dfo is faster).

Everything runs on one core (numpy's BLAS, torch and XLA limited to one thread),
timed alternately in each repeat by the CPU time of the process (``time.process_time``:
on a shared machine the time spent waiting for a core is not counted); each repeat
times a run of about 20 ms of calls in a row of each implementation, as an optimizer
makes them (a single call right after another implementation's starts on cold
caches: on the small networks that alone cost dfo 5-15 points of the gemm rate).
Before timing, the script checks that every implementation computes the same losses
(1e-10 relative in float64, 1e-4 in float32).

Besides the matrix products, a tanh layer costs elementwise work that no product
rate accounts for; the column ``bound %`` is the percentage of dgemm the forward
could reach if everything but its products and tanh were free (each timed alone,
same shapes, layout and chunks as the forward), which is what the ``% dgemm`` figure
should be read against. The column ``products %`` is what the products alone reach
(one BLAS product per network and layer; small shapes, such as a batch of 128 through
a narrow layer, run well below the square product's rate): a bound on the forward
too, whatever the elementwise work costs.

The column ``floor %`` is what the same forward and softmax cross-entropy reach
written as a bare numpy pipeline, with no dfo code (``floor_losses``: the inputs,
weight views and label indices made once outside the call, the same chunks and
buffers, no check of the logits' range), in two layouts: one row per sample (dfo's
float64 layout) and one column per sample (every product written transposed); the
faster of the two is shown (``floor layout``), timed in the same alternation as dfo.
``dfo / floor`` is dfo's rate over the floor's: what dfo's own code (checks, views,
dispatch, the shift test of the log-sum-exp) costs beyond the arithmetic numpy does
anyway; the floor's values are checked against dfo's like the peers'.

Targets: float32 >= 1.8x dfo's float64 on every net, and >= 1.0x jax.jit(vmap) float32
on the same net, minibatch and population; the population forward >= 60% of the
same-run dgemm on 64-256-10 and 784-256-256-10 at minibatch 128, >= 45% on 64-16-10.

Run: ``python benchmarks/bench_population.py [--quick] [--nets 64-16-10,...]``.
"""

from __future__ import annotations

import os

# one thread for XLA too (before jax is imported)
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _bench import (
    apply_threads,
    calls_for,
    describe_machine,
    parser,
    print_table,
    side_by_side,
    verdict,
)

import dfo
from dfo.nn.network import _CHUNK_BYTES as CHUNK_BYTES  # the forward's chunks

NETS = ((64, 16, 10), (64, 256, 10), (784, 256, 256, 10))
BATCHES = (128, 1347)
POPULATIONS = (10, 50, 200)
DTYPES = ("float64", "float32")
#: layouts of the bare numpy pipeline (floor_losses); the faster one is the floor
LAYOUTS = ("rows", "columns")
F32_TARGET, JAX_TARGET = 1.8, 1.0
#: single calls timed per population (their time per network is scaled to k)
SINGLES = 10
#: CPU time of the process (all its threads: XLA and torch compute in their own): on one
#: core each, what a busy machine's waits do not distort
CLOCK = time.process_time
DGEMM_TARGET = {(64, 16, 10): 45.0, (64, 256, 10): 60.0, (784, 256, 256, 10): 60.0}


def flops(sizes: tuple[int, ...], batch: int, k: int) -> float:
    return 2.0 * batch * k * sum(a * b for a, b in itertools.pairwise(sizes))


def gemm_rate(dtype: str, repeats: int) -> float:
    """FLOP/s of a 1024 x 1024 matrix product in ``dtype`` (median)."""
    A = np.random.default_rng(0).standard_normal((1024, 1024)).astype(dtype)
    t = side_by_side({"gemm": lambda: A @ A}, repeats=repeats, clock=CLOCK)["gemm"]
    return 2.0 * 1024**3 / t


def bound_fraction(
    sizes: tuple[int, ...], batch: int, k: int, dtype: str, rate: float
) -> tuple[float, float]:
    """Percent of ``rate`` reachable if only the products and the tanh layers cost time,
    and the percent the products alone reach (the k per-network products of each layer).

    Both are timed as the forward runs them: in its layout (one row per sample, the
    output layer's product transposed) and chunk by chunk, with the network's own
    chunk size (so that the tanh passes run in cache as they do there).
    """
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((batch, sizes[0])).astype(dtype)
    Ws = [rng.standard_normal((k, a, b)).astype(dtype) for a, b in itertools.pairwise(sizes)]
    activations = np.dtype(dtype).itemsize * batch * sum(sizes[1:])
    chunk = max(1, min(k, CHUNK_BYTES // activations))
    shapes = [(batch, b) for b in sizes[1:-1]] + [(sizes[-1], batch)]
    Z = [np.empty((chunk, *shape), dtype) for shape in shapes]

    def products() -> None:
        for start in range(0, k, chunk):
            c = min(chunk, k - start)
            x = x0
            for W, z in zip(Ws[:-1], Z[:-1], strict=True):
                x = np.matmul(x, W[start : start + c], out=z[:c])
            W = Ws[-1][start : start + c].swapaxes(-1, -2)
            np.matmul(W, x.swapaxes(-1, -2), out=Z[-1][:c])

    def tanhs() -> None:
        for start in range(0, k, chunk):
            c = min(chunk, k - start)
            for z in Z[:-1]:
                np.tanh(z[:c], out=z[:c])

    fns = {"p": products, "t": tanhs}
    number = {name: calls_for(fn) for name, fn in fns.items()}
    t = side_by_side(fns, repeats=5, number=number, clock=CLOCK)
    best = flops(sizes, batch, k) / rate  # the products at the square-gemm rate
    return 100.0 * best / (max(t["p"], best) + t["t"]), 100.0 * best / t["p"]


def floor_losses(
    sizes: tuple[int, ...], X: np.ndarray, y: np.ndarray, T: np.ndarray, layout: str
) -> Callable[[], np.ndarray]:
    """The same forward and softmax cross-entropy as a bare numpy pipeline (no dfo code).

    ``layout="rows"``: one row per sample, the output layer's product written
    transposed (``W^T H^T``); ``"columns"``: every layer transposed, one column per
    sample (``W^T A`` from ``[X, 1]^T``, held contiguous). The inputs with their column
    of ones (and its transpose), the weight views and the label indices are made once,
    outside the call; each call runs the same chunks as dfo's forward into buffers made
    once, with no check of the logits' range (a call's only work: products, bias, tanh,
    exp, sums, log and the label gather).
    """
    dtype = T.dtype
    k, batch, last = T.shape[0], X.shape[0], len(sizes) - 2
    Xe = np.ones((batch, sizes[0] + 1), dtype)
    Xe[:, :-1] = X
    XeT = np.ascontiguousarray(Xe.T)
    layers, off = [], 0
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        W = T[:, off : off + (n_in + (i == 0)) * n_out].reshape(k, n_in + (i == 0), n_out)
        off += n_in * n_out
        b = T[:, off : off + n_out][:, None, :]
        off += n_out
        columns = layout == "columns" or i == last
        layers.append((W.swapaxes(1, 2) if columns else W, b.swapaxes(1, 2) if columns else b))
    activations = dtype.itemsize * batch * sum(sizes[1:])
    per_net = activations + dtype.itemsize * T.shape[1]
    chunk = max(1, min(k, 256 * 2**20 // per_net, CHUNK_BYTES // activations))
    shapes = [(n, batch) if layout == "columns" else (batch, n) for n in sizes[1:-1]]
    bufs = [np.empty((chunk, *shape), dtype) for shape in [*shapes, (sizes[-1], batch)]]
    flat = y * batch + np.arange(batch)  # z[y_i, i] in a flattened (n_out, batch) logit block
    out = np.empty(k, dtype)

    def call() -> np.ndarray:
        for start in range(0, k, chunk):
            c = min(chunk, k - start)
            a = XeT if layout == "columns" else Xe
            for i, (W, b) in enumerate(layers):
                Wc, z = W[start : start + c], bufs[i][:c]
                if i == last and layout == "rows":
                    np.matmul(Wc, a.swapaxes(-1, -2), out=z)
                else:
                    np.matmul(a, Wc, out=z) if layout == "rows" else np.matmul(Wc, a, out=z)
                if i > 0:
                    z += b[start : start + c]
                if i < last:
                    np.tanh(z, out=z)
                a = z
            zy = np.take(a.reshape(c, -1), flat, axis=1)
            np.exp(a, out=a)
            s = np.add.reduce(a, axis=-2)
            np.log(s, out=s)
            s -= zy
            np.divide(np.add.reduce(s, axis=-1), batch, out=out[start : start + c])
        return out

    return call


def jax_loss(
    sizes: tuple[int, ...], X: np.ndarray, y: np.ndarray, dtype: str
) -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    shapes = list(itertools.pairwise(sizes))
    Xj, yj = jnp.asarray(X.astype(dtype)), jnp.asarray(y)

    def loss(theta: Any) -> Any:
        a, off = Xj, 0
        for i, (n_in, n_out) in enumerate(shapes):
            W = theta[off : off + n_in * n_out].reshape(n_in, n_out)
            off += n_in * n_out
            a = a @ W + theta[off : off + n_out]
            off += n_out
            if i < len(shapes) - 1:
                a = jnp.tanh(a)
        lse = jax.nn.logsumexp(a, axis=1)
        return jnp.mean(lse - a[jnp.arange(a.shape[0]), yj])

    batched = jax.jit(jax.vmap(loss))
    return lambda T: batched(T).block_until_ready()


def torch_loss(
    sizes: tuple[int, ...], X: np.ndarray, y: np.ndarray, dtype: str
) -> Callable[..., Any]:
    import torch

    shapes = list(itertools.pairwise(sizes))
    Xt, yt = torch.from_numpy(X.astype(dtype)), torch.from_numpy(y)

    def loss(theta: Any) -> Any:
        a, off = Xt, 0
        for i, (n_in, n_out) in enumerate(shapes):
            W = theta[off : off + n_in * n_out].reshape(n_in, n_out)
            off += n_in * n_out
            a = torch.addmm(theta[off : off + n_out], a, W)
            off += n_out
            if i < len(shapes) - 1:
                a = torch.tanh(a)
        return torch.nn.functional.cross_entropy(a, yt)

    batched = torch.func.vmap(loss)

    def call(T: Any) -> Any:
        with torch.no_grad():
            return batched(T)

    return call


def peers() -> dict[str, bool]:
    found = {}
    for name in ("jax", "torch"):
        try:
            __import__(name)
            found[name] = True
        except ImportError:
            found[name] = False
    if found["jax"]:
        import jax

        jax.config.update("jax_enable_x64", True)
    return found


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--nets", default=None, help="comma-separated nets, e.g. 64-16-10")
    args = p.parse_args()
    threads = 1
    apply_threads(threads)
    repeats = args.repeats or (3 if args.quick else 7)
    nets = (
        NETS
        if args.nets is None
        else tuple(tuple(int(s) for s in net.split("-")) for net in args.nets.split(","))
    )
    found = peers()
    if found["torch"]:
        import torch

        torch.set_num_threads(threads)
    print(describe_machine())
    rates = {dt: gemm_rate(dt, repeats) for dt in DTYPES}
    print(
        f"{threads} thread(s); median of {repeats}; same-run gemm 1024^3: "
        + ", ".join(f"{dt} {r / 1e9:.1f} GFLOP/s" for dt, r in rates.items())
    )
    print(
        "peers: " + ", ".join(f"{n} {'yes' if ok else 'not installed'}" for n, ok in found.items())
    )
    print()

    rows, verdicts = [], []
    rng = np.random.default_rng(0)
    for sizes in nets:
        net64 = dfo.MLP(list(sizes), "tanh")
        for batch in BATCHES:
            X = rng.standard_normal((batch, sizes[0]))
            y = rng.integers(0, sizes[-1], size=batch)
            objs = {dt: dfo.NetworkObjective(net64, X, y, dtype=dt) for dt in DTYPES}
            for k in POPULATIONS:
                T64 = net64.init_params(rng) + 0.1 * rng.standard_normal((k, net64.n_params))
                Ts = {"float64": T64, "float32": T64.astype(np.float32)}
                fns: dict[str, Callable[[], Any]] = {}
                ref = objs["float64"].evaluate_batch(T64)
                for dt in DTYPES:
                    obj, T = objs[dt], Ts[dt]
                    fns[f"dfo {dt}"] = lambda obj=obj, T=T: obj.evaluate_batch(T)
                    got = fns[f"dfo {dt}"]()
                    np.testing.assert_allclose(got, ref, rtol=1e-10 if dt == "float64" else 1e-4)
                for dt in DTYPES:
                    for layout in LAYOUTS:
                        f = floor_losses(sizes, X.astype(dt), y, Ts[dt], layout)
                        np.testing.assert_allclose(
                            f(), ref, rtol=1e-10 if dt == "float64" else 1e-4
                        )
                        fns[f"floor {layout} {dt}"] = f
                fns["single float64"] = lambda obj=objs["float64"], T=T64[:SINGLES]: [
                    obj(t) for t in T
                ]
                for name, ok in found.items():
                    if not ok:
                        continue
                    make = jax_loss if name == "jax" else torch_loss
                    for dt in DTYPES:
                        f = make(sizes, X, y, dt)
                        if name == "jax":
                            import jax.numpy as jnp

                            arg = jnp.asarray(Ts[dt])
                        else:
                            arg = torch.from_numpy(Ts[dt])
                        got = np.asarray(f(arg), dtype=np.float64)
                        np.testing.assert_allclose(
                            got, ref, rtol=1e-10 if dt == "float64" else 1e-4
                        )
                        fns[f"{name} {dt}"] = lambda f=f, arg=arg: f(arg)
                # each sample a run of calls in a row (about 20 ms), as an optimizer makes
                # them: the first call after another implementation's finds cold caches
                number = {name: calls_for(fn) for name, fn in fns.items()}
                t = side_by_side(fns, repeats=repeats, number=number, clock=CLOCK)
                fl = flops(sizes, batch, k)
                net = "-".join(map(str, sizes))
                for dt in DTYPES:
                    gf = fl / t[f"dfo {dt}"]
                    pct = 100.0 * gf / rates[dt]
                    bound, products = bound_fraction(sizes, batch, k, dt, rates[dt])
                    layout = min(LAYOUTS, key=lambda name: t[f"floor {name} {dt}"])
                    floor = 100.0 * fl / t[f"floor {layout} {dt}"] / rates[dt]
                    peer = {
                        name: t[f"dfo {dt}"] and t[f"{name} {dt}"] / t[f"dfo {dt}"]
                        for name in found
                        if f"{name} {dt}" in t
                    }
                    rows.append(
                        (
                            net,
                            batch,
                            k,
                            dt,
                            t[f"dfo {dt}"] * 1e3,
                            gf / 1e9,
                            pct,
                            products,
                            bound,
                            floor,
                            layout,
                            pct / floor,
                            t["single float64"] / min(k, SINGLES) * k / t["dfo float64"]
                            if dt == "float64"
                            else "",
                            t["dfo float64"] / t["dfo float32"] if dt == "float32" else "",
                            peer.get("jax", ""),
                            peer.get("torch", ""),
                        )
                    )
                    if batch == 128:
                        verdicts.append(
                            (f"{net} b{batch} k{k} {dt} % dgemm", pct, DGEMM_TARGET[sizes], True)
                        )
                    if dt == "float32":
                        verdicts.append(
                            (
                                f"{net} b{batch} k{k} float32/float64",
                                t["dfo float64"] / t["dfo float32"],
                                F32_TARGET,
                                True,
                            )
                        )
                        if "jax" in peer:
                            verdicts.append(
                                (
                                    f"{net} b{batch} k{k} float32 vs jax",
                                    peer["jax"],
                                    JAX_TARGET,
                                    True,
                                )
                            )
    print_table(
        (
            "net",
            "batch",
            "k",
            "dtype",
            "ms",
            "GFLOP/s",
            "% gemm",
            "products %",
            "bound %",
            "floor %",
            "floor layout",
            "dfo / floor",
            "single/batched",
            "f32 speed-up",
            "vs jax",
            "vs torch",
        ),
        rows,
    )
    print()
    print("vs jax / vs torch: peer time over dfo time, same dtype (above 1: dfo is faster)")
    print("dfo / floor: dfo's rate over the bare numpy pipeline's (1: dfo at the floor)")
    print()
    missed = [v for v in verdicts if verdict(v[1], v[2], at_least=v[3]) != "ok"]
    print(f"targets: {len(verdicts) - len(missed)} of {len(verdicts)} met")
    for name, value, target, _ in missed:
        print(f"  MISSED {name}: {value:.3g} (target >= {target:g})")


if __name__ == "__main__":
    main()
