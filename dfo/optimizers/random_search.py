"""Random search: the baseline every method should beat."""

from __future__ import annotations

from typing import Any

import numpy as np

from dfo.limits import check_rows
from dfo.optimizers import register
from dfo.optimizers.base import Optimizer
from dfo.options import (
    BOUNDS,
    Optional,
    Options,
    PositiveInt,
    PositiveReal,
    RealRange,
    declare_options,
    option,
)

__all__ = ["RandomSearch"]

_FLOAT_MAX = float(np.finfo(np.float64).max)
#: no standard normal draw of numpy exceeds this (the tail beyond it is below 1e-300)
_NORMAL_MAX = 40.0
#: from this dimension on, the candidates are drawn a row at a time and handed out
#: without a copy (one population matrix, not two); a row that becomes the best is
#: drawn again from its generator state (below it, copying the matrix is cheaper)
REBUILD_MIN_DIM = 4096


@declare_options
class RandomSearchOptions(Options):
    """Options of :class:`RandomSearch`."""

    sigma: float = option(0.1, PositiveReal())
    popsize: int | None = option(None, Optional(PositiveInt()))
    bounds: Any = option(None, BOUNDS)
    ftol: float | None = option(None, Optional(RealRange(0.0)))


@register("random-search")
class RandomSearch(Optimizer):
    """Random search around the best point so far, or uniform inside bounds.

    Without bounds, each iteration draws ``popsize`` Gaussian perturbations of
    standard deviation ``sigma`` around the best point found so far. In a finite
    box, candidates are uniform in the box; in a box unbounded somewhere, the
    Gaussian candidates are reflected into it at its bounds.

    Parameters
    ----------
    sigma : float, default 0.1
        Standard deviation of the perturbations.
    popsize : int, optional
        Candidates per iteration; default ``4 + floor(3 ln n)``.
    bounds : optional
        Any form :func:`dfo.bounds.parse_bounds` reads (as ``bounds=`` of
        :func:`dfo.minimize`).
    ftol : float, optional
        Stop (reason ``"ftol"``) once the best value has improved by less than
        ``ftol * (1 + |best|)`` over the last ``max(10, 2 n)`` iterations; what
        ``tol=`` sets.
    """

    Options = RandomSearchOptions
    TOL = ("ftol",)
    TOL_MEANING = (
        "the best value improved by less than ``tol * (1 + |best|)`` over the last "
        "``max(10, 2 n)`` iterations"
    )
    config: RandomSearchOptions

    def _setup(self) -> None:
        cfg = self.config
        self.popsize = 4 + int(3 * np.log(self.dim)) if cfg.popsize is None else cfg.popsize
        if cfg.popsize is not None:
            check_rows("popsize", cfg.popsize, self.dim, budget=self.budget)
        finite = self.box is not None and self.box.finite  # uniform inside a finite box
        self.lower = self.box.lower if finite and self.box is not None else None
        self.upper = self.box.upper if finite and self.box is not None else None
        self.first = True  # the first iteration: x0 is a candidate
        self._states: list[dict[str, Any]] = []  # the generator state of each row asked
        self._near_max = False
        self.mark = (0, np.inf)  # (iteration, best value) of the last real improvement
        self._wide = False
        if self.lower is not None and self.upper is not None:
            with np.errstate(over="ignore"):
                self._wide = not np.isfinite(self.upper - self.lower).all()

    def _ask(self) -> np.ndarray:
        X = np.empty((self.popsize, self.dim))
        reach = self.config.sigma * _NORMAL_MAX + float(np.abs(self.ledger.best_x).max())
        self._near_max = not reach < _FLOAT_MAX
        if self._rebuilds():  # a row at a time, each from a kept generator state
            self._states = []
            for row in X:
                self._states.append(dict(self.rng.bit_generator.state))
                self._draw(row[None], self.rng)
        else:
            self._draw(X, self.rng)
        if self.first:
            X[0] = self.x0  # the start is a candidate too (inside the box: projected)
        return X

    def _draw(self, X: np.ndarray, rng: np.random.Generator) -> None:
        """Fill the rows of ``X`` with candidates drawn from ``rng``."""
        shape = X.shape
        if self.lower is not None and self.upper is not None and self._wide:
            # upper - lower beyond float64: the midpoint and half-width cannot overflow
            mid, half = self.lower / 2 + self.upper / 2, self.upper / 2 - self.lower / 2
            X[:] = mid + half * rng.uniform(-1.0, 1.0, size=shape)
        elif self.lower is not None and self.upper is not None:
            X[:] = rng.uniform(self.lower, self.upper, size=shape)
        else:
            rng.standard_normal(out=X)
            sigma, best = self.config.sigma, self.ledger.best_x
            if not self._near_max:
                X *= sigma
                X += best
            else:  # a sigma or a point near the float64 limit: candidates are kept finite
                with np.errstate(over="ignore"):
                    X *= sigma
                    X += best
                np.clip(X, -_FLOAT_MAX, _FLOAT_MAX, out=X)
            if self.box is not None:  # a box unbounded somewhere: reflected into it
                X[:] = self.box.reflect(X)

    def _rebuilds(self) -> bool:
        return self.dim >= REBUILD_MIN_DIM

    def _asked_row(self, i: int) -> np.ndarray:
        if i == 0 and self.first:
            return self.x0.copy()
        rng = np.random.Generator(type(self.rng.bit_generator)())
        rng.bit_generator.state = self._states[i]
        row = np.empty((1, self.dim))
        self._draw(row, rng)
        return row[0]

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        self.first = False
        finite = values[np.isfinite(values)]
        best = min(float(finite.min()) if finite.size else np.inf, self.ledger.best_f)
        ftol = self.config.ftol
        if ftol is not None and self.mark[1] - best > ftol * (1.0 + abs(best)):
            self.mark = (self.nit + 1, best)  # this iteration improved enough
        return float(finite.min()) if finite.size else np.nan

    def _stop(self) -> dict[str, Any]:
        ftol, window = self.config.ftol, max(10, 2 * self.dim)
        if ftol is not None and self.nit - self.mark[0] >= window:
            return {
                "ftol": f"the best value improved by less than ftol={ftol:g} (relative to "
                f"1 + |best|) in the last {self.nit - self.mark[0]} iterations"
            }
        return {}

    def _resolved_options(self) -> dict[str, Any]:
        return {"popsize": self.popsize}
