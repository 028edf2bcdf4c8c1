"""Nelder-Mead through scipy, its loop recast into ask/tell."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dfo.optimizers import register
from dfo.optimizers.recast import RecastOptimizer, Request
from dfo.options import (
    Choice,
    Either,
    Flag,
    Optional,
    Options,
    PositiveReal,
    RealRange,
    declare_options,
    option,
)

__all__ = ["ADAPTIVE_ABOVE", "NelderMead"]

#: above this dimension ``adaptive="auto"`` uses Gao & Han's dimension-dependent parameters
ADAPTIVE_ABOVE = 5


@declare_options
class NelderMeadOptions(Options):
    """Options of :class:`NelderMead`."""

    simplex_scale: float | None = option(None, Optional(PositiveReal()))
    adaptive: bool | str = option("auto", Either(Flag(), Choice("auto")))
    xatol: float = option(1e-8, RealRange(0.0))
    fatol: float = option(1e-8, RealRange(0.0))


@register("nelder-mead")
class NelderMead(RecastOptimizer):
    """The Nelder-Mead simplex method (``scipy.optimize.minimize(method="Nelder-Mead")``).

    scipy's loop runs recast into ask/tell (:mod:`dfo.optimizers.recast`): each
    ``ask`` is the one point scipy evaluates next, so the points are scipy's own,
    one by one. The budget is exact (``stop()`` names it before the point that
    would exceed it). Non-finite values are given to scipy as ``+inf`` (worst).

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

    Options = NelderMeadOptions
    TOL = ("xatol", "fatol")
    TOL_MEANING = "scipy's: the simplex's size and the spread of its values (as scipy's tol)"
    config: NelderMeadOptions

    def _setup(self) -> None:
        super()._setup()
        cfg = self.config
        self.simplex_scale = cfg.simplex_scale
        self.adaptive = self.dim > ADAPTIVE_ABOVE if cfg.adaptive == "auto" else cfg.adaptive
        self.xatol, self.fatol = cfg.xatol, cfg.fatol

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "maxfev": np.inf,  # the budget is enforced by stop(), exactly
            "maxiter": np.inf,
            "adaptive": self.adaptive,
            "xatol": self.xatol,
            "fatol": self.fatol,
        }
        if self.simplex_scale is not None:
            settings["initial_simplex"] = _simplex(self.x0, self.simplex_scale)
        if self.box is not None:  # scipy clips every point of the simplex into the box
            settings["bounds"] = self.box.pairs()
        return settings

    @staticmethod
    def loop(request: Request, x0: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """scipy's Nelder-Mead on ``request``; the reasons it stopped."""
        from scipy.optimize import minimize as scipy_minimize

        def fun(x: np.ndarray) -> float:
            value = float(request(x[None, :])[0][0])
            return value if math.isfinite(value) else np.inf  # worst

        settings = dict(settings)
        bounds = settings.pop("bounds", None)
        res = scipy_minimize(fun, x0, method="Nelder-Mead", bounds=bounds, options=settings)
        if res.status == 0:
            return {"converged": "simplex converged (xatol and fatol met)"}
        return {"stopped": str(res.message)}  # pragma: no cover - maxfev, maxiter are inf

    def _resolved_options(self) -> dict[str, Any]:
        return {"adaptive": self.adaptive}


def _simplex(x0: np.ndarray, scale: float) -> np.ndarray:
    """The simplex ``x0, x0 + scale * e_1, ..., x0 + scale * e_n``, shape ``(n + 1, n)``.

    The numbers of ``np.vstack([x0, x0 + scale * np.eye(n)])`` (off the diagonal
    ``x0 + 0.0``, so a ``-0.0`` becomes ``0.0`` as there), written once into one array
    instead of through an ``n x n`` identity, its product and a copy (50 ms at n = 1210).
    """
    n = x0.size
    simplex = np.empty((n + 1, n))
    simplex[0] = x0
    np.add(x0, 0.0, out=simplex[1:])
    np.fill_diagonal(simplex[1:], x0 + scale)
    return simplex
