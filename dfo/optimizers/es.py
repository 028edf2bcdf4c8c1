"""Evolution strategies at population scale (Salimans et al., 2017, "Evolution Strategies
as a Scalable Alternative to Reinforcement Learning"; the OpenAI-ES update).

Each iteration draws ``m = popsize / 2`` Gaussian directions ``eps_j ~ N(0, I)`` and
evaluates the whole antithetic population ``x + sigma eps_j``, ``x - sigma eps_j`` in one
``evaluate_batch``. The values are replaced by their centered ranks ``u`` (in
``[-1/2, 1/2]``, non-finite values ranked worst), which makes the update blind to the
scale of the loss and to outliers, and

    g = 1 / (popsize sigma) * sum_j (u_j^+ - u_j^-) eps_j  (+ weight_decay * x)

is a smoothed gradient of the loss's ranks; a dfo step rule turns it into a step
(Adam by default). As in Salimans et al., the directions are slices of one table of
Gaussian noise drawn once from a seed (:func:`noise_table`): a direction is an offset
into it (:func:`perturbations`), so a worker that knows the table's seed, the offsets
and ``sigma`` rebuilds its candidates, and its master needs only the values back; and
an iteration costs no Gaussian draws (drawing them cost about as much as evaluating
the population of a small network). The ``m`` directions of an iteration are
consecutive slices of the table from one random start, disjoint while the table holds
``m n`` entries (otherwise evenly spaced windows that overlap): they are a view of the
table, which the population is computed from and the estimate reads, with no copy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.objective import check_dtype
from dfo.optimizers import register
from dfo.optimizers.base import _unkept
from dfo.optimizers.gradient import STEP_RULE, GradientStepOptimizer, _finite_mean
from dfo.optimizers.step_rules import StepRule
from dfo.options import (
    Custom,
    Optional,
    Options,
    PositiveInt,
    PositiveReal,
    RealRange,
    declare_options,
    option,
)

__all__ = [
    "EvolutionStrategy",
    "EvolutionStrategyOptions",
    "centered_ranks",
    "noise_table",
    "perturbations",
]


#: block starts drawn from the generator at a time (one call per this many iterations)
STARTS_PER_DRAW = 256

#: partial sums of values below this in size cannot overflow (the largest float / 2)
_SUM_SAFE = float(np.finfo(np.float64).max) / 2


def noise_table(seed: int, size: int, dtype: Any = np.float64) -> np.ndarray:
    """The shared table of standard normal noise the directions are sliced from.

    Parameters
    ----------
    seed : int
        The table's seed (``EvolutionStrategy.table_seed``).
    size : int
        Entries (``EvolutionStrategy.table_size``).
    dtype : float type, default float64

    Returns
    -------
    ndarray, shape (size,)
    """
    return np.random.default_rng(seed).standard_normal(size, dtype=dtype)


def perturbations(table: np.ndarray, offsets: np.ndarray, dim: int) -> np.ndarray:
    """The directions ``table[o : o + dim]`` for each offset ``o``, shape ``(m, dim)``.

    Parameters
    ----------
    table : ndarray, shape (size,)
        The noise table (:func:`noise_table`).
    offsets : array_like of int, shape (m,)
        Where each direction starts (``EvolutionStrategy.offsets``).
    dim : int
        Length of a direction.

    Returns
    -------
    ndarray, shape (m, dim)
        A copy (rows of the table, one per offset).

    Examples
    --------
    >>> perturbations(np.arange(6.0), np.array([0, 3]), 2)
    array([[0., 1.],
           [3., 4.]])
    """
    return _windows(table, dim)[np.asarray(offsets)]  # rows copied whole


def _windows(table: np.ndarray, dim: int) -> np.ndarray:
    """Every window of ``dim`` entries of ``table``, a read-only view ``(size - dim + 1, dim)``.

    ``sliding_window_view`` without its checks (a row is a direction).
    """
    table = np.ascontiguousarray(table)
    windows = np.ndarray((table.size - dim + 1, dim), table.dtype, table, 0, table.strides * 2)
    windows.flags.writeable = False
    return windows


def centered_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` scaled to ``[-1/2, 1/2]`` (lowest value -1/2); non-finite worst.

    Parameters
    ----------
    values : ndarray, shape (k,)

    Returns
    -------
    ndarray, shape (k,), float64
        ``rank / (k - 1) - 1/2`` (0 for ``k = 1``); ties keep their order.

    Examples
    --------
    >>> centered_ranks(np.array([3.0, -1.0, np.nan, 0.5]))
    array([ 0.16666667, -0.5       ,  0.5       , -0.16666667])
    """
    keys = np.where(np.isfinite(values), values, np.inf)
    ranks = np.empty(keys.size)
    ranks[np.argsort(keys, kind="stable")] = np.arange(keys.size)
    if keys.size > 1:
        ranks /= keys.size - 1
    return ranks - 0.5 if keys.size > 1 else ranks


