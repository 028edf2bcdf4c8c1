"""The ask/tell contract every method in dfo implements.

The whole contract is this loop (:func:`dfo.minimize` runs it, and so can you)::

    opt = dfo.make_optimizer("spsa", x0, seed=0, budget=2_000)
    while not opt.stop():                  # {} while the run goes on, else the reasons
        X = opt.ask()                      # (k, dim) points to evaluate
        values = [f(x) for x in X]
        opt.tell(X, values)                # or tell(X, values, grads) for gradient methods
    res = opt.result()

It ends by itself: ``stop()`` returns ``{"budget": ...}`` before an ask whose
points would not fit in the budget, so at most ``budget`` evaluations are told.
``stop()`` returns every reason that applies, as pycma does: ``"budget"``,
``"max_iter"``, ``"target"``, ``"nonfinite"`` (the method gave up on nan/inf values)
or the method's own convergence tests (``"tolfun"``, ``"converged"``, ...);
``result()`` before that says the run is in progress (``Status.RUNNING``).

**The ledger.** The public :meth:`Optimizer.ask`, :meth:`Optimizer.tell` and
:meth:`Optimizer.stop` do all the bookkeeping in one object,
:class:`dfo.run.ledger.Ledger` (``opt.ledger``), which :func:`dfo.minimize`
shares: it counts evaluations, gradients, non-finite values and failures,
enforces the budget, keeps the best point and the history. A method never
counts: its ``_tell`` updates only its own state.

**Hooks.** A method is a subclass that fills these (and is registered with
:func:`dfo.register`):

``Options`` (class attribute)
    A frozen dataclass of :func:`dfo.options.option` fields: the method's
    options, declared once (defaults, kinds, ranges). ``self.config`` holds the
    checked values.
``_setup()``
    Build the method's state from ``self.config``, ``self.x0``, ``self.dim``,
    ``self.rng`` and ``self.budget``; the base ``__init__`` calls it last, so a
    method needs no ``__init__`` of its own.
``_ask() -> ndarray (k, dim)``
    The next points; a new array (a view of the method's state is copied).
    Called once per iteration: ``ask()`` repeats the same points until ``tell``.
``_tell(X, values, grads) -> float``
    Update the method's state from the values at its own copy ``X`` of the asked
    points (``values`` float64 ``(k,)``, possibly nan or inf; ``grads`` ``(k, dim)``
    or None). Return the value to report for the iteration (the history's
    ``value``). A method that rebuilds its points (below) gets, in place of its
    copy, a read-only ``(k, dim)`` array of nan.
``_rebuilds() -> bool`` and ``_asked_row(i) -> ndarray (dim,)``
    Optional (default False): whether the method can rebuild, bit for bit, each row
    of the points its last ``_ask`` returned from its own state until ``_tell``
    (SPSA from ``x``, ``c_k`` and its directions). ``ask`` then hands out the
    array ``_ask`` returned itself, without a copy (one population matrix, not
    two), and never reads it again: ``tell`` rebuilds the one row that becomes the
    best point, and asking again rebuilds the points to see whether the caller
    changed them (``_asked_rows() -> ndarray (k, dim)``, which a method may override
    to rebuild them at once). Only for arrays ``_ask`` made anew and keeps no reference
    to.
``_recommend() -> ndarray (dim,)``
    The method's estimate of the minimizer (default: the best point told).
``_stop() -> dict``
    The method's own reasons to stop (default: none).
``notes() -> list[str]``
    Remarks for the result's message (such as backtracking).
``extra() -> dict``
    Method-specific fields of the Result (such as CMA-ES's ``restarts``).
``close()``
    Release what the optimizer holds besides its state (a worker thread);
    :func:`dfo.minimize` calls it when the run ends.
``_resolved_options() -> dict``
    Options whose value the method chose (a default of None made concrete).
``_budget_changed()``
    Called when a resumed run gets a new budget (recompute budget-derived
    schedules).
``_grads_finite() -> bool or None``
    After ``_tell``: whether the gradients told were all finite, for a method that
    tests them anyway (the ledger then does not test them again); None by default.

and declares what the run loop needs to know as class attributes:

``needs_gradient``
    ``tell`` needs gradients: the run loop calls the objective's ``value_and_grad``.
``needs_jvp``
    ``tell`` needs directional derivatives along ``directions()`` (forward mode):
    the run loop calls the objective's ``value_and_jvp`` and tells them in place
    of gradients.
``recommends_unevaluated``
    ``_recommend()`` may be a point the method has not evaluated (an SGD iterate,
    a CMA-ES mean): :func:`dfo.minimize` keeps one evaluation of the budget to
    evaluate it at the end.
``immutable_asks``
    ``_ask`` returns arrays (or views of arrays) that the method never changes
    afterwards, such as a view of an iterate that each step replaces by a new
    array: the base class then keeps them as the pending points, and the ledger the
    best of them, without a copy (``ask`` still hands out a copy).
``wants_new_sample()`` (a method; default True)
    Whether the next ask starts a new estimate that gets a new realization
    (minibatch, noise) of a stochastic objective. FD-SGD answers False for the
    later blocks of one gradient's probes, which share one realization.

**Misuse.** ``tell`` without a pending ask (before the first ask, or twice), with
other points than asked, with a number of values or gradients that does not match,
or beyond the budget raises :class:`~dfo.exceptions.AskTellError` and changes
nothing. Points handed out by ``ask`` are the caller's: the optimizer never reads
them again (it keeps its own copy, or rebuilds them);
``recommend()``, ``best_x`` and ``result().x`` are copies too; ``x0`` is never
changed. Optimizers hold all their state (random generator and ledger included)
as plain attributes, so they pickle.
"""

