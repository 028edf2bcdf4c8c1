"""Nelder-Mead through scipy: a closed loop on the same counted objective."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.optimizers import register
from dfo.optimizers.base import ClosedLoopOptimizer

__all__ = ["ADAPTIVE_ABOVE", "NelderMead"]

#: above this dimension ``adaptive="auto"`` uses Gao & Han's dimension-dependent parameters
ADAPTIVE_ABOVE = 5


@register("nelder-mead")
class NelderMead(ClosedLoopOptimizer):
    """The Nelder-Mead simplex method (``scipy.optimize.minimize(method="Nelder-Mead")``).

    scipy drives the loop, so there is no ask/tell; :func:`dfo.minimize` hands it
    the counted objective and passes the budget as ``maxfev`` (the counter enforces
    it as well). Non-finite values are given to scipy as ``+inf`` (worst).

    Parameters
    ----------
    simplex_scale : float, optional
        Edge length of the initial simplex ``x0 + simplex_scale * e_i``; by default
        scipy's (5% of each non-zero coordinate, 0.00025 for zeros).
    adaptive : bool or "auto", default "auto"
        Gao & Han's (2012) dimension-dependent parameters, chosen above
        :data:`ADAPTIVE_ABOVE` dimensions by ``"auto"``.
    xatol, fatol : float, default 1e-8
        scipy's convergence tolerances on the simplex and its values.
    """

    def __init__(
        self,
        x0: Any,
        *,
        seed: int | None = None,
        budget: int | None = None,
        simplex_scale: float | None = None,
        adaptive: bool | str = "auto",
        xatol: float = 1e-8,
        fatol: float = 1e-8,
    ) -> None:
        super().__init__(x0, seed=seed, budget=budget)
        if simplex_scale is not None and (
            isinstance(simplex_scale, bool)
            or not isinstance(simplex_scale, int | float)
            or not 0 < simplex_scale < np.inf
        ):
            raise InvalidOptionError(
                f"simplex_scale must be a positive number or None; got {simplex_scale!r}"
            )
        if adaptive == "auto":
            adaptive = self.dim > ADAPTIVE_ABOVE
        elif not isinstance(adaptive, bool):
            raise InvalidOptionError(f"adaptive must be True, False or 'auto'; got {adaptive!r}")
        for name, value in (("xatol", xatol), ("fatol", fatol)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InvalidOptionError(f"{name} must be a number >= 0; got {value!r}")
        self.simplex_scale = simplex_scale
        self.adaptive = adaptive
        self.xatol, self.fatol = float(xatol), float(fatol)

    def run(
        self, fun: Callable[[np.ndarray], float], callback: Callable[[np.ndarray], None]
    ) -> dict[str, Any]:
        """Run scipy's Nelder-Mead; return the stop reasons."""
        from scipy.optimize import minimize as scipy_minimize

        caller_errstate = np.geterr()

        def counted(x: np.ndarray) -> float:
            with np.errstate(**caller_errstate):  # the objective runs as the caller set it
                value = fun(x)
            return value if np.isfinite(value) else np.inf

        def on_iteration(xk: np.ndarray) -> None:
            self.last_value = self.best_f
            callback(xk)

        options: dict[str, Any] = {
            "maxfev": self.budget if self.budget is not None else np.inf,
            "maxiter": np.inf,
            "adaptive": self.adaptive,
            "xatol": self.xatol,
            "fatol": self.fatol,
        }
        if self.simplex_scale is not None:
            options["initial_simplex"] = np.vstack(
                [self.x0, self.x0 + self.simplex_scale * np.eye(self.dim)]
            )
        # scipy compares values with subtraction: inf - inf would warn
        with np.errstate(invalid="ignore", over="ignore"):
            res = scipy_minimize(
                counted, self.x0, method="Nelder-Mead", callback=on_iteration, options=options
            )
        if res.status == 0:
            return {"converged": "simplex converged (xatol and fatol met)"}
        return {}

    def options(self) -> dict[str, Any]:
        return {
            "simplex_scale": self.simplex_scale,
            "adaptive": self.adaptive,
            "xatol": self.xatol,
            "fatol": self.fatol,
        }
