"""L-BFGS-B through scipy on finite-difference or exact gradients, recast into ask/tell.

``fd-bfgs`` is scipy's default way to minimize a function without a gradient
(quasi-Newton on forward differences), with the ``n + 1`` probes of one gradient
asked as ONE batch: evaluated in parallel under an executor, and on the same
realization of a stochastic objective (common random numbers). ``backprop-bfgs``
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
) -> tuple[float, np.ndarray]:
    """``f(x)`` and its forward-difference gradient from one batch of ``n + 1`` probes.

    A probe that would leave the box ``[lower, upper]`` steps the other way (a
    backward difference for that coordinate), so no probe leaves the box.

    Parameters
    ----------
    request : callable
        ``request(X) -> (values, grads)``: evaluates the ``(n + 1, n)`` probes at once.
    x : ndarray, shape (n,)
    h : float, array_like or None
        Steps as :func:`dfo.numdiff.fd_steps` takes them.
    lower, upper : ndarray, shape (n,)
        The box (``-inf``/``inf`` where unbounded).
    dtype : str, optional
        The objective's float type: the centre is rounded to it (and kept in the
        box), so the default steps come from its epsilon and are exact in it.

    Returns
    -------
    (float, ndarray)
        The value at the centre and the gradient estimate.
    """
    require_finite(x)  # L-BFGS-B stepped to nan or inf: the values overflowed
    centre = x if dtype is None else x.astype(dtype)
    step = fd_steps(centre, h=h)
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


def _finite_or_worst(value: float, grad: np.ndarray) -> tuple[float, np.ndarray]:
    """A non-finite value or gradient is the worst value (L-BFGS-B's line search backs off)."""
    if np.isfinite(value) and np.all(np.isfinite(grad)):
        return value, grad
    return np.inf, np.zeros_like(grad)


def _lbfgsb(fun_and_grad: Any, x0: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
    """scipy's L-BFGS-B from ``x0``, started again from its end point while that helps.

    A run ends when scipy stops (tolerance met, or a line search failed on noise
    or inexact differences); with ``restarts`` the next run starts from its end
    point with an empty memory, until a run takes no step at all (or the budget
    halts the loop).
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
        if not (settings["restarts"] and res.nit > 0):
            break
        x = res.x
    reasons = stop_reasons(res)
    if runs > 1:
        key = next(iter(reasons))
        reasons[key] += f" (run {runs}: {runs - 1} restarts)"
    return reasons


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

    h: Any = option(None, Custom(_check_h, "None, a positive number or an array of them"))
    dtype: str | None = option(None, Optional(Custom(_check_dtype, "'float64' or 'float32'")))
    maxcor: int = _lbfgsb_options()["maxcor"]
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
    """L-BFGS-B on forward-difference gradients (scipy's L-BFGS-B, dfo's differences).

    Each ``ask`` is the ``n + 1`` probes ``x, x + h_i e_i`` of one gradient, as one
    batch; L-BFGS-B then builds a quasi-Newton model from the last ``maxcor``
    gradient differences and line-searches along its step, which copes with
    ill-conditioning where a fixed-step gradient descent does not. The budget is
    exact: a gradient that does not fit into it is not asked. A non-finite value
    or difference counts as the worst value (the line search backs off).

    Parameters
    ----------
    h : float or array_like, optional
        Difference step; by default ``sqrt(eps) * max(1, |x_i|)``
        (:func:`dfo.numdiff.fd_steps`). Near an upper bound the step is taken
        backwards, so no probe leaves ``bounds``.
    dtype : {"float64", "float32"}, optional
        The float type the objective computes in: the default steps come from its
        epsilon and the probes are rounded to it. :func:`dfo.minimize` passes a
        float32 objective's type.
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

    Options = FiniteDifferenceBFGSOptions
    config: FiniteDifferenceBFGSOptions

    def _setup(self) -> None:
        super()._setup()
        dtype = self.config.dtype
        fd_steps(self.x0 if dtype is None else self.x0.astype(dtype), h=self.config.h)  # bad h

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "h": self.config.h, "dtype": self.config.dtype}

    @staticmethod
    def loop(request: Request, x0: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """scipy's L-BFGS-B on batched forward differences; the reasons it stopped."""
        box = settings["bounds"]
        lower = np.full(x0.size, -np.inf) if box is None else box.lb
        upper = np.full(x0.size, np.inf) if box is None else box.ub
        dtype = settings["dtype"]

        def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = bounded_fd_gradient(request, x, settings["h"], lower, upper, dtype)
            return _finite_or_worst(value, grad)

        return _lbfgsb(fun_and_grad, x0, settings)


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