from __future__ import annotations

import dataclasses
import functools
from numbers import Integral
from typing import Any, ClassVar

import numpy as np

from dfo.bounds import Box, parse_bounds
from dfo.exceptions import (
    AskTellError,
    AskTellShapeError,
    GradientNotAvailableError,
    InvalidOptionError,
    ShapeError,
)
from dfo.objective import as_float64, check_batch
from dfo.optimizers.step_rules import StepRule, describe
from dfo.options import Options as BaseOptions
from dfo.options import check_budget
from dfo.result import Result
from dfo.run.ledger import Ledger, build_result, stop_status

__all__ = ["NoOptions", "Optimizer", "check_seed", "check_x0"]


def check_seed(seed: Any) -> int | np.random.SeedSequence | None:
    """Return ``seed`` if it is None, an int >= 0 or a SeedSequence; raise otherwise.

    Parameters
    ----------
    seed : int, numpy.random.SeedSequence or None
        The seed to check. Integer types other than ``int`` (such as
        ``numpy.int64``) are accepted and returned as ``int``.

    Returns
    -------
    int, numpy.random.SeedSequence or None
        ``seed`` itself (an integer as a Python ``int``).

    Raises
    ------
    TypeError
        If ``seed`` is a bool or not an integer (a float, a string, a Generator).
    ValueError
        If ``seed`` is a negative integer.

    Examples
    --------
    >>> import numpy as np
    >>> check_seed(np.int64(3))
    3
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    ValueError: seed must be None or a non-negative integer; got -1
    """
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(
            f"seed must be None or a non-negative integer; got {type(seed).__name__} {seed!r}"
        )
    if seed < 0:
        raise ValueError(f"seed must be None or a non-negative integer; got {seed}")
    return int(seed)


