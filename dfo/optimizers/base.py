"""The ask/tell contract every iterative method in dfo implements.

The whole contract is this loop (written once, in :func:`dfo.minimize`)::

    opt = dfo.make_optimizer("spsa", x0, seed=0)
    while not opt.stop():
        X = opt.ask()                      # (k, dim) points to evaluate
        values = objective.evaluate_batch(X)
        opt.tell(X, values)                # or tell(X, values, grads) for gradient methods
    opt.result()

The public :meth:`Optimizer.ask` and :meth:`Optimizer.tell` do the bookkeeping
(validation, iteration count, best so far, non-finite values); subclasses fill
the small hooks :meth:`Optimizer._ask`, :meth:`Optimizer._tell` and
:meth:`Optimizer.recommend`. Optimizers hold all their state (random
generator included) as plain attributes, so they pickle.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any, ClassVar

import numpy as np

from dfo.exceptions import GradientNotAvailableError, ShapeError
from dfo.objective import as_float64, check_batch
from dfo.result import Result, Status

__all__ = ["Optimizer", "check_seed", "check_x0"]


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
        raise ShapeError(
            f"values must have shape ({k},), one per point of X; got shape {arr.shape}"
        )
    return arr.astype(np.float64, copy=False)


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


class Optimizer:
    """Base class of ask/tell optimizers.

    Parameters
    ----------
    x0 : array_like, shape (dim,)
        Starting point.
    seed : int or None
        Seed of the optimizer's :class:`numpy.random.Generator`.
    budget : int or None
        The run's evaluation budget, when known; some methods derive defaults from
        it (SPSA's stability constant ``A``). It is not enforced here.
    """

    #: registered name, set by :func:`dfo.register`
    name: ClassVar[str] = ""
    #: whether ``tell`` needs gradients (the runner then calls ``value_and_grad``)
    needs_gradient: ClassVar[bool] = False
    #: whether ``tell`` needs directional derivatives along :meth:`directions` (forward
    #: mode: the runner calls ``value_and_jvp`` and tells them in place of gradients)
    needs_jvp: ClassVar[bool] = False

    def __init__(self, x0: Any, *, seed: int | None = None, budget: int | None = None) -> None:
        self.x0 = check_x0(x0)
        self.dim = self.x0.size
        self.seed = check_seed(seed)
        if budget is not None:
            if isinstance(budget, bool) or not isinstance(budget, Integral):
                raise TypeError(f"budget must be None or a positive integer; got {budget!r}")
            if budget < 1:
                raise ValueError(f"budget must be None or a positive integer; got {budget}")
            budget = int(budget)
        self.budget = budget
        self.rng = np.random.default_rng(self.seed)
        self.nit = 0
        self.nfev = 0
        self.n_nonfinite = 0
        self.best_x = self.x0.copy()
        self.best_f = np.inf
        self.last_value = np.nan
        self._pending: np.ndarray | None = None
        self.new_sample = True

    # -- hooks for subclasses -----------------------------------------------
    def _ask(self) -> np.ndarray:
        raise NotImplementedError

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        """Update from the told values; return the value to report for this iteration."""
        raise NotImplementedError

    def recommend(self) -> np.ndarray:
        """The method's current estimate of the minimizer (its iterate, mean, ...)."""
        return self.best_x

    def _stop(self) -> dict[str, Any]:
        return {}

    def directions(self) -> np.ndarray:
        """For ``needs_jvp`` methods: one tangent direction per point asked, ``(k, dim)``."""
        raise NotImplementedError

    # -- public API ---------------------------------------------------------
    def ask(self) -> np.ndarray:
        """Points to evaluate next, shape ``(k, dim)``.

        Asking again before telling returns the same points, so a caller whose
        evaluation failed can retry.
        """
        if self._pending is None:
            self._pending = self._ask()
        return self._pending

    def tell(self, X: Any, values: Any, grads: Any = None) -> None:
        """Report the values (and gradients, for gradient methods) at the points ``X``.

        Raises
        ------
        ShapeError
            If ``X`` or ``values`` do not match each other or the dimension.
        GradientNotAvailableError
            If the method needs gradients and ``grads`` is None.
        """
        X = check_batch(X, self.dim)
        values = _check_values(values, X.shape[0])
        if self.needs_gradient:
            if grads is None:
                raise GradientNotAvailableError(
                    f"{self.name} needs gradients: call tell(X, values, grads)"
                )
            grads = check_batch(grads, self.dim, "grads")
            if grads.shape[0] != X.shape[0]:
                raise ShapeError(
                    f"grads must have one row per point ({X.shape[0]}); got {grads.shape[0]}"
                )
        if self.needs_jvp:
            if grads is None:
                raise GradientNotAvailableError(
                    f"{self.name} needs directional derivatives along directions(): call "
                    "tell(X, values, dderivs)"
                )
            grads = _check_values(grads, X.shape[0])
        if self._pending is not None and X.shape != self._pending.shape:
            raise ShapeError(
                f"tell expects the {self._pending.shape[0]} points that ask returned; "
                f"got {X.shape[0]}"
            )
        # best so far; the common case (all values finite) costs one or two reductions
        if values.size <= 16:  # small batches (an SPSA pair): cheaper in Python
            listed = values.tolist()
            all_finite = all(map(math.isfinite, listed))
            i = listed.index(min(listed)) if all_finite and listed else -1
        else:
            i = int(values.argmin())  # the first nan, if any
            all_finite = math.isfinite(values[i]) and math.isfinite(values.max())
        if not all_finite and values.size:
            finite = np.isfinite(values)
            n_bad = X.shape[0] - int(np.count_nonzero(finite))
            self.n_nonfinite += n_bad
            i = int(np.argmin(np.where(finite, values, np.inf))) if n_bad < X.shape[0] else -1
        if i >= 0 and values[i] < self.best_f:
            self.best_f = float(values[i])
            self.best_x = X[i].copy()
        self.last_value = self._tell(X, values, grads)
        self._pending = None
        self.nfev += X.shape[0]
        self.nit += 1

    def stop(self) -> dict[str, Any]:
        """Reasons to stop, as a dict (empty while the method wants to go on)."""
        return self._stop()

    def options(self) -> dict[str, Any]:
        """The hyperparameters this optimizer runs with."""
        return {}

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

    def result(self) -> Result:
        """What the optimizer has found so far, from the values it was told."""
        reasons = self.stop()
        status = Status.CONVERGED if reasons else Status.MAX_ITER
        return Result(
            x=self.best_x.copy(),
            fun=self.best_f,
            nfev=self.nfev,
            nit=self.nit,
            n_nonfinite=self.n_nonfinite,
            success=bool(np.isfinite(self.best_f)),
            status=status,
            message="; ".join(f"{k}: {v}" for k, v in reasons.items()) or "running",
            method=self.name,
            options=self.options(),
            **self.extra(),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, nit={self.nit})"
