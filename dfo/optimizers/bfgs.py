"""L-BFGS-B through scipy on finite-difference or exact gradients, recast into ask/tell.

``fd-bfgs`` is scipy's default way to minimize a function without a gradient
(quasi-Newton on forward differences, refined to central ones as the run stalls),
with the probes of one gradient asked as ONE batch: evaluated in parallel under an
executor, and on the same realization of a stochastic objective (common random
numbers). ``backprop-bfgs``
is L-BFGS-B on the objective's exact gradient.
"""

from __future__ import annotations

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
    diffs: _Differences | None = None,
) -> dict[str, Any]:
    """scipy's L-BFGS-B from ``x0``, started again from its end point while that helps.

    A run ends when scipy stops (tolerance met, or a line search failed on noise
    or inexact differences); with ``restarts`` the next run starts from its end
    point with an empty memory, until a run takes no step at all (or the budget
    halts the loop). ``diffs.refine(stalled)``, called when a run ends short of the
    gradient tolerance (``stalled``: it took no step), makes the differences finer
    and returns whether it did: then the next run starts even after no step. A run
    whose objective raises ``_Refined`` (the differences changed in the middle of a
    run) starts again from the best point.
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
        if diffs is not None:
            diffs.start()
        try:
            res = scipy_minimize(
                fun_and_grad,
                x,
                jac=True,
                method="L-BFGS-B",
                bounds=settings["bounds"],
                options=options,
                callback=None if diffs is None else diffs.accepted,
            )
        except _Refined:
            runs += 1
            x = diffs.best_x if diffs is not None else x
            continue
        runs += 1
        converged = "PGTOL" in str(res.message)  # scipy's message for the gradient test
        refined = diffs is not None and not converged and diffs.refine(res.nit == 0)
        if not (settings["restarts"] and (res.nit > 0 or refined)):
            break
        x = res.x
    reasons = stop_reasons(res)
    if runs > 1:
        key = next(iter(reasons))
        reasons[key] += f" (run {runs}: {runs - 1} restarts)"
    return reasons


class _Refined(Exception):
    """Raised from L-BFGS-B's objective: central differences from now on, start again."""