def _check_values(values: Any, k: int) -> np.ndarray:
    """``values`` told for ``k`` points as a ``(k,)`` float64 array, or raise."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64 and values.shape == (k,):
        return values
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise TypeError(f"values must be {k} real numbers; got {values!r:.60}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"values must be real numbers; got an array of dtype {arr.dtype}")
    if arr.shape != (k,):
        raise AskTellShapeError(
            f"values must have shape ({k},), one per point of X; got shape {arr.shape}"
        )
    return arr.astype(np.float64, copy=False)


@functools.lru_cache(maxsize=8)
def _unkept(k: int, dim: int) -> np.ndarray:
    """What ``_tell`` gets for points handed out and not kept: ``(k, dim)`` nan, read-only."""
    return np.broadcast_to(np.float64(np.nan), (k, dim))


def check_x0(x0: Any) -> np.ndarray:
    """Return ``x0`` as a finite 1-D float64 array (a copy) or raise.

    Parameters
    ----------
    x0 : array_like, shape (dim,)
        A starting point: a non-empty vector of real, finite numbers.

    Returns
    -------
    ndarray, float64, shape (dim,)
        A new array; changing it leaves ``x0`` as it was.

    Raises
    ------
    TypeError
        If ``x0`` does not hold real numbers (complex numbers, strings, objects).
    ShapeError
        If ``x0`` is not 1-D (a scalar, a matrix) or is empty.
    ValueError
        If ``x0`` contains nan or inf (the message names up to five indices).

    Examples
    --------
    >>> check_x0([1, 2])
    array([1., 2.])
    >>> check_x0([0.0, float("nan")])
    Traceback (most recent call last):
    ...
    ValueError: x0 must be finite; it has nan or inf at indices [1]
    """
    try:
        x = np.array(as_float64(x0), dtype=np.float64)  # a copy
    except OverflowError:
        raise ValueError(
            "x0 must be finite float64 numbers; it holds an integer too large for a float "
            "(beyond 1.8e308)"
        ) from None
    except (TypeError, ValueError) as exc:
        dtype = f" of dtype {x0.dtype}" if isinstance(x0, np.ndarray) else ""
        raise TypeError(
            f"x0 must be a 1-D array of real numbers; got {type(x0).__name__}{dtype}"
        ) from exc
    if x.ndim != 1 or x.size == 0:
        raise ShapeError(f"x0 must be a non-empty 1-D array; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        bad = np.flatnonzero(~np.isfinite(x))[:5].tolist()
        raise ValueError(f"x0 must be finite; it has nan or inf at indices {bad}")
    return x


@dataclasses.dataclass(frozen=True)
class NoOptions(BaseOptions):
    """The options of a method that has none."""


class Optimizer:
    """Base class of ask/tell optimizers (see the module docstring for the contract).

    Parameters
    ----------
    x0 : array_like, shape (dim,)
        Starting point (copied; never modified).
    seed : int, numpy.random.SeedSequence or None
        Seed of the optimizer's :class:`numpy.random.Generator` ``rng``.
    budget : int or None
        Maximum number of evaluations (see :func:`dfo.options.check_budget`);
        ``stop()`` says ``"budget"`` before an ask that would not fit, and ``tell``
        refuses evaluations beyond it. Some methods derive defaults from it.
    **options
        The method's options, checked against its ``Options`` declaration.

    Raises
    ------
    InvalidOptionError, OptionTypeError
        For an unknown option name (the message suggests the closest) or a bad
        value, and a bad ``budget``.
    TypeError, ShapeError, ValueError
        For an invalid ``x0`` or ``seed``.

    Attributes
    ----------
    config : Options
        The checked options.
    ledger : dfo.run.ledger.Ledger
        Counters, best so far and history.
    """

    #: registered name, set by :func:`dfo.register`
    name: ClassVar[str] = ""
    #: the options ``tol=`` sets (scipy's meaning: the method's own tolerances), and
    #: what they then mean; one table of the docs is rendered from these
    TOL: ClassVar[tuple[str, ...]] = ()
    TOL_MEANING: ClassVar[str] = ""
    #: further options ``tol=`` sets to fixed values (cma-es: no restarts)
    TOL_FIXED: ClassVar[dict[str, Any]] = {}
    #: the method's options, declared once (a frozen dataclass of ``option`` fields)
    Options: ClassVar[type[BaseOptions]] = NoOptions
    #: whether ``tell`` needs gradients (the runner then calls ``value_and_grad``)
    needs_gradient: ClassVar[bool] = False
    #: whether ``tell`` needs directional derivatives along :meth:`directions` (forward
    #: mode: the runner calls ``value_and_jvp`` and tells them in place of gradients)
    needs_jvp: ClassVar[bool] = False
    #: whether ``_recommend()`` may return a point that was never evaluated
    recommends_unevaluated: ClassVar[bool] = False
    #: whether ``_ask``'s arrays are never changed by the method afterwards (no copies)
    immutable_asks: ClassVar[bool] = False

    config: BaseOptions

    def __init__(
        self,
        x0: Any,
        *,
        seed: int | np.random.SeedSequence | None = None,
        budget: int | None = None,
        bounds: Any = None,
        **options: Any,
    ) -> None:
        self.x0 = check_x0(x0)
        self.dim = self.x0.size
        self.seed = check_seed(seed)
        # bounds, for every method: x0 projected onto the box; a method that handles
        # them itself (pycma) also gets them as its option, in one canonical form
        self.box: Box | None = parse_bounds(bounds, self.dim)
        if self.box is not None:
            self.x0 = self.box.clip(self.x0)
        if "bounds" in self.Options.kinds():
            options["bounds"] = None if self.box is None else self.box.pairs()
        self.config = self.Options.build(options, self.name)
        self.rng = np.random.default_rng(self.seed)
        self.ledger = Ledger(self.x0, None if budget is None else check_budget(budget))
        self._pending: np.ndarray | None = None  # the method's own copy of the asked points
        self._n_pending: int | None = None  # how many points are asked (None: no pending ask)
        self._rebuilt = False  # whether the pending points are rebuilt, not kept (_rebuilds)
        self._handed: list[np.ndarray] = []  # the copies ask() handed out since the last tell
        self._setup()

    def _setup(self) -> None:
        """Build the method's own state, once ``x0``, ``config``, ``rng`` and ``ledger`` exist.

        Called at the end of ``__init__``; a method overrides this hook instead of
        ``__init__`` (and calls ``super()._setup()`` when its parent has one).
        """

    # -- hooks for subclasses -----------------------------------------------------------
    def _ask(self) -> np.ndarray:
        raise NotImplementedError

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        """Update from the told values; return the value to report for this iteration."""
        raise NotImplementedError

    def _recommend(self) -> np.ndarray:
        return self.ledger.best_x

    def _rebuilds(self) -> bool:
        """Whether the rows of the points the last ``_ask`` returned can be rebuilt."""
        return False

    def _asked_row(self, i: int) -> np.ndarray:
        """Row ``i`` of the points the last ``_ask`` returned, rebuilt (a new array)."""
        raise NotImplementedError

    def _asked_rows(self) -> np.ndarray:
        """All rows of the points the last ``_ask`` returned, rebuilt (a new array)."""
        assert self._n_pending is not None
        return np.stack([self._asked_row(i) for i in range(self._n_pending)])

    def _stop(self) -> dict[str, Any]:
        return {}

    def _resolved_options(self) -> dict[str, Any]:
        return {}

    def _grads_finite(self) -> bool | None:
        """After ``_tell``: whether the gradients told were all finite (None: not checked).

        A method that tests them anyway says so, and the ledger does not test again.
        """
        return None

    def directions(self) -> np.ndarray:
        """For ``needs_jvp`` methods: one tangent direction per point asked, ``(k, dim)``."""
        raise NotImplementedError

    def _budget_changed(self) -> None:
        """Hook: the budget changed (a resumed run); recompute what derives from it."""

    def wants_new_sample(self) -> bool:
        """Whether the next ask gets a new realization of a stochastic objective."""
        return True

    def close(self) -> None:
        """Release what the optimizer holds besides its state (a worker thread).

        :func:`dfo.minimize` calls it when the run ends. The optimizer stays
        usable: what it released is rebuilt from its state when needed.
        """

    def notes(self) -> list[str]:
        """Remarks on the run so far for the result's message (such as backtracking)."""
        return []

    def extra(self) -> dict[str, Any]:
        """Method-specific fields of the Result (such as CMA-ES's ``restarts``)."""
        return {}

    # -- what the ledger knows ------------------------------------------------------------
    @property
    def budget(self) -> int | None:
        """The evaluation budget (None: no limit); setting it calls :meth:`set_budget`."""
        return self.ledger.budget

    @budget.setter
    def budget(self, budget: Any) -> None:
        self.set_budget(budget)

    @property
    def nit(self) -> int:
        """Iterations told so far."""
        return self.ledger.nit

    @property
    def nfev(self) -> int:
        """Evaluations told so far."""
        return self.ledger.nfev

    @property
    def n_nonfinite(self) -> int:
        """Told evaluations whose value (or gradient) was nan or inf."""
        return self.ledger.n_nonfinite

    @property
    def best_x(self) -> np.ndarray:
        """A copy of the point with the lowest finite value told (``x0`` before any)."""
        return self.ledger.best_x.copy()

    @property
    def best_f(self) -> float:
        """The lowest finite value told (inf before any)."""
        return self.ledger.best_f

    @property
    def last_value(self) -> float:
        """What the method reported for the last iteration (nan before any)."""
        return self.ledger.value

    # -- public API -----------------------------------------------------------------------
    def _pending_points(self) -> np.ndarray:
        """The method's own copy of the pending points, asking the method if there are none.

        For a method that rebuilds its points, once ``ask`` has handed them out, a
        copy rebuilt from the method's state.
        """
        if self._n_pending is None:
            X = self._ask()
            if self.box is not None and not self.box.contains(X):
                raise RuntimeError(
                    f"dfo bug: {self.name} asked for a point outside its bounds {self.box}; "
                    "nothing was evaluated"
                )
            self._pending = X if X.flags.owndata or self.immutable_asks else X.copy()
            self._n_pending = X.shape[0]
            self._rebuilt = self._rebuilds()
        elif self._pending is None:  # handed out: rebuilt
            self._pending = self._asked_rows()
        return self._pending

    def ask(self) -> np.ndarray:
        """Points to evaluate next, shape ``(k, dim)``: a new array, yours to change.

        Asking again before telling returns the same points (the same array, unless
        it was changed), so a caller whose evaluation failed can retry.
        """
        pending = self._pending_points()
        if self._handed and np.array_equal(self._handed[-1], pending):
            handed = self._handed[-1]
        else:
            handed = pending if self._rebuilt else pending.copy()
            self._handed.append(handed)
        if self._rebuilt:
            self._pending = None  # the caller's array now, never read again
        return handed

    def tell(self, X: Any, values: Any, grads: Any = None) -> None:
        """Report the values (and gradients, for gradient methods) at the asked points.

        Parameters
        ----------
        X : array_like, shape (k, dim)
            The points the last :meth:`ask` returned (an objective may have changed
            the array: the optimizer uses its own copy).
        values : array_like, shape (k,)
            Their values; nan and inf are allowed (they count as non-finite).
        grads : array_like, shape (k, dim), optional
            Their gradients, for methods with ``needs_gradient``; ignored otherwise.

        Raises
        ------
        AskTellError
            Without a pending ask, for other points than asked, or beyond the budget.
        AskTellShapeError
            If ``X``, ``values`` or ``grads`` do not have the asked number of rows or
            the dimension (an :class:`AskTellError` and a :class:`ShapeError`).
        GradientNotAvailableError
            If the method needs gradients and ``grads`` is None.
        TypeError
            If ``values`` or ``grads`` are not real numbers.
        """
        k = self._n_pending
        if k is None:
            raise AskTellError(
                f"tell without a pending ask ({self.nit} iterations told): call ask() "
                "first, and tell the values of each ask once"
            )
        if not any(X is h for h in self._handed):
            try:
                X = check_batch(X, self.dim)
            except ShapeError as exc:
                raise AskTellShapeError(str(exc)) from None
            if X.shape[0] != k:
                raise AskTellShapeError(
                    f"tell expects the {k} points that ask returned; got {X.shape[0]}"
                )
            if not np.array_equal(X, self._pending_points()):
                raise AskTellError(
                    "tell was given other points than the last ask returned; tell the "
                    "values at the asked points (ask() returns them again)"
                )
        values = _check_values(values, k)
        if self.needs_gradient:
            if grads is None:
                raise GradientNotAvailableError(
                    f"{self.name} needs gradients: call tell(X, values, grads)"
                )
            try:
                grads = check_batch(grads, self.dim, "grads")
            except ShapeError as exc:
                raise AskTellShapeError(str(exc)) from None
            if grads.shape[0] != k:
                raise AskTellShapeError(
                    f"grads must have one row per point ({k}); got {grads.shape[0]}"
                )
        elif self.needs_jvp:
            if grads is None:
                raise GradientNotAvailableError(
                    f"{self.name} needs directional derivatives along directions(): call "
                    "tell(X, values, dderivs)"
                )
            grads = _check_values(grads, k)
        else:
            grads = None
        self.tell_evaluated(values, grads)

    def tell_evaluated(self, values: np.ndarray, grads: np.ndarray | None = None) -> None:
        """:meth:`tell` for arrays known to be right: the checks of the caller's arrays skipped.

        For the run loop (:func:`dfo.minimize`), whose evaluator produced ``values``
        (float64, ``(k,)``) and ``grads`` (float64 ``(k, dim)``; the directional
        derivatives ``(k,)`` for forward mode; None for the other methods) at the
        pending points from what the objective returned, checked there: the checks
        of :meth:`tell` are not made a second time in every iteration. The
        bookkeeping is :meth:`tell`'s.

        Raises
        ------
        AskTellError
            Without a pending ask, or beyond the budget.
        """
        k = self._n_pending
        if k is None:
            raise AskTellError(
                f"tell without a pending ask ({self.nit} iterations told): call ask() "
                "first, and tell the values of each ask once"
            )
        ledger = self.ledger
        if ledger.budget is not None and ledger.nfev + k > ledger.budget:
            raise AskTellError(
                f"telling {k} more evaluations would exceed the budget "
                f"({ledger.nfev} of {ledger.budget} spent); stop() said so"
            )
        kept, best = self._pending, None
        if kept is None:  # handed out: the row that becomes the best is rebuilt
            i = ledger.best_row(values)
            best = None if i < 0 else (i, self._asked_row(i))
        reported = self._tell(_unkept(k, self.dim) if kept is None else kept, values, grads)
        self._pending = self._n_pending = None
        self._handed = []
        if self.needs_jvp:
            ledger.book(kept, values, dderivs=grads, copy=not self.immutable_asks, best=best)
        else:
            finite = self._grads_finite() if grads is not None else None
            ledger.book(
                kept,
                values,
                grads,
                copy=not self.immutable_asks,
                grads_finite=finite,
                best=best,
            )
        ledger.close_iteration(reported)

    def stop(self) -> dict[str, Any]:
        """Reasons to stop, as a dict (empty while the run goes on).

        Every reason that applies: the method's own (``"nonfinite"``, convergence
        tests), and the ledger's ``"budget"`` (the next ask would not fit; the next
        points are asked to know their number), ``"max_iter"`` and ``"target"``.
        """
        reasons = self.ledger.limits()
        own = self._stop()
        if own:
            reasons.update(own)
        elif not reasons and self.ledger.budget is not None:
            if self._n_pending is None:
                self._pending_points()
            assert self._n_pending is not None
            reasons = self.ledger.budget_reason(self._n_pending)
        return reasons

    def recommend(self) -> np.ndarray:
        """A copy of the method's current estimate of the minimizer (iterate, mean, ...)."""
        return np.array(self._recommend(), dtype=np.float64, copy=True)

    def options(self) -> dict[str, Any]:
        """The options this optimizer runs with (chosen values in place of None).

        A step rule given as an object is described by its name and parameters.
        """
        out = {**self.config.as_dict(), **self._resolved_options()}
        return {k: describe(v) if isinstance(v, StepRule) else v for k, v in out.items()}

    def set_budget(self, budget: Any) -> None:
        """Change the budget of a run in progress (a resumed run).

        Raises
        ------
        InvalidOptionError
            If ``budget`` is not a positive integer or is less than the evaluations
            already told.
        """
        budget = check_budget(budget)
        if budget < self.ledger.nfev:
            raise InvalidOptionError(
                f"budget={budget} is less than the {self.ledger.nfev} evaluations this run "
                f"has already spent; give a budget of at least {self.ledger.nfev}"
            )
        if budget != self.ledger.budget:
            self.ledger.budget = budget
            self._budget_changed()

    def result(self) -> Result:
        """What the optimizer has found so far, from the values it was told.

        ``status`` is ``RUNNING`` while :meth:`stop` has no reason (without asking:
        a pending ask is used to check the budget), else the status of the reasons.
        """
        reasons = {**self.ledger.limits(), **self._stop()}
        if not reasons and self._n_pending is not None and self.ledger.budget is not None:
            reasons = self.ledger.budget_reason(self._n_pending)
        status, message = stop_status(reasons, self.ledger)
        res = build_result(
            self.ledger,
            x=self.ledger.best_x,
            fun=self.ledger.best_f,
            status=status,
            message=message,
            method=self.name,
            options=self.options(),
            notes=self.notes(),
        )
        res.update(self.extra())
        return res

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handed"] = []  # the caller's copies: not part of the state
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, nit={self.nit})"
