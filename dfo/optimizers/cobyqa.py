"""COBYQA (Ragonneau & Zhang) through scipy, its loop recast into ask/tell."""

from __future__ import annotations

from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.optimizers import register
from dfo.optimizers.recast import (
    RecastOptimizer,
    Request,
    stop_reasons,
)
from dfo.options import Flag, Options, PositiveReal, RealRange, declare_options, option

__all__ = ["COBYQA"]

#: scipy's ``maxfev`` for COBYQA: never reached, the budget is enforced by ``stop()``
_NO_LIMIT = 2**62


@declare_options
class COBYQAOptions(Options):
    """Options of :class:`COBYQA`."""

    initial_tr_radius: float = option(1.0, PositiveReal())
    final_tr_radius: float = option(1e-6, RealRange(0.0))
    scale: bool = option(False, Flag())


@register("cobyqa")
class COBYQA(RecastOptimizer):
    """Constrained Optimization BY Quadratic Approximations (``method="COBYQA"``).

    A derivative-free trust-region method: a quadratic model of the objective
    interpolates values at ``2n + 1`` points, is minimized within a trust region
    of radius ``delta``, and the new point replaces one of the interpolation
    points; ``delta`` shrinks from ``initial_tr_radius`` to ``final_tr_radius``
    as the model stops predicting decrease. Powell's model-based family needs a
    few dozen evaluations on a smooth function where a population method needs
    hundreds. Each ``ask`` is the one point scipy evaluates next; the budget is
    exact. COBYQA replaces non-finite values itself (a barrier value). scipy runs
    one COBYQA at a time (a lock): a second COBYQA optimizer that starts halts the
    first, which replays its values when it goes on.

    Parameters
    ----------
    initial_tr_radius : float, default 1.0
        Starting trust-region radius: the scale of the first steps.
    final_tr_radius : float, default 1e-6
        Radius at which the method stops (its tolerance on ``x``).
    scale : bool, default False
        Scale the variables to the bounds (needs finite bounds).
    """

    exclusive = True

    Options = COBYQAOptions
    TOL = ("final_tr_radius",)
    TOL_MEANING = "scipy's: the trust-region radius at which it stops"
    config: COBYQAOptions

    def _setup(self) -> None:
        super()._setup()
        cfg = self.config
        if cfg.final_tr_radius > cfg.initial_tr_radius:
            raise InvalidOptionError(
                f"final_tr_radius must not exceed initial_tr_radius; got "
                f"{cfg.final_tr_radius!r} > {cfg.initial_tr_radius!r}"
            )
        self._box = None if self.box is None else self.box.to_scipy()
        if cfg.scale and (
            self._box is None or not np.all(np.isfinite(self._box.lb) & np.isfinite(self._box.ub))
        ):
            raise InvalidOptionError("scale=True needs finite bounds in every coordinate")

    def settings(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "bounds": self._box,
            "initial_tr_radius": cfg.initial_tr_radius,
            "final_tr_radius": cfg.final_tr_radius,
            "scale": cfg.scale,
        }

    @staticmethod
    def loop(request: Request, x0: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """scipy's COBYQA on ``request``; the reasons it stopped."""
        from scipy.optimize import minimize as scipy_minimize

        def fun(x: np.ndarray) -> float:
            return float(request(x[None, :])[0][0])

        options = {key: settings[key] for key in settings if key != "bounds"}
        options["maxfev"] = _NO_LIMIT
        res = scipy_minimize(fun, x0, method="COBYQA", bounds=settings["bounds"], options=options)
        return stop_reasons(res)