class _Differences:
    """fd-bfgs's difference scheme and steps; ``"auto"`` makes them finer as the run stalls.

    ``"auto"`` starts with forward differences at the default (or given) steps ``h``.
    L-BFGS-B's line search stalls when two values in a row that it asks for are no
    lower than the best so far. Forward differences give way to central ones (no
    ``O(h)`` bias) at a tenth of their steps only when their error is what stalled
    it (:meth:`error_explains`), or when a whole run took no step; L-BFGS-B then
    starts again from the best point, its memory emptied of forward differences. A
    stall on the function itself (a long step into a curved valley) keeps the
    forward differences, which cost half as much. Central steps shrink tenfold at
    each further stall while their rounding error ``eps |f| / h`` stays below a
    tenth of the gradient (and ``h`` above ``eps**(2/3) * max(1, |x_i|)``). Near a
    minimum a small central step beats scipy's ``eps**(1/3)``: the bias of a central
    difference grows with the third derivative, which functions that oscillate on
    small scales (bbob's ``T_osz``) make large. Kelley's implicit filtering refines
    its stencil on a line-search failure in the same way. Before the first judgement
    the best point is evaluated again: a stochastic or noisy objective, whose value
    there changes, keeps its forward differences (noise, not their bias, stalls it).
    """

    def __init__(
        self,
        scheme: str,
        h: Any,
        dtype: str | None,
        request: Request,
        box: tuple[np.ndarray, np.ndarray],
    ) -> None:
        self.auto = scheme == "auto"
        self.scheme = "forward" if self.auto else scheme
        self.h, self.dtype, self.request, self.box = h, dtype, request, box
        self.eps = float(np.finfo(dtype or np.float64).eps)
        self.factor = 1.0  # steps: factor * the forward steps
        self.best, self.best_x = np.inf, np.zeros(0)
        self.last = (np.zeros(0), np.inf, np.zeros(0))  # the last point told, f, gradient
        self.x_k, self.f_k, self.g_k = self.last  # L-BFGS-B's iterate
        self.starting = True  # a run began: its first point is its iterate
        self.fails = 0  # values in a row above the best
        self.fresh = False  # refined, and no new best since: no stall counted
        self.noisy: bool | None = None  # whether f(best_x) asked again gave another value

    def steps(self, centre: np.ndarray) -> Any:
        """The ``h`` for :func:`bounded_fd_gradient` at ``centre`` (its float type)."""
        if self.factor == 1.0:
            return self.h
        floor = self.eps ** (2 / 3) * np.maximum(1.0, np.abs(centre))
        return np.maximum(self.factor * fd_steps(centre, h=self.h), floor)

    def start(self) -> None:
        """A run of L-BFGS-B begins."""
        self.starting = True

    def accepted(self, xk: np.ndarray) -> None:
        """scipy's callback: its line search accepted the last point it asked for."""
        self.x_k, self.f_k, self.g_k = self.last

    def seen(self, x: np.ndarray, value: float, grad: np.ndarray) -> None:
        """Count the value at ``x`` L-BFGS-B was given; a stall after two above the best."""
        self.last = (x, value, grad)
        if self.starting:
            self.starting = False
            self.accepted(x)
        if value < self.best:
            self.best, self.best_x, self.fails, self.fresh = value, x, 0, False
            return
        self.fails += 1
        if self.fails == 2 and not self.fresh:
            self.fails = 0
            forward = self.scheme == "forward"
            if self.refine(stalled=False) and forward:
                raise _Refined  # caught by _lbfgsb: a new run from the best point

    def refine(self, stalled: bool) -> bool:
        """Finer differences after a stall (``"auto"`` only); whether they changed.

        ``stalled``: a run took no step at all; otherwise forward differences change
        only if their error explains the stall (:meth:`error_explains`).
        """
        if not self.auto:
            return False
        centre = self.x_k if self.dtype is None else self.x_k.astype(self.dtype)
        if self.scheme == "forward":
            if self.noisy is None:  # once: noise, not inexact differences, may stall it
                values = self.request(self.best_x[None, :])[0]
                self.noisy = bool(values[0] != self.best)
            if self.noisy or not (stalled or self.error_explains(centre)):
                return False
            self.scheme, self.factor = "central", 0.1
        else:
            smaller = 0.1 * float(np.min(fd_steps(centre, h=self.steps(centre))))
            rounding = self.eps * abs(self.f_k) / smaller
            if self.factor < self.eps ** (1 / 6) or rounding > 0.1 * np.sqrt(np.mean(self.g_k**2)):
                return False
            self.factor /= 10.0
        self.fresh = True
        return True

    def error_explains(self, centre: np.ndarray) -> bool:
        """Whether the differences' error, not the function, stalled the line search.

        L-BFGS-B searched from its iterate ``x_k`` along ``d = last_x - x_k``, a descent
        direction by the difference gradient ``g`` at ``x_k`` (predicted slope
        ``g @ d < 0``). The slope along ``d`` is measured again by the second-order
        one-sided difference ``(4 f(x_k + t u) - f(x_k + 2 t u) - 3 f(x_k)) / (2 t)``,
        ``u = d / |d|``, ``t`` the largest current step: 2 evaluations on the segment
        to ``last_x`` (so inside the box), one rounding error instead of ``n`` and,
        beside a forward difference, no ``O(h)`` bias. The stall is the differences'
        fault when along ``d`` the function falls at less than a tenth of the
        predicted rate; otherwise ``d`` descends, and finer differences would not help.
        """
        d = self.last[0] - self.x_k
        length = float(np.linalg.norm(d))
        if length == 0.0:
            return True  # no failed trial to judge by
        t = min(0.5 * length, float(np.max(fd_steps(centre, h=self.steps(centre)))))
        u = d / length
        f1, f2 = self.request(self.x_k + np.outer([t, 2.0 * t], u))[0]
        slope = (4.0 * f1 - f2 - 3.0 * self.f_k) / (2.0 * t)
        return bool(np.isfinite(slope) and slope * length > 0.1 * (self.g_k @ d))


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
        bias). ``"auto"``: forward differences until their error is what stalls
        L-BFGS-B's line search (the slope along the search direction measured again,
        2 evaluations, falls short of the predicted one) or a run takes no step, then
        central differences at a tenth of the forward steps from the best point, ten
        times smaller at each further stall while their rounding error stays below a
        tenth of the gradient. On bbob (f1, f2, f8, f10, f11, f12, f14 at d=10 and
        d=20, ``1000 * d`` evaluations) ``"auto"`` ends no higher than ``"forward"``
        on any instance measured, and only ``"auto"`` reaches 1e-8 on f10 and f11
        (``benchmarks/bench_bfgs.py --bbob``).
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
        diffs = _Differences(settings["scheme"], settings["h"], dtype, request, (lower, upper))

        def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            centre = x if dtype is None else x.astype(dtype)
            found = bounded_fd_gradient(
                request, x, diffs.steps(centre), lower, upper, dtype, diffs.scheme
            )
            value, grad = _finite_or_worst(*found)
            diffs.seen(np.clip(centre.astype(np.float64), lower, upper), value, grad)  # X[0]
            return value, grad

        return _lbfgsb(fun_and_grad, x0, settings, diffs)


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