def _check_popsize(name: str, value: Any) -> int:
    size = PositiveInt(minimum=2).check(name, value)
    if size % 2:
        raise InvalidOptionError(
            f"{name} must be even (antithetic pairs x + sigma eps, x - sigma eps); got {size}"
        )
    return size


def _check_dtype(name: str, value: Any) -> str:
    return check_dtype(value, name).name


@declare_options
class EvolutionStrategyOptions(Options):
    """Options of :class:`EvolutionStrategy`."""

    sigma: float = option(0.02, PositiveReal())
    popsize: int | None = option(None, Optional(Custom(_check_popsize, "an even integer >= 2")))
    learning_rate: float = option(0.03, PositiveReal())
    step_rule: str | StepRule = option("adam", STEP_RULE)
    alpha: float = option(0.602, RealRange(0.0))
    A: float | None = option(None, Optional(RealRange(0.0)))
    weight_decay: float = option(0.0, RealRange(0.0))
    dtype: str | None = option(None, Optional(Custom(_check_dtype, "'float64' or 'float32'")))
    noise_table: int = option(2**20, PositiveInt())
    patience: int = option(10, PositiveInt())
    divergence: float = option(1e4, PositiveReal(allow_inf=True))
    xtol: float | None = option(None, Optional(RealRange(0.0)))
    ftol: float | None = option(None, Optional(RealRange(0.0)))


