"""L-BFGS-B through scipy on finite-difference or exact gradients, recast into ask/tell.

``fd-bfgs`` is scipy's default way to minimize a function without a gradient
(quasi-Newton on forward differences, refined to central ones as the run stalls),
with the probes of one gradient asked as ONE batch: evaluated in parallel under an
executor, and on the same realization of a stochastic objective (common random
numbers). ``backprop-bfgs``
is L-BFGS-B on the objective's exact gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.numdiff import fd_gradient, fd_probes, fd_steps
from dfo.objective import check_dtype
from dfo.optimizers import register
from dfo.optimizers.recast import (
    RecastOptimizer,
    Request,
    require_finite,
    stop_reasons,
)
from dfo.options import (
    Choice,
    Custom,
    Flag,
    Optional,
    Options,
    PositiveInt,
    RealRange,
    declare_options,
    option,
)

__all__ = ["BackpropBFGS", "FiniteDifferenceBFGS", "bounded_fd_gradient"]

#: scipy's maxfun and maxiter: never reached, the budget is enforced by ``stop()``
_NO_LIMIT = 2**31 - 1


def bounded_fd_gradient(
    request: Request,
    x: np.ndarray,
    h: Any,
    lower: np.ndarray,
    upper: np.ndarray,
    dtype: str | None = None,
    scheme: str = "forward",
) -> tuple[float, np.ndarray]:
    """``f(x)`` and its difference gradient from one batch of probes inside a box.

    Forward: the ``n + 1`` probes ``x, x + h_i e_i``; a probe that would leave the
    box ``[lower, upper]`` steps the other way (a backward difference for that
    coordinate). Central: the ``2 n + 1`` probes ``x, x + h_i e_i, x - h_i e_i``
    (``f(x)`` is what L-BFGS-B needs beside the gradient); where one of them would
    leave the box, the coordinate takes the one-sided second-order difference
    ``(4 f(x + a) - f(x + 2a) - 3 f(x)) / (2a)`` into the box instead (scipy's
    ``3-point`` convention), its step shrunk if the box is narrower than ``2a``.
    No probe leaves the box.

    Parameters
    ----------
    request : callable
        ``request(X) -> (values, grads)``: evaluates the probes at once.
    x : ndarray, shape (n,)
    h : float, array_like or None
        Steps as :func:`dfo.numdiff.fd_steps` takes them (its defaults per scheme).
    lower, upper : ndarray, shape (n,)
        The box (``-inf``/``inf`` where unbounded).
    dtype : str, optional
        The objective's float type: the centre is rounded to it (and kept in the
        box), so the default steps come from its epsilon and are exact in it.
    scheme : {"forward", "central"}, default "forward"

    Returns
    -------
    (float, ndarray)
        The value at the centre and the gradient estimate.
    """
    require_finite(x)  # L-BFGS-B stepped to nan or inf: the values overflowed
    centre = x if dtype is None else x.astype(dtype)
    step = fd_steps(centre, scheme=scheme, h=h)
    if scheme == "central":
        return _bounded_central(request, centre, step, lower, upper)
    X = fd_probes(centre, step)
    X[0] = np.clip(X[0], lower, upper)
    i = np.arange(x.size)
    forward = X[1 + i, i]
    probe = np.where(forward > upper, (centre - step).astype(np.float64), forward)
    X[1:] = X[0]
    X[1 + i, i] = np.clip(probe, lower, upper)
    step = X[1 + i, i] - X[0]  # negative: a backward difference
    values = request(X)[0]
    return float(values[0]), fd_gradient(values, step)


def _bounded_central(
    request: Request, centre: np.ndarray, step: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[float, np.ndarray]:
    """The central (or, at a bound, one-sided second-order) part of :func:`bounded_fd_gradient`."""
    c = np.clip(centre.astype(np.float64), lower, upper)
    h = step.astype(np.float64)
    room_up, room_down = upper - c, c - lower
    central = (room_up >= h) & (room_down >= h)
    up = room_up >= room_down  # a one-sided difference goes where there is more room
    a = np.where(central | up, 1.0, -1.0) * np.where(
        central, h, np.minimum(h, 0.5 * np.maximum(room_up, room_down))
    )
    second = np.where(central, -a, 2.0 * a)  # the other probe's offset
    n = c.size
    i = np.arange(n)
    X = np.repeat(c[None, :], 2 * n + 1, axis=0)
    X[1 + i, i] = np.clip((c + a).astype(centre.dtype), lower, upper)
    X[1 + n + i, i] = np.clip((c + second).astype(centre.dtype), lower, upper)
    d1, d2 = X[1 + i, i] - c, X[1 + n + i, i] - c  # the distances the probes really moved
    values = request(X)[0]
    f0, f1, f2 = values[0], values[1 : n + 1], values[n + 1 :]
    # the slope at c of the parabola through (0, f0), (d1, f1), (d2, f2): central is
    # (f1 - f2) / (2h), one-sided (4 f1 - f2 - 3 f0) / (2a); exact on quadratics
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = (f1 * d2**2 - f2 * d1**2 - f0 * (d2**2 - d1**2)) / (d1 * d2 * (d2 - d1))
    grad[d1 == 0] = 0.0  # a fixed variable (lower == upper)
    return float(f0), grad


def _finite_or_worst(value: float, grad: np.ndarray) -> tuple[float, np.ndarray]:
    """A non-finite value or gradient is the worst value (L-BFGS-B's line search backs off)."""
    if np.isfinite(value) and np.all(np.isfinite(grad)):
        return value, grad
    return np.inf, np.zeros_like(grad)


def _lbfgsb(
    fun_and_grad: Any,
    x0: np.ndarray,
    settings: dict[str, Any],
    refine: Callable[[bool], bool] | None = None,
) -> dict[str, Any]:
    """scipy's L-BFGS-B from ``x0``, started again from its end point while that helps.

    A run ends when scipy stops (tolerance met, or a line search failed on noise
    or inexact differences); with ``restarts`` the next run starts from its end
    point with an empty memory, until a run takes no step at all (or the budget
    halts the loop). ``refine(stalled)``, called when a run ends short of the
    gradient tolerance (``stalled``: it took no step), makes the differences finer
    and returns whether it did: then the next run starts even after no step.
    """
    from scipy.optimize import minimize as scipy_minimize

    options = {
        "maxcor": settings["maxcor"],
        "ftol": settings["ftol"],
        "gtol": settings["gtol"],
        "maxfun": _NO_LIMIT,
        "maxiter": _NO_LIMIT,
    }
    x, runs = x0, 0
    while True:
        res = scipy_minimize(
            fun_and_grad,
            x,
            jac=True,
            method="L-BFGS-B",
            bounds=settings["bounds"],
            options=options,
        )
        runs += 1
        converged = "PGTOL" in str(res.message)  # scipy's message for the gradient test
        refined = refine is not None and not converged and refine(res.nit == 0)
        if not (settings["restarts"] and (res.nit > 0 or refined)):
            break
        x = res.x
    reasons = stop_reasons(res)
    if runs > 1:
        key = next(iter(reasons))
        reasons[key] += f" (run {runs}: {runs - 1} restarts)"
    return reasons


class _Differences:
    """fd-bfgs's difference scheme and steps; ``"auto"`` makes them finer as the run stalls.

    ``"auto"`` starts with forward differences at the default (or given) steps ``h``.
    When two values in a row that L-BFGS-B asks for are no lower than the best so far
    (its line search is failing: the difference is too inexact to give a descent
    direction), or a run ends short of the gradient tolerance, the differences are
    refined: first central differences (no ``O(h)`` bias) at a tenth of the forward
    steps, then steps ten times smaller each time (at the end of a run: if it took no
    step), down to ``eps**(2/3) * max(1, |x_i|)``, where rounding error takes over.
    Near a minimum a small central step beats scipy's ``eps**(1/3)``: the bias of a
    central difference grows with the third derivative, which functions that oscillate
    on small scales (bbob's ``T_osz``) make large, while rounding error only adds noise
    that the line search rejects. Kelley's implicit filtering refines its difference
    stencil on a line-search failure in the same way. Before the first refinement the
    best point is evaluated again: a stochastic or noisy objective, whose value there
    changes, keeps its forward differences (noise, not their bias, stalls it).
    """

    def __init__(self, scheme: str, h: Any, dtype: str | None, request: Request) -> None:
        self.auto = scheme == "auto"
        self.scheme = "forward" if self.auto else scheme
        self.h = h
        self.eps = float(np.finfo(dtype or np.float64).eps)
        self.request = request
        self.factor = 1.0  # steps: factor * the forward steps
        self.best, self.best_x = np.inf, np.zeros(0)
        self.fails = 0
        self.noisy: bool | None = None  # whether f(best_x) asked again gave another value

    def steps(self, centre: np.ndarray) -> Any:
        """The ``h`` for :func:`bounded_fd_gradient` at ``centre`` (its float type)."""
        if self.factor == 1.0:
            return self.h
        floor = self.eps ** (2 / 3) * np.maximum(1.0, np.abs(centre))
        return np.maximum(self.factor * fd_steps(centre, h=self.h), floor)

    def seen(self, x: np.ndarray, value: float) -> None:
        """Count the value at ``x`` L-BFGS-B was given; refine after two above the best."""
        if value < self.best:
            self.best, self.best_x, self.fails = value, x, 0
            return
        self.fails += 1
        if self.fails == 2:
            self.fails = 0
            self.refine()

    def refine(self, stalled: bool = True) -> bool:
        """Finer differences (``"auto"`` only; smaller steps only if ``stalled``)."""
        if not self.auto:
            return False
        if self.scheme == "forward":
            if self.noisy is None:  # once: noise, not inexact differences, may stall it
                values = self.request(self.best_x[None, :])[0]
                self.noisy = bool(values[0] != self.best)
            if self.noisy:
                return False
            self.scheme, self.factor = "central", 0.1
            return True
        if not stalled or self.factor < self.eps ** (1 / 6):  # sqrt(eps) * factor <= floor
            return False
        self.factor /= 10.0
        return True


def _lbfgsb_options() -> dict[str, Any]:
    """The options both L-BFGS-B methods declare (fields of their ``Options``)."""
    return {
        "maxcor": option(10, PositiveInt()),
        "ftol": option(0.0, RealRange(0.0)),
        "gtol": option(1e-5, RealRange(0.0)),
        "restarts": option(True, Flag()),
    }


def _check_h(name: str, value: Any) -> Any:
    if isinstance(value, str):
        raise InvalidOptionError(f"h must be a positive number, an array or None; got {value!r}")
    return value  # a number or an array of shape (n,): fd_steps checks it against x0


def _check_dtype(name: str, value: Any) -> str:
    return check_dtype(value).name


@declare_options
class FiniteDifferenceBFGSOptions(Options):
    """Options of :class:`FiniteDifferenceBFGS`."""

    scheme: str = option("auto", Choice("auto", "forward", "central"))
    h: Any = option(None, Custom(_check_h, "None, a positive number or an array of them"))
    dtype: str | None = option(None, Optional(Custom(_check_dtype, "'float64' or 'float32'")))
    maxcor: int = option(20, PositiveInt())
    ftol: float = _lbfgsb_options()["ftol"]
    gtol: float = _lbfgsb_options()["gtol"]
    restarts: bool = _lbfgsb_options()["restarts"]


@declare_options
class BackpropBFGSOptions(Options):
    """Options of :class:`BackpropBFGS`."""

    maxcor: int = _lbfgsb_options()["maxcor"]
    ftol: float = _lbfgsb_options()["ftol"]
    gtol: float = _lbfgsb_options()["gtol"]
    restarts: bool = _lbfgsb_options()["restarts"]


class _LBFGSB(RecastOptimizer):
    """What the two L-BFGS-B methods share: scipy's settings from the options."""

    TOL = ("ftol", "gtol")
    TOL_FIXED = {"restarts": False}  # noqa: RUF012 - read only
    TOL_MEANING = (
        "scipy's: the relative decrease per iteration and the projected gradient (no restarts)"
    )

    def _setup(self) -> None:
        super()._setup()
        self._box = None if self.box is None else self.box.to_scipy()

    def settings(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "maxcor": cfg.maxcor,  # type: ignore[attr-defined]
            "ftol": cfg.ftol,  # type: ignore[attr-defined]
            "gtol": cfg.gtol,  # type: ignore[attr-defined]
            "restarts": cfg.restarts,  # type: ignore[attr-defined]
            "bounds": self._box,
        }


@register("fd-bfgs")
class FiniteDifferenceBFGS(_LBFGSB):
    """L-BFGS-B on difference gradients (scipy's L-BFGS-B, dfo's differences).

    Each ``ask`` is the probes of one gradient as one batch (``n + 1`` forward,
    ``2 n + 1`` central: ``f(x)`` and ``x +- h_i e_i``); L-BFGS-B then builds a
    quasi-Newton model from the last ``maxcor`` gradient differences and
    line-searches along its step, which copes with
    ill-conditioning where a fixed-step gradient descent does not. The budget is
    exact: a gradient that does not fit into it is not asked. A non-finite value
    or difference counts as the worst value (the line search backs off).

    Parameters
    ----------
    scheme : {"auto", "forward", "central"}, default "auto"
        ``"forward"``: forward differences throughout. ``"central"``: central
        differences throughout (scipy's ``3-point``; twice the evaluations, no ``O(h)``
        bias). ``"auto"``: forward differences until L-BFGS-B stops making progress
        with them (two values in a row above the best, or a run that ends short of
        ``gtol``), then central differences at a tenth of the forward steps, ten times
        smaller at each further stall down to ``eps**(2/3) * max(1, |x_i|)``; the
        restart after a run goes on from its end point with the differences refined.
        On bbob f2 and f10 (d=10) only ``"auto"`` reaches 1e-8 within ``1000 * d``
        evaluations (``benchmarks/bench_bfgs.py``).
    h : float or array_like, optional
        Difference step; by default ``sqrt(eps) * max(1, |x_i|)`` (forward and
        ``"auto"``) or ``eps**(1/3) * max(1, |x_i|)`` (central), eps of ``dtype``
        (:func:`dfo.numdiff.fd_steps`). Near a bound a forward step is taken
        backwards and a central difference becomes one-sided (second order) into the
        box, so no probe leaves ``bounds``.
    dtype : {"float64", "float32"}, optional
        The float type the objective computes in: the default steps come from its
        epsilon and the probes are rounded to it. :func:`dfo.minimize` passes a
        float32 objective's type.
    maxcor : int, default 20
        Number of gradient differences in L-BFGS-B's model (scipy's default is 10: a
        difference gradient costs ``n + 1`` evaluations, the model's memory nothing
        beside it; with 10, L-BFGS-B needs about three times as many gradients on an
        ill-conditioned function such as bbob f10).
    ftol : float, default 0.0
        Stop when the relative decrease of the value over an iteration is at most
        ``ftol`` (scipy's default is 2.22e-9; 0 goes on while the value decreases at
        all, which is what a budget asks for: on the ill-conditioned bbob f2 scipy's
        default stops at a precision of 1e-2).
    gtol : float, default 1e-5
        Stop when the largest projected gradient component is below it.
    restarts : bool, default True
        When scipy stops with budget left, start L-BFGS-B again from its end point
        (an empty memory), as long as the last run took a step or the differences were
        refined: a line search that failed on noise (minibatches) or on inexact
        differences does not end the run; a converged one ends it after one more
        gradient.
    """

    Options = FiniteDifferenceBFGSOptions
    config: FiniteDifferenceBFGSOptions

    def _setup(self) -> None:
        super()._setup()
        dtype = self.config.dtype
        fd_steps(self.x0 if dtype is None else self.x0.astype(dtype), h=self.config.h)  # bad h

    def settings(self) -> dict[str, Any]:
        cfg = self.config
        return {**super().settings(), "scheme": cfg.scheme, "h": cfg.h, "dtype": cfg.dtype}

    @staticmethod
    def loop(request: Request, x0: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """scipy's L-BFGS-B on batched differences; the reasons it stopped."""
        box = settings["bounds"]
        lower = np.full(x0.size, -np.inf) if box is None else box.lb
        upper = np.full(x0.size, np.inf) if box is None else box.ub
        dtype = settings["dtype"]
        diffs = _Differences(settings["scheme"], settings["h"], dtype, request)

        def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            centre = x if dtype is None else x.astype(dtype)
            found = bounded_fd_gradient(
                request, x, diffs.steps(centre), lower, upper, dtype, diffs.scheme
            )
            value, grad = _finite_or_worst(*found)
            diffs.seen(np.clip(centre.astype(np.float64), lower, upper), value)  # X[0]
            return value, grad

        return _lbfgsb(fun_and_grad, x0, settings, diffs.refine)


@register("backprop-bfgs")
class BackpropBFGS(_LBFGSB):
    """L-BFGS-B on the objective's exact gradient (``needs_gradient``).

    Each ``ask`` is one point, told with its value and gradient. Options as for
    :class:`FiniteDifferenceBFGS` (without ``h``).

    Parameters
    ----------
    maxcor : int, default 10
        Number of gradient differences in L-BFGS-B's model.
    ftol : float, default 0.0
        Stop when the relative decrease of the value over an iteration is at most
        ``ftol`` (scipy's default is 2.22e-9; 0 goes on while the value decreases at
        all, which is what a budget asks for: on the ill-conditioned bbob f2 scipy's
        default stops at a precision of 1e-2).
    gtol : float, default 1e-5
        Stop when the largest projected gradient component is below it.
    restarts : bool, default True
        When scipy stops with budget left, start L-BFGS-B again from its end point
        (an empty memory), as long as the last run took a step: a line search that
        failed on noise (minibatches) or on inexact differences does not end the
        run; a converged one ends it after one more gradient.
    """

    needs_gradient = True
    Options = BackpropBFGSOptions
    config: BackpropBFGSOptions

    @staticmethod
    def loop(request: Request, x0: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """scipy's L-BFGS-B on exact gradients; the reasons it stopped."""

        def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            values, grads = request(x[None, :])
            assert grads is not None
            return _finite_or_worst(float(values[0]), grads[0])

        return _lbfgsb(fun_and_grad, x0, settings)
