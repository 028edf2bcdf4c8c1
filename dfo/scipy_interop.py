"""dfo's methods inside :func:`scipy.optimize.minimize`: :func:`scipy_method`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from dfo.exceptions import InvalidOptionError
from dfo.objective import Objective, to_scalar
from dfo.optimizers import get_method

__all__ = ["scipy_method"]

#: scipy's option names and the dfo.minimize arguments they become
_SCIPY_NAMES = {"maxfev": "budget", "maxiter": "max_iter"}


class _ValueAndGrad(Objective):
    """``fun(x) -> (f, g)`` (scipy's ``jac=True``): one call gives both."""

    has_gradient = True

    def __init__(self, fun: Callable[..., Any], dim: int, args: tuple[Any, ...]) -> None:
        super().__init__(dim)
        self.fun, self.args = fun, args

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        return np.array([to_scalar(self.fun(x, *self.args)[0]) for x in X])

    def _value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = self.fun(x, *self.args)
        return to_scalar(value), np.asarray(grad, dtype=np.float64)


def _objective(fun: Callable[..., Any], dim: int, args: tuple[Any, ...], jac: Any) -> Objective:
    from dfo.objective import as_objective

    if jac is True:
        return _ValueAndGrad(fun, dim, args)
    if callable(jac):
        return as_objective(lambda x: fun(x, *args), dim=dim, grad=lambda x: jac(x, *args))
    if jac not in (None, False):
        raise InvalidOptionError(
            f"jac must be None, True (fun returns value and gradient) or a callable with "
            f"dfo's methods; got {jac!r} (dfo estimates gradients itself: fd-sgd, spsa)"
        )
    return as_objective(lambda x: fun(x, *args), dim=dim)


def scipy_method(name: str) -> Callable[..., OptimizeResult]:
    """A dfo method as a custom ``method=`` of :func:`scipy.optimize.minimize`.

    ``scipy.optimize.minimize(f, x0, method=dfo.scipy_method("cma-es"),
    options={"budget": 5000, "seed": 0})`` runs :func:`dfo.minimize` with that
    method and returns a :class:`scipy.optimize.OptimizeResult` holding scipy's
    fields (``x``, ``fun``, ``nfev``, ``njev``, ``nit``, ``success``, ``status``,
    ``message``) and every field of :class:`dfo.Result`.

    ``options`` are :func:`dfo.minimize`'s (``budget``, ``seed``, ``max_time``,
    ``history_x``, ...) and the method's own; scipy's ``maxfev`` and ``maxiter``
    mean ``budget`` and ``max_iter``. ``args`` are passed to ``fun``; ``jac``
    (a callable, or True when ``fun`` returns the value and the gradient) serves
    the gradient methods; ``bounds`` go to the method; ``callback`` follows
    scipy's convention (``callback(intermediate_result)`` or ``callback(xk)``).

    Parameters
    ----------
    name : str
        A name from :func:`dfo.methods`.

    Returns
    -------
    callable
        ``method(fun, x0, args=(), jac=None, hess=None, hessp=None, bounds=None,
        constraints=(), callback=None, **options) -> OptimizeResult``, the
        signature scipy calls a custom method with.

    Raises
    ------
    InvalidOptionError
        For an unknown method name (at once), and, when scipy calls the method,
        for constraints, Hessians or an option the method does not know.

    Examples
    --------
    >>> import numpy as np, scipy.optimize, dfo
    >>> res = scipy.optimize.minimize(scipy.optimize.rosen, np.zeros(3),
    ...                               method=dfo.scipy_method("cma-es"),
    ...                               options={"budget": 3000, "seed": 0})
    >>> type(res).__name__, bool(res.fun < 1e-6), res.nfev <= 3000
    ('OptimizeResult', True, True)
    """
    get_method(name)  # an unknown name fails here, not inside scipy

    def method(
        fun: Callable[..., Any],
        x0: Any,
        args: tuple[Any, ...] = (),
        jac: Any = None,
        hess: Any = None,
        hessp: Any = None,
        bounds: Any = None,
        constraints: Any = (),
        callback: Callable[..., Any] | None = None,
        **options: Any,
    ) -> OptimizeResult:
        from dfo.run.minimize import minimize

        if constraints is not None and (
            not isinstance(constraints, dict | list | tuple) or len(constraints) > 0
        ):
            raise InvalidOptionError(
                f"dfo's {name!r} takes no constraints (only bounds); got {constraints!r}"
            )
        if hess is not None or hessp is not None:
            raise InvalidOptionError(f"dfo's {name!r} uses no Hessian; pass hess=None")
        for scipy_name, dfo_name in _SCIPY_NAMES.items():
            if scipy_name in options:
                if dfo_name in options:
                    raise InvalidOptionError(
                        f"options give both {scipy_name!r} and {dfo_name!r}, which mean "
                        "the same; give one"
                    )
                options[dfo_name] = options.pop(scipy_name)
        x0 = np.asarray(x0, dtype=np.float64)
        args = args if isinstance(args, tuple) else (args,)
        objective = _objective(fun, x0.size, args, jac)
        if bounds is not None:
            options["bounds"] = bounds
        res = minimize(objective, x0, name, callback=callback, **options)
        out = OptimizeResult(res)
        out.njev = res.ngev  # scipy's name for gradient evaluations
        return out

    method.__name__ = method.__qualname__ = f"dfo_{name.replace('-', '_')}"
    method.__doc__ = f"dfo's {name!r} method for scipy.optimize.minimize (dfo.scipy_method)."
    return method
