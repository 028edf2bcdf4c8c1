"""The ledger: the one place that counts what a run spent and keeps what it found.

Every :class:`~dfo.Optimizer` owns a :class:`Ledger`, and :func:`dfo.minimize`
uses that same object: whether the points are evaluated by a hand-driven
ask/tell loop or by the run loop, ``tell`` books them here and nowhere else.
The ledger counts evaluations (``nfev``), gradient evaluations (``ngev``),
non-finite values and failures, keeps the best point so far (finite values
only) and one history row per iteration, and knows the limits (budget,
``max_iter``, ``target``) that end a run; :func:`stop_status` turns the reasons a
run ended into its status and message, and :func:`build_result` builds every
:class:`~dfo.Result`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from dfo.objective import all_finite as rows_finite
from dfo.objective import square_norm
from dfo.result import HISTORY_FIELDS, Result, Status, is_success

__all__ = ["Ledger", "build_result", "stop_status"]

#: reasons that are limits of the run rather than the method's own verdict
LIMITS = ("budget", "max_iter", "max_time", "callback", "interrupted")


class Ledger:
    """Counters, limits, best-so-far and history of one optimizer's run.

    Parameters
    ----------
    x0 : ndarray, shape (dim,)
        The start: ``best_x`` until a finite value is booked.
    budget : int or None
        Maximum number of evaluations; None for no limit.

    Attributes
    ----------
    nfev, ngev, njvp, n_nonfinite, n_errors, nit : int
        Evaluations, gradient evaluations, directional-derivative evaluations
        (forward mode), non-finite evaluations (value or derivative nan or inf),
        evaluations that raised (``on_error="worst"``), iterations.
    best_x : ndarray
        The point of the lowest finite value booked (``x0`` before any).
    best_f : float
        That value (inf before any).
    value : float
        What the method reported for the last iteration (nan before any).
    reserve : int
        Evaluations kept back from the method (``minimize`` keeps one for the final
        evaluation of the method's recommendation).
    max_iter : int or None
        Iteration limit.
    target : float or None
        A finite value ``<= target`` ends the run.
    history : list of tuple
        One row per iteration, the columns of :data:`dfo.result.HISTORY_FIELDS`.
    """

    def __init__(self, x0: np.ndarray, budget: int | None = None) -> None:
        self.budget = budget
        self.reserve = 0
        self.max_iter: int | None = None
        self.target: float | None = None
        self.nfev = 0
        self.ngev = 0
        self.njvp = 0
        self.n_nonfinite = 0
        self.n_errors = 0
        self.nit = 0
        self.best_x = np.array(x0, dtype=np.float64, copy=True)
        self.best_f = math.inf
        self.value = math.nan
        self.history: list[tuple[int, int, int, float, float, float]] = []
        #: the method's recommendation after each iteration, when asked for (history_x)
        self.xs: list[np.ndarray] | None = None
        self._elapsed = 0.0
        self._clock = time.perf_counter()

    # -- time ------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds of the run so far (across checkpoints: the clock pickles as elapsed)."""
        return self._elapsed + time.perf_counter() - self._clock

    def restart_clock(self) -> None:
        """Count time from now on (``minimize`` calls it as a run starts or resumes)."""
        self._clock = time.perf_counter()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_elapsed"] = self.elapsed()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._clock = time.perf_counter()

    # -- limits ------------------------------------------------------------------------
    def fits(self, k: int) -> bool:
        """Whether ``k`` more evaluations stay within the budget minus the reserve."""
        return self.budget is None or self.nfev + k <= self.budget - self.reserve

    def remaining(self) -> float:
        """Evaluations left for the method (inf without a budget)."""
        if self.budget is None:
            return math.inf
        return max(0, self.budget - self.reserve - self.nfev)

    def limits(self) -> dict[str, Any]:
        """Reasons to stop that need no knowledge of the next batch."""
        reasons: dict[str, Any] = {}
        if self.budget is not None and self.nfev >= self.budget - self.reserve:
            reasons["budget"] = f"{self.nfev} of {self.budget} evaluations spent"
        if self.max_iter is not None and self.nit >= self.max_iter:
            reasons["max_iter"] = f"reached max_iter={self.max_iter} iterations"
        if self.target is not None and self.best_f <= self.target:
            reasons["target"] = f"reached the target {self.target:g} (best {self.best_f:g})"
        return reasons

    def budget_reason(self, k: int) -> dict[str, Any]:
        """``{"budget": ...}`` if a next batch of ``k`` points does not fit, else ``{}``."""
        if self.fits(k):
            return {}
        left = self.remaining()
        return {
            "budget": f"{self.nfev} of {self.budget} evaluations spent; the next iteration "
            f"needs {k}, {left} {'is' if left == 1 else 'are'} left"
        }

    # -- booking -----------------------------------------------------------------------
    def book(
        self,
        X: np.ndarray | None,
        values: np.ndarray,
        grads: np.ndarray | None = None,
        *,
        dderivs: np.ndarray | None = None,
        copy: bool = True,
        grads_finite: bool | None = None,
        best: tuple[int, np.ndarray] | None = None,
    ) -> None:
        """Count the evaluations of the rows of ``X`` and keep the best finite one.

        A row is non-finite when its value, or its gradient or directional derivative
        if given, has a nan or inf. ``X`` must be the optimizer's own copy: the best
        row is copied, or, with ``copy=False`` (``X`` is never changed afterwards),
        kept as it is. ``grads_finite=True`` says the caller found every gradient
        finite (they are not tested again). ``X`` is None for points the optimizer did
        not keep: ``best`` is then :meth:`best_row`'s index with that row (a new
        array), if it has one.
        """
        k = values.shape[0]
        if k == 1:  # one point (a gradient step): in scalars
            value = values.item()
            if (
                math.isfinite(value)
                and (grads is None or grads_finite or math.isfinite(square_norm(grads)))
                and (dderivs is None or math.isfinite(dderivs.item()))
            ):
                self.nfev += 1
                if grads is not None:
                    self.ngev += 1
                if dderivs is not None:
                    self.njvp += 1
                if value < self.best_f:
                    self.best_x = _best_row(X, 0, copy, best)
                    self.best_f = value
                return
        self.nfev += k
        if grads is not None:
            self.ngev += k
        if dderivs is not None:
            self.njvp += k
            grads = dderivs[:, None]  # non-finite like a gradient
        if k <= 16:  # small batches (an SPSA pair): cheaper in Python
            listed = values.tolist()
            all_finite = all(map(math.isfinite, listed))
            i = listed.index(min(listed)) if all_finite and listed else -1
        else:
            i = int(values.argmin())  # the first nan, if any
            all_finite = math.isfinite(values[i]) and math.isfinite(values.max())
        if not all_finite and k:
            finite = np.isfinite(values)
            i = int(np.argmin(np.where(finite, values, np.inf))) if finite.any() else -1
            self.n_nonfinite += k - int(np.count_nonzero(finite))
            if grads is not None:  # finite values with non-finite gradients
                self.n_nonfinite += int(np.count_nonzero(finite & ~np.isfinite(grads).all(axis=1)))
        elif grads is not None and not rows_finite(grads):
            self.n_nonfinite += int(np.count_nonzero(~np.isfinite(grads).all(axis=1)))
        if i >= 0 and values[i] < self.best_f:
            self.best_x = _best_row(X, i, copy, best)
            self.best_f = float(values[i])

    def book_gradient(self, x: np.ndarray, value: float, grad_finite: bool) -> bool:
        """:meth:`book` of one point with its gradient, in scalars (the lean loop).

        ``x`` is kept as it is (it is never changed afterwards). Books nothing and
        returns False when the value or the gradient is not finite: :meth:`book`
        counts those.
        """
        if not (grad_finite and math.isfinite(value)):
            return False
        self.ngev += 1
        self.book_finite(x, value)
        return True

    def book_jvp(self, x: np.ndarray, value: float, dderiv: float) -> bool:
        """:meth:`book` of one point with its directional derivative, in scalars (the lean loop).

        ``x`` is kept as it is (it is never changed afterwards). Books nothing and
        returns False when the value or the directional derivative is not finite:
        :meth:`book` counts those.
        """
        if not (math.isfinite(value) and math.isfinite(dderiv)):
            return False
        self.njvp += 1
        self.book_finite(x, value)
        return True

    def book_finite(self, x: np.ndarray | None, value: float, k: int = 1) -> None:
        """:meth:`book` of ``k`` finite values whose lowest is ``value``, at ``x``, in scalars.

        ``x`` (kept as it is) becomes the best point when ``value`` is below ``best_f``;
        a caller that knows it is not may pass None.
        """
        self.nfev += k
        if value < self.best_f:
            assert x is not None  # the caller's contract
            self.best_x = x
            self.best_f = value

    def best_row(self, values: np.ndarray) -> int:
        """The row of ``values`` that :meth:`book` would keep as the new best (-1: none).

        The first of the lowest finite values, if it is below ``best_f``.
        """
        if not values.size:
            return -1
        i = int(values.argmin())  # the first nan, if any
        if math.isfinite(values[i]):  # no nan, and the lowest is finite
            return i if values[i] < self.best_f else -1
        finite = np.isfinite(values)
        if not finite.any():
            return -1
        i = int(np.argmin(np.where(finite, values, np.inf)))
        return i if values[i] < self.best_f else -1

    def book_errors(self, n: int) -> None:
        """Count ``n`` evaluations that raised (already booked as nan by :meth:`book`)."""
        self.n_errors += n

    def close_iteration(self, value: float) -> None:
        """End an iteration whose method reported ``value``: one history row."""
        self.nit += 1
        self.value = value
        elapsed = self._elapsed + time.perf_counter() - self._clock  # elapsed(), inlined
        self.history.append((self.nit, self.nfev, self.ngev, elapsed, value, self.best_f))

    def history_arrays(self) -> dict[str, np.ndarray]:
        """The history as one array per column of :data:`~dfo.result.HISTORY_FIELDS`."""
        table = np.array(self.history, dtype=np.float64).reshape(-1, len(HISTORY_FIELDS))
        hist = {name: table[:, i] for i, name in enumerate(HISTORY_FIELDS)}
        for name in ("nit", "nfev", "ngev"):
            hist[name] = hist[name].astype(np.int64)
        if self.xs is not None:
            dim = self.best_x.size
            hist["x"] = np.array(self.xs, dtype=np.float64).reshape(-1, dim)
        return hist


def _best_row(
    X: np.ndarray | None, i: int, copy: bool, best: tuple[int, np.ndarray] | None
) -> np.ndarray:
    """Row ``i`` of the booked points as the new best point (see :meth:`Ledger.book`)."""
    if X is not None:
        return X[i].copy() if copy else X[i]
    if best is not None and best[0] == i:
        return best[1]
    raise RuntimeError(f"dfo bug: row {i} is the new best point, and it was not given")


def stop_status(reasons: dict[str, Any], ledger: Ledger) -> tuple[Status, str]:
    """The status and message of a run that ended for ``reasons``: every stop message.

    The method's own reasons (``"nonfinite"`` first) outrank the run's limits; the
    budget's message counts the evaluations at the time of the call.

    Parameters
    ----------
    reasons : dict
        Reason to its explanation, as :meth:`dfo.Optimizer.stop` returns them (and
        ``"max_time"``, ``"callback"``, ``"interrupted"`` from the run loop). Empty:
        the run is in progress.
    ledger : Ledger

    Returns
    -------
    status : Status
    message : str

    Examples
    --------
    >>> ledger = Ledger(np.zeros(2), budget=10)
    >>> stop_status({"budget": "..."}, ledger)
    (<Status.BUDGET: 1>, 'budget exhausted: 0 of 10 evaluations spent')
    """
    if not reasons:
        return Status.RUNNING, (
            f"in progress: {ledger.nit} iterations, {ledger.nfev} evaluations"
            + ("" if ledger.budget is None else f" of {ledger.budget}")
        )
    own = {k: v for k, v in reasons.items() if k not in LIMITS}
    if own:
        status = (
            Status.NONFINITE
            if "nonfinite" in own
            else Status.STALLED
            if "stalled" in own
            else Status.CONVERGED
        )
        return status, "; ".join(f"{k}: {v}" for k, v in own.items())
    if "interrupted" in reasons:
        return Status.INTERRUPTED, str(reasons["interrupted"])
    if "callback" in reasons:
        return Status.CALLBACK, "stopped by the callback"
    if "budget" in reasons:
        return Status.BUDGET, (
            f"budget exhausted: {ledger.nfev} of {ledger.budget} evaluations spent"
        )
    if "max_iter" in reasons:
        return Status.MAX_ITER, str(reasons["max_iter"])
    return Status.MAX_TIME, str(reasons["max_time"])


def build_result(
    ledger: Ledger,
    *,
    x: np.ndarray,
    fun: float,
    status: Status,
    message: str,
    method: str,
    options: dict[str, Any],
    notes: list[str] | None = None,
    recommendation: np.ndarray | None = None,
    history: bool = True,
) -> Result:
    """The :class:`~dfo.Result` of a run (final or so far): every Result is built here.

    The message gets the method's ``notes``, the count of non-finite values and
    failures, and, when no finite value was found, says so (status ``NONFINITE``
    unless the run is in progress or was interrupted).

    Parameters
    ----------
    ledger : Ledger
        Counters, time and history.
    x, fun : ndarray, float
        The result's point and its value.
    status, message : Status, str
        From :func:`stop_status`.
    method : str
    options : dict
        The options the method ran with.
    notes : list of str, optional
        The method's remarks (:meth:`dfo.Optimizer.notes`).
    recommendation : ndarray, optional
        Also report the method's recommendation and last reported value (the
        intermediate results handed to a callback).
    history : bool, default True
        Include the history (the intermediate results do not).

    Returns
    -------
    Result
    """
    for note in notes or ():
        message += f"; {note}"
    if ledger.n_nonfinite:
        message += (
            f"; {ledger.n_nonfinite} of {ledger.nfev} evaluations were not finite (nan or inf)"
        )
        if ledger.n_errors:
            message += f", {ledger.n_errors} of them raised errors"
    if not np.isfinite(fun) and status not in (Status.INTERRUPTED, Status.RUNNING):
        status = Status.NONFINITE
        message = "no finite value was found; " + message
    res = Result(
        x=np.array(x, dtype=np.float64, copy=True),
        fun=float(fun),
        nfev=ledger.nfev,
        ngev=ledger.ngev,
        njvp=ledger.njvp,
        nit=ledger.nit,
        n_nonfinite=ledger.n_nonfinite,
        n_errors=ledger.n_errors,
        success=is_success(status, fun),
        status=status,
        message=message,
    )
    if history:
        res.history = ledger.history_arrays()
    res.update(method=method, options=options, time=ledger.elapsed())
    if recommendation is not None:
        res.recommendation = np.array(recommendation, dtype=np.float64, copy=True)
        res.value = ledger.value
    return res