@register("es")
class EvolutionStrategy(GradientStepOptimizer):
    """OpenAI-ES: antithetic Gaussian perturbations, centered ranks, a step rule.

    The defaults were chosen by measurement on the digits task of ``dfo compare`` (see
    the method's documentation page): Adam with Spall-style decaying gains.

    Parameters
    ----------
    sigma : float, default 0.02
        Standard deviation of the perturbations (Salimans et al.'s value, and the best
        of those measured on the digits task).
    popsize : int, optional
        Candidates per iteration, even (``popsize / 2`` antithetic pairs); default
        ``max(8, 4 + floor(3 ln n))`` rounded up to even.
    learning_rate : float, default 0.03
        Step size of the step rule at the first iteration.
    step_rule : {"sgd", "momentum", "adam"} or StepRule, default "adam"
    alpha : float, default 0.602
        Decay of the learning rate, Spall style: ``learning_rate * ((A + 1) / (k + 1 +
        A))**alpha`` at iteration ``k`` (0: constant).
    A : float, optional
        Stability constant of that decay; default 10% of the iterations the budget
        allows (10 without a budget).
    weight_decay : float, default 0
        Adds ``weight_decay * x`` to the estimate (L2 regularization, as Salimans et al.).
    dtype : {"float64", "float32"}, optional
        Float type the population is built in (float32: half the memory traffic, and a
        float32 objective evaluates it without conversion); :func:`dfo.minimize` sets the
        objective's type. The iterate stays float64.
    noise_table : int, default 2**20
        Entries of the shared noise table the directions are sliced from (at least
        ``2 n`` and ``n + popsize / 2 - 1`` are used); drawn once, when the optimizer is
        made. With at least ``n popsize / 2`` entries, the directions of an iteration
        are disjoint slices of it.
    patience, divergence, xtol
        As for :class:`dfo.optimizers.gradient.BackpropSGD` (the value checked is the
        mean of the population's values).
    ftol : float, optional
        Stop (reason ``"ftol"``) once the mean of the population's values, averaged over
        the last ``patience`` iterations, has improved by less than
        ``ftol * (1 + |average|)`` over ``2 * patience`` iterations; what ``tol=`` sets.
        A fixed ``sigma`` and Adam keep the iterate moving by about the learning rate,
        so its steps (``xtol``) need not shrink; the smoothed value stops improving.
        It cannot see progress below its own sampling noise (about ``sigma**2`` times
        the curvature): near a minimum every small ``ftol`` stops at the same point.

    With ``bounds`` the candidates are clipped to the box and the iterate is projected
    onto it after each step.

    Attributes
    ----------
    table_seed, table_size : int
        Seed and size of the noise table (:func:`noise_table`).
    offsets : ndarray of int
        Offsets into it of the directions of the last iteration asked
        (:func:`perturbations`): one random start, then every ``stride`` entries.
    stride : int
        Entries between the starts of an iteration's directions (``n`` when they fit
        side by side in the table).

    Examples
    --------
    >>> import numpy as np, dfo
    >>> res = dfo.minimize(lambda x: float(np.sum((x - 1) ** 2)), np.zeros(5), method="es",
    ...                    budget=3000, seed=0, sigma=0.01, learning_rate=0.1, alpha=1.0)
    >>> bool(res.fun < 1e-3)
    True
    """

    Options = EvolutionStrategyOptions
    config: EvolutionStrategyOptions
    TOL = ("ftol",)
    TOL_MEANING = (
        "the mean of the population's values, averaged over ``patience`` iterations, "
        "improved by less than ``tol * (1 + |average|)`` over ``2 patience`` iterations"
    )

    def _setup(self) -> None:
        super()._setup()
        cfg = self.config
        popsize = cfg.popsize
        if popsize is None:
            popsize = max(8, 4 + int(3 * math.log(self.dim)))
            popsize += popsize % 2
        self.sigma, self.popsize = cfg.sigma, popsize
        self.alpha, self.weight_decay = cfg.alpha, cfg.weight_decay
        self.A = 0.1 * (self.budget // popsize if self.budget else 100) if cfg.A is None else cfg.A
        self.dtype = cfg.dtype
        self.k = 0
        self.recent: list[float] = []  # ftol: the last ``patience`` population means
        self.mark = (0, math.inf)  # ftol: (iteration, average) of the last real improvement
        self.table_seed = int(self.rng.integers(2**63))
        m = popsize // 2
        self.table_size = max(cfg.noise_table, 2 * self.dim, self.dim + m - 1)
        # the directions of an iteration start ``stride`` apart: disjoint if they fit
        fits = m * self.dim <= self.table_size
        self.stride = self.dim if fits else (self.table_size - self.dim) // max(m - 1, 1)
        self.offsets = np.zeros(0, dtype=np.intp)
        self._starts = np.zeros(0, dtype=np.intp)  # block starts drawn ahead, in order
        self._next = 0  # the next of them to use
        self._table: np.ndarray | None = None
        self._windows: np.ndarray | None = None  # every direction of the table, a view
        directions = self._noise()  # drawn once, here (outside the run's clock)
        self._eps: np.ndarray | None = None  # the directions between ask and tell
        # made once: the centered ranks in sorted order (centered_ranks' values), the
        # ranks and weights of an iteration, the signed sigmas of the two halves
        k = popsize
        self._grid = np.arange(k, dtype=np.float64) / (k - 1) - 0.5
        self._u, self._w = np.empty(k), np.empty(k // 2)
        self._signs = np.array([self.sigma, -self.sigma], directions.dtype)[:, None, None]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # rebuilt from seed and offsets: small
        state["_table"] = state["_windows"] = state["_eps"] = None
        return state

    def _noise(self) -> np.ndarray:
        """The directions: every window of ``dim`` entries of the table (a view)."""
        if self._table is None:
            self._table = noise_table(self.table_seed, self.table_size, self.dtype or "float64")
        if self._windows is None:
            self._windows = _windows(self._table, self.dim)
        return self._windows

    def _resolved_options(self) -> dict[str, Any]:
        return {"popsize": self.popsize, "A": self.A}

    def _ask(self) -> np.ndarray:
        m, n = self.popsize // 2, self.dim
        if self._next == self._starts.size:  # one generator call per STARTS_PER_DRAW
            last = self.table_size - n - (m - 1) * self.stride  # the last block's start
            self._starts, self._next = self.rng.integers(0, last + 1, STARTS_PER_DRAW), 0
        start = int(self._starts[self._next])
        self._next += 1
        self.offsets = start + self.stride * np.arange(m)
        self._eps = eps = self._block(start)
        x = self.x.astype(eps.dtype, copy=False)
        X = np.empty((2 * m, n), dtype=eps.dtype)
        halves = X.reshape(2, m, n)  # x + sigma eps_j above, x - sigma eps_j below
        np.multiply(eps, self._signs, out=halves)
        halves += x
        return X if self.box is None else self.box.clip(X)

    def _rebuilds(self) -> bool:
        return True  # from x and the directions

    def _block(self, start: int) -> np.ndarray:
        """The directions from ``start``, ``stride`` apart: a ``(m, n)`` view of the table."""
        stop = start + self.stride * (self.popsize // 2 - 1) + 1
        return self._noise()[start : stop : self.stride]

    def _directions(self) -> np.ndarray:
        """The directions of the last ask (rebuilt from the offsets after pickling)."""
        if self._eps is None:
            self._eps = self._block(int(self.offsets[0]))
        return self._eps

    def _asked_row(self, i: int) -> np.ndarray:
        """Row ``i`` of the last ask, ``x + sigma eps_j`` or ``x - sigma eps_j``, as made."""
        m, eps = self.popsize // 2, self._directions()
        x = self.x.astype(eps.dtype, copy=False)
        step = eps[i % m] * self.sigma
        row = x + step if i < m else x - step
        return row if self.box is None else self.box.clip(row)

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        m, k = self.popsize // 2, self.popsize
        eps, self._eps = self._directions(), None
        order = values.argsort(kind="stable")  # nan last, +inf before it, -inf first
        lo, hi = float(values[order[0]]), float(values[order[-1]])
        if math.isfinite(lo) and math.isfinite(hi):  # all finite: ranks from this sort
            u = self._u
            u[order] = self._grid  # centered_ranks(values)
            # the mean (_finite_mean's), when no partial sum can overflow
            mean = float(values.sum()) / k if max(-lo, hi) < _SUM_SAFE / k else None
        elif np.isfinite(values).any():
            u, mean = centered_ranks(values), None
        else:
            return self._step(math.nan, None)
        weights = np.subtract(u[:m], u[m:], out=self._w)
        weights /= k * self.sigma
        # sum_j w_j eps_j (float32 directions: in float32, then float64)
        grad = (weights.astype(eps.dtype, copy=False) @ eps).astype(np.float64, copy=False)
        if self.weight_decay:
            grad += self.weight_decay * self.x
        reported = self._step(_finite_mean(values) if mean is None else mean, grad)
        self.k += 1
        if self.config.ftol is not None:
            self._watch(reported)
        return reported

    # -- the lean loop (dfo.run.lean) ----------------------------------------------------
    def lean_population(self) -> np.ndarray:
        """The population ``ask`` would hand out now, ``(popsize, n)``.

        For the run's lean loop (:mod:`dfo.run.lean`): the population a stop check
        asked already, else a new one, made as ``ask`` makes it. The array is the
        caller's (never read again), as ``ask``'s.
        """
        X = self._pending_points()
        self._pending = None  # handed out: a row that becomes the best is rebuilt
        return X

    def tell_lean(self, values: np.ndarray) -> None:
        """:meth:`tell_evaluated` of the values at :meth:`lean_population`'s, booked in scalars.

        The same step and the same bookkeeping as ``ask`` and ``tell``
        (``tests/test_lean_population.py`` checks the bits); values that are not all
        finite take :meth:`tell_evaluated` itself. ``values`` is float64, ``(popsize,)``.
        """
        i = int(values.argmin())  # the first of the lowest (the first nan, if any)
        low = float(values[i])
        if not (math.isfinite(low) and math.isfinite(values.max())):
            self.tell_evaluated(values)
            return
        ledger = self.ledger
        # the row that becomes the best point, rebuilt before the step moves x
        best = self._asked_row(i) if low < ledger.best_f else None
        reported = self._tell(_unkept(self.popsize, self.dim), values, None)
        self._n_pending = None
        if self._handed:
            self._handed = []
        ledger.book_finite(best, low, self.popsize)
        ledger.close_iteration(reported)

    def _watch(self, mean: float) -> None:
        """ftol: mark the iteration if the average of recent means improved enough."""
        self.recent = [*self.recent[1 - self.patience :], mean]
        if len(self.recent) < self.patience or not math.isfinite(
            average := sum(self.recent) / self.patience
        ):
            return
        if self.mark[1] - average > self.config.ftol * (1.0 + abs(average)):  # type: ignore[operator]
            self.mark = (self.k, average)

    def _stop(self) -> dict[str, Any]:
        ftol, waited = self.config.ftol, self.k - self.mark[0]
        if ftol is not None and waited >= 2 * self.patience:
            return {
                "ftol": f"the average of the population's values over {self.patience} "
                f"iterations improved by less than ftol={ftol:g} (relative to 1 + |average|) "
                f"in the last {waited} iterations"
            }
        return super()._stop()

    def _rate(self) -> float:
        return self.learning_rate * ((self.A + 1.0) / (self.k + 1.0 + self.A)) ** self.alpha
