"""How accurate finite-difference and SPSA gradients are, against backprop.

Measurements behind ``dfo scaling`` (see :mod:`dfo.scaling`), on the networks of
:func:`dfo.scaling.costs.network_for`:

- :func:`fd_step_error_curve`: the error of a finite-difference gradient as a
  function of the step ``h``. Truncation error falls like ``h`` (forward) or
  ``h^2`` (central) as ``h`` shrinks, rounding error ``~ eps |f| / h`` grows: a V
  whose bottom lies near ``h ~ sqrt(eps)`` (forward) or ``eps^(1/3)`` (central).
  A tiny delta is not more accurate.
- :func:`spsa_cosine`: the cosine between SPSA's estimate, averaged over ``q``
  random directions, and the true gradient; about ``sqrt(q / (q + n - 1))``.

Examples
--------
>>> from dfo.scaling.accuracy import spsa_cosine
>>> [r.q for r in spsa_cosine([85], qs=[1, 4], repeats=1, batch=32)]
[1, 4]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.nn.network_objective import NetworkObjective
from dfo.numdiff import finite_difference
from dfo.objective import as_objective
from dfo.scaling.costs import (
    _batch,
    _int_option,
    _progress,
    _rademacher,
    _real_option,
    _rel_error,
    _sizes_option,
    _spsa_estimate,
    network_for,
)

__all__ = ["CosineRecord", "StepErrorRecord", "fd_step_error_curve", "spsa_cosine"]


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
    """Cosine between SPSA averaged over ``q`` directions and the true gradient.

    Attributes
    ----------
    n_params, q : int
    cosine_mean, cosine_std : float
        Over ``repeats`` independent sets of directions.
    theory : float
        ``sqrt(q / (q + n - 1))``, from ``E[g_hat . g] = |g|^2`` and
        ``E|g_hat|^2 = |g|^2 (1 + (n - 1) / q)`` for Rademacher directions and exact
        directional derivatives (a large-``q`` approximation of the mean cosine; at
        ``q = 1`` the mean is about ``sqrt(2 / pi)`` times it).
    repeats : int
    """

    n_params: int
    q: int
    cosine_mean: float
    cosine_std: float
    theory: float
    repeats: int


def fd_step_error_curve(
    *,
    n_params: int = 610,
    steps: Sequence[float] | None = None,
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
    steps = np.logspace(-13, 0, 40) if steps is None else np.asarray(steps, dtype=float)
    if steps.ndim != 1 or steps.size == 0 or not np.all(np.isfinite(steps) & (steps > 0)):
        raise InvalidOptionError("steps must be a non-empty sequence of positive numbers")
    for d in dtypes:
        if d not in ("float64", "float32"):
            raise InvalidOptionError(f"dtypes must be 'float64' or 'float32'; got {d!r}")
    for s in schemes:
        if s not in ("forward", "central"):
            raise InvalidOptionError(f"schemes must be 'forward' or 'central'; got {s!r}")
    net = network_for(n_params)
    Xb, yb = _batch(batch, seed)
    obj = NetworkObjective(net, Xb, yb)
    x32 = net.init_params(np.random.default_rng(seed)).astype(np.float32)
    x64 = x32.astype(np.float64)
    _, g_ref = obj.value_and_grad(x64)
    rounded = as_objective(
        lambda T: obj.evaluate_batch(T).astype(np.float32), dim=net.n_params, batched=True
    )
    setups = {"float64": (obj, x64), "float32": (rounded, x32)}
    out = []
    for h in _progress(list(steps), "FD step error", progress):
        for dtype in dtypes:
            f, x = setups[dtype]
            for scheme in schemes:
                try:
                    res = finite_difference(f, x, scheme=scheme, h=float(h))
                except InvalidOptionError:  # h does not move some coordinate
                    continue
                err = _rel_error(res.grad, g_ref)
                out.append(StepErrorRecord(dtype, scheme, float(h), err, net.n_params))
    return out


def spsa_cosine(
    sizes: Sequence[int] = (85, 1_000, 10_000),
    qs: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    *,
    repeats: int = 3,
    batch: int = 256,
    c: float = 1e-4,
    chunk: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> list[CosineRecord]:
    """Cosine between SPSA's gradient estimate and the backprop gradient.

    SPSA perturbs all coordinates at once along random +-1 directions ``d`` and
    estimates ``g_hat = mean_j (f(x + c d_j) - f(x - c d_j)) / (2c) d_j`` from
    ``2 q`` evaluations. The estimate is unbiased but its cosine with the gradient
    is only about ``sqrt(q / (q + n - 1))``: it needs ``q ~ n`` directions, i.e.
    as many evaluations as finite differences, to point the right way.

    Parameters
    ----------
    sizes : sequence of int
        Approximate parameter counts (see :func:`network_for`).
    qs : sequence of int
        Numbers of directions averaged. One run of ``max(qs)`` directions gives all
        of them as running means.
    repeats : int, default 3
        Independent runs per size; the mean and standard deviation are reported.
    batch : int, default 256
    c : float, default 1e-4
        Perturbation size (small enough for the difference to be the directional
        derivative to many digits).
    chunk : int, default 64
        Directions evaluated per call (bounds the memory of the probe block).
    seed : int, default 0
    progress : bool, default False

    Returns
    -------
    list of CosineRecord
    """
    sizes = sorted({network_for(n).n_params for n in _sizes_option(sizes)})
    qs = sorted(set(_sizes_option(qs, "qs")))
    repeats = _int_option(repeats, "repeats")
    c = _real_option(c, "c", strict=True)
    chunk = _int_option(chunk, "chunk")
    Xb, yb = _batch(batch, seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    out = []
    for n_target in _progress(sizes, "SPSA cosine", progress):
        net = network_for(n_target)
        n = net.n_params
        obj = NetworkObjective(net, Xb, yb)
        theta = net.init_params(rng)
        _, g = obj.value_and_grad(theta)
        cos = np.empty((repeats, len(qs)))
        for r in range(repeats):
            total = np.zeros(n)
            done = 0
            for i, q in enumerate(qs):
                while done < q:
                    m = min(chunk, q - done)
                    total += _spsa_estimate(obj, theta, _rademacher(rng, m, n), c)
                    done += m
                cos[r, i] = float(total @ g / (np.linalg.norm(total) * np.linalg.norm(g)))
        for i, q in enumerate(qs):
            out.append(
                CosineRecord(
                    n,
                    q,
                    float(cos[:, i].mean()),
                    float(cos[:, i].std()),
                    math.sqrt(q / (q + n - 1)),
                    repeats,
                )
            )
    return out
