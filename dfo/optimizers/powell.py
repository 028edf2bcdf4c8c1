"""Powell's conjugate-direction method through scipy, its loop recast into ask/tell."""

from __future__ import annotations

from typing import Any

import numpy as np

from dfo.optimizers import register
from dfo.optimizers.recast import (
    RecastOptimizer,
    Request,
    stop_reasons,
)
from dfo.options import Options, RealRange, declare_options, option

__all__ = ["Powell"]


@declare_options
class PowellOptions(Options):
    """Options of :class:`Powell`."""

    xtol: float = option(1e-4, RealRange(0.0))
    ftol: float = option(1e-4, RealRange(0.0))


@register("powell")
class Powell(RecastOptimizer):
    """Powell's method (``scipy.optimize.minimize(method="Powell")``).

    Line searches (Brent's method) along a set of directions; after each sweep the
    overall displacement replaces the direction of largest decrease, so on a
    quadratic the directions become conjugate. Each ``ask`` is the one point scipy
    evaluates next; the budget is exact. Non-finite values are given to scipy as
    ``+inf`` (worst).

    Parameters
    ----------
    xtol : float, default 1e-4
        scipy's tolerance on the line-search steps.
    ftol : float, default 1e-4
        scipy's relative tolerance on the decrease of the value per sweep.
    """

    Options = PowellOptions
    TOL = ("xtol", "ftol")
    TOL_MEANING = "scipy's: the line searches' steps and the relative decrease per sweep"
    config: PowellOptions

    def _setup(self) -> None:
        super()._setup()
        self._box = None if self.box is None else self.box.to_scipy()

    def settings(self) -> dict[str, Any]:
        return {"xtol": self.config.xtol, "ftol": self.config.ftol, "bounds": self._box}

    @staticmethod
    def loop(request: Request, x0: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """scipy's Powell on ``request``; the reasons it stopped."""
        from scipy.optimize import minimize as scipy_minimize

        def fun(x: np.ndarray) -> float:
            value = float(request(x[None, :])[0][0])
            return value if np.isfinite(value) else np.inf  # worst

        bounds = settings["bounds"]
        options = {"xtol": settings["xtol"], "ftol": settings["ftol"], "maxfev": np.inf}
        res = scipy_minimize(fun, x0, method="Powell", bounds=bounds, options=options)
        return stop_reasons(res)
