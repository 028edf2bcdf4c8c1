"""How accurate finite-difference, SPSA and forward-gradient estimates are, against backprop.

Measurements behind ``dfo scaling`` (see :mod:`dfo.scaling`), on the networks of
:func:`dfo.scaling.workload.network_for`:

- :func:`fd_step_error_curve`: the error of a finite-difference gradient as a
  function of the step ``h``. Truncation error falls like ``h`` (forward) or
  ``h^2`` (central) as ``h`` shrinks, rounding error ``~ eps |f| / h`` grows: a V
  whose bottom lies near ``h ~ sqrt(eps)`` (forward) or ``eps^(1/3)`` (central).
  A tiny delta is not more accurate.
- :func:`estimate_cosine`: the cosine between SPSA's and the forward gradient's
  estimates, averaged over ``q`` random directions, and the true gradient; about
  ``sqrt(q / (q + n))``, so ``1 / sqrt(n)`` for one direction.

Examples
--------
>>> from dfo.scaling.accuracy import spsa_cosine
>>> [r.q for r in spsa_cosine([85], qs=[1, 4], repeats=1, batch=32)]
[1, 4]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.nn.network_objective import NetworkObjective
from dfo.numdiff import finite_difference
from dfo.objective import as_objective
from dfo.optimizers import make_optimizer
from dfo.scaling.workload import (
    digits_batch,
    int_option,
    network_for,
    progress_bar,
    real_option,
    rel_error,
    sizes_option,
)

__all__ = [
    "CosineRecord",
    "StepErrorRecord",
    "estimate_cosine",
    "estimates",
    "fd_step_error_curve",
    "spsa_cosine",
]


@dataclass(frozen=True)
class StepErrorRecord:
    """Error of a finite-difference gradient at one step ``h``.

    Attributes
    ----------
    dtype : str
        ``"float64"`` or ``"float32"`` (point, steps and loss values in that type).
    scheme : str
        ``"forward"`` or ``"central"``.
    h : float
        Requested absolute step.
    rel_error : float
        ``||g_FD - g_backprop|| / ||g_backprop||``.
    n_params : int
    """

    dtype: str
    scheme: str
    h: float
    rel_error: float
    n_params: int


@dataclass(frozen=True)
class CosineRecord:
    """Cosine between a stochastic gradient estimate averaged over ``q`` directions and
    the true gradient.

    Attributes
    ----------
    method : str
        ``"spsa"`` (Rademacher directions, a difference of two evaluations each) or
        ``"forward-gradient"`` (Gaussian directions, one exact JVP each).
    n_params, q : int
    cosine_mean, cosine_std : float
        Over ``repeats`` independent sets of directions.
    cosine_rms : float
        Root mean square of the cosine over the repeats.
    theory : float
        ``sqrt(q / (q + n - 1))`` (SPSA) or ``sqrt(q / (q + n + 1))`` (forward
        gradient), from ``E[g_hat . g] = |g|^2`` and ``E|g_hat|^2 = |g|^2 (1 + (n - 1)
        / q)`` (Rademacher) or ``|g|^2 (1 + (n + 1) / q)`` (Gaussian). At ``q = 1``
        both equal ``1 / sqrt(n)``, the exact root mean square of the cosine (the
        mean is about ``sqrt(2 / pi)`` times it); for large ``q`` the mean approaches it.
    repeats : int
    """

    n_params: int
    q: int
    cosine_mean: float
    cosine_std: float
    theory: float
    repeats: int
    method: str = "spsa"
    cosine_rms: float = math.nan


def fd_step_error_curve(
    *,
    n_params: int = 610,
    steps: Sequence[float] | np.ndarray | None = None,
    dtypes: Sequence[str] = ("float64", "float32"),
    schemes: Sequence[str] = ("forward", "central"),
    batch: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> list[StepErrorRecord]:
    """Error of finite-difference gradients against backprop as a function of the step.

    The error falls like ``h`` (forward) or ``h^2`` (central) as the step shrinks,
    until rounding error ``~ eps |f| / h`` takes over and it grows again: a V whose
    bottom sits near ``h ~ sqrt(eps)`` (forward) or ``eps^(1/3)`` (central).

    The point is :func:`network_for` ``(n_params)``'s initial parameters, rounded to
    float32 so that both types differentiate at the same point; the reference is the
    float64 backprop gradient there. For ``"float32"`` the point and the steps are
    float32 (:func:`dfo.finite_difference` rounds each step to what float32 can
    represent) and every loss value is rounded to float32: the network itself
    computes in float64, so this is a *correctly rounded* float32 loss, the best a
    float32 evaluation can do (a float32 forward pass accumulates somewhat more
    rounding error, which raises the bottom of the V a little).

    Parameters
    ----------
    n_params : int, default 610
        Network size (``64-8-10``).
    steps : sequence of float, optional
        Absolute steps ``h``; default 40 values from ``1e-13`` to ``1``. Steps too
        small to move every coordinate in a float type are skipped for that type.
    dtypes : sequence of {"float64", "float32"}
    schemes : sequence of {"forward", "central"}
    batch, seed : int
        As in :func:`measure_gradient_costs`.
    progress : bool, default False

    Returns
    -------
    list of StepErrorRecord
    """
    grid = np.logspace(-13, 0, 40) if steps is None else np.asarray(steps, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid) & (grid > 0)):
        raise InvalidOptionError("steps must be a non-empty sequence of positive numbers")
    for d in dtypes:
        if d not in ("float64", "float32"):
            raise InvalidOptionError(f"dtypes must be 'float64' or 'float32'; got {d!r}")
    for s in schemes:
        if s not in ("forward", "central"):
            raise InvalidOptionError(f"schemes must be 'forward' or 'central'; got {s!r}")
    net = network_for(n_params)
    Xb, yb = digits_batch(batch, seed)
    obj = NetworkObjective(net, Xb, yb)
    x32 = net.init_params(np.random.default_rng(seed)).astype(np.float32)
    x64 = x32.astype(np.float64)
    _, g_ref = obj.value_and_grad(x64)
    rounded = as_objective(
        lambda T: obj.evaluate_batch(T).astype(np.float32), dim=net.n_params, batched=True
    )
    setups = {"float64": (obj, x64), "float32": (rounded, x32)}
    out = []
    for h in progress_bar(list(grid), "FD step error", progress):
        for dtype in dtypes:
            f, x = setups[dtype]
            for scheme in schemes:
                try:
                    res = finite_difference(f, x, scheme=scheme, h=float(h))
                except InvalidOptionError:  # h does not move some coordinate
                    continue
                err = rel_error(res.grad, g_ref)
                out.append(StepErrorRecord(dtype, scheme, float(h), err, net.n_params))
    return out


def _theory(method: str, q: int, n: int) -> float:
    return math.sqrt(q / (q + n - 1)) if method == "spsa" else math.sqrt(q / (q + n + 1))


def estimates(
    method: str, obj: NetworkObjective, theta: np.ndarray, seed: int, c: float
) -> Iterator[np.ndarray]:
    """Successive one-direction gradient estimates of dfo's own ``method`` at ``theta``.

    Each is one iteration of the method through ask/tell with a learning rate so small
    that the iterate stays where it is; its estimate is the method's ``gradient``.

    Parameters
    ----------
    method : {"spsa", "forward-gradient"}
    obj : NetworkObjective
    theta : ndarray
        The point.
    seed : int
        Seeds the method's directions.
    c : float
        SPSA's perturbation size.

    Yields
    ------
    ndarray
        One estimate per iteration.
    """
    if method == "spsa":
        opt: Any = make_optimizer("spsa", theta, seed=seed, a=1e-300, c=c)
    else:
        opt = make_optimizer("forward-gradient", theta, seed=seed, learning_rate=1e-300)
    while True:
        X = opt.ask()
        if method == "spsa":
            opt.tell(X, obj.evaluate_batch(X))
        else:
            value, dderiv = obj.value_and_jvp(X[0], opt.directions()[0])
            opt.tell(X, [value], [dderiv])
        assert opt.gradient is not None
        yield opt.gradient


def estimate_cosine(
    sizes: Sequence[int] = (85, 1_000, 10_000),
    qs: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    *,
    methods: Sequence[str] = ("spsa", "forward-gradient"),
    repeats: int = 3,
    batch: int = 256,
    c: float = 1e-4,
    seed: int = 0,
    progress: bool = False,
) -> list[CosineRecord]:
    """Cosine between dfo's stochastic gradient estimates and the backprop gradient.

    SPSA perturbs all coordinates at once along random +-1 directions ``d`` and
    estimates ``g_hat = mean_j (f(x + c d_j) - f(x - c d_j)) / (2c) d_j`` from
    ``2 q`` evaluations; the forward gradient is ``mean_j (grad f . v_j) v_j`` for
    Gaussian ``v_j``, from ``q`` exact directional derivatives. Both are unbiased, but
    their cosine with the gradient is only about ``sqrt(q / (q + n))``: they need
    ``q ~ n`` directions, i.e. as many evaluations as finite differences, to point the
    right way. Each estimate is one iteration of the method itself (``spsa`` with
    one direction, ``forward-gradient`` with one direction), averaged over ``q``
    iterations at the same point.

    Parameters
    ----------
    sizes : sequence of int
        Approximate parameter counts (see :func:`network_for`).
    qs : sequence of int
        Numbers of directions averaged (running means of one run of ``max(qs)``).
    methods : sequence of {"spsa", "forward-gradient"}
    repeats : int, default 3
        Independent runs per size; the mean, standard deviation and root mean square
        are reported.
    batch : int, default 256
    c : float, default 1e-4
        SPSA's perturbation size (small enough for the difference to be the
        directional derivative to many digits).
    seed : int, default 0
    progress : bool, default False

    Returns
    -------
    list of CosineRecord
    """
    sizes = sorted({network_for(n).n_params for n in sizes_option(sizes)})
    qs = sorted(set(sizes_option(qs, "qs")))
    repeats = int_option(repeats, "repeats")
    c = real_option(c, "c", strict=True)
    for m in methods:
        if m not in ("spsa", "forward-gradient"):
            raise InvalidOptionError(f"methods must be 'spsa' or 'forward-gradient'; got {m!r}")
    Xb, yb = digits_batch(batch, seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    out = []
    for n_target in progress_bar(sizes, "estimate cosine", progress):
        net = network_for(n_target)
        n = net.n_params
        obj = NetworkObjective(net, Xb, yb)
        theta = net.init_params(rng)
        _, g = obj.value_and_grad(theta)
        for method in methods:
            cos = np.empty((repeats, len(qs)))
            for r in range(repeats):
                draws = estimates(method, obj, theta, int(rng.integers(2**63)), c)
                total = np.zeros(n)
                done = 0
                for i, q in enumerate(qs):
                    while done < q:
                        total += next(draws)
                        done += 1
                    cos[r, i] = float(total @ g / (np.linalg.norm(total) * np.linalg.norm(g)))
            for i, q in enumerate(qs):
                out.append(
                    CosineRecord(
                        n,
                        q,
                        float(cos[:, i].mean()),
                        float(cos[:, i].std()),
                        _theory(method, q, n),
                        repeats,
                        method,
                        float(np.sqrt(np.mean(cos[:, i] ** 2))),
                    )
                )
    return out


def spsa_cosine(
    sizes: Sequence[int] = (85, 1_000, 10_000),
    qs: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    *,
    repeats: int = 3,
    batch: int = 256,
    c: float = 1e-4,
    seed: int = 0,
    progress: bool = False,
) -> list[CosineRecord]:
    """Cosine between SPSA's gradient estimate and the backprop gradient.

    :func:`estimate_cosine` for SPSA alone; see there.

    Parameters
    ----------
    sizes, qs, repeats, batch, c, seed, progress
        As for :func:`estimate_cosine`.

    Returns
    -------
    list of CosineRecord
    """
    return estimate_cosine(
        sizes,
        qs,
        methods=("spsa",),
        repeats=repeats,
        batch=batch,
        c=c,
        seed=seed,
        progress=progress,
    )
