"""The objective interface shared by every method in dfo.

An :class:`Objective` is what is minimized. It evaluates one point
(``obj(x) -> float``), a batch of points (``obj.evaluate_batch(X) -> (k,)``),
and, where it has one, its gradient (``obj.value_and_grad(x)``) or its directional
derivative along ``v`` (forward mode, ``obj.value_and_jvp(x, v)``).

Randomness (a minibatch, simulation noise) is bound per iteration with
:meth:`Objective.realization`: the run loop draws one realization from its seeded
generator and evaluates every point of that iteration on it, so that the
``n + 1`` probes of a finite-difference gradient, SPSA's ``+-`` pair and one
CMA-ES generation all see the same minibatch (common random numbers).
Deterministic objectives return themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np

from dfo.exceptions import (
    GradientNotAvailableError,
    InvalidOptionError,
    ObjectiveOutputError,
    ObjectiveOutputTypeError,
    ShapeError,
)
from dfo.options import check_flag
from dfo.sampling import EpochSampler

__all__ = [
    "DTYPES",
    "FunctionObjective",
    "Objective",
    "all_finite",
    "as_objective",
    "check_dtype",
    "square_norm",
]

#: float types an objective (a network) can compute in
DTYPES = ("float64", "float32")


def as_float64(value: Any) -> np.ndarray:
    """``value`` as a float64 array; TypeError or ValueError if it holds non-real numbers.

    Unlike ``np.asarray(value, dtype=np.float64)`` it refuses complex numbers (numpy
    would drop the imaginary part with a ComplexWarning). Callers turn the error into
    a message that says what was expected.
    """
    if type(value) is np.ndarray and value.dtype == np.float64:
        return value
    arr = np.asarray(value)
    if arr.dtype.kind not in "biufO":
        raise TypeError(f"expected real numbers; got an array of dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def square_norm(a: np.ndarray) -> float:
    """``sum(a**2)``: finite exactly when every entry of ``a`` is, unless it overflows.

    The per-iteration finiteness test of a gradient: one read of ``a``, no temporary
    (``np.vdot``, which also neither warns nor raises on overflow). A nan or inf entry
    makes it nan or inf; so does an overflow of finite entries beyond about 1e154,
    which callers tell apart with :func:`all_finite`. When finite, its square root
    bounds every ``|a_i|``.

    Parameters
    ----------
    a : ndarray of float

    Returns
    -------
    float
    """
    return float(np.vdot(a, a))


def all_finite(a: np.ndarray) -> bool:
    """Whether every entry of ``a`` is finite (one read of ``a`` in the common case).

    Parameters
    ----------
    a : ndarray of float

    Returns
    -------
    bool
    """
    return math.isfinite(square_norm(a)) or bool(np.isfinite(a).all())


def as_real(value: Any, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """``value`` as an array of the float type ``dtype``, refusing non-real numbers.

    :func:`as_float64` for any float type: an array already of ``dtype`` is returned
    as it is (no copy).
    """
    if type(value) is np.ndarray and value.dtype == dtype:
        return value
    return as_float64(value).astype(dtype, copy=False)


def check_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """``dtype`` as a float type dfo computes in (float64 or float32), or raise.

    Parameters
    ----------
    dtype : str, numpy type or numpy.dtype
        ``"float64"``, ``np.float32``, ...
    name : str, default "dtype"
        Name of the option in the error message.

    Returns
    -------
    numpy.dtype

    Raises
    ------
    InvalidOptionError
        If ``dtype`` is not float64 or float32 (a name, a numpy type or a dtype).
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise InvalidOptionError(
            f"{name} must be one of {list(DTYPES)} (a name or a numpy type); got {dtype!r}"
        )
    return dt


def check_point(x: Any, dim: int, name: str = "x") -> np.ndarray:
    """Return ``x`` as a float64 vector of shape ``(dim,)`` or raise :class:`ShapeError`."""
    try:
        arr = as_float64(x)
    except OverflowError:
        raise ValueError(
            f"{name} holds an integer too large for a float (beyond 1.8e308)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be an array of real numbers of shape ({dim},); got {type(x).__name__}"
        ) from exc
    if arr.shape != (dim,):
        raise ShapeError(f"{name} must have shape ({dim},); got shape {arr.shape}")
    return arr


def check_batch(X: Any, dim: int, name: str = "X", keep: np.dtype | None = None) -> np.ndarray:
    """Return ``X`` as a float64 array of shape ``(k, dim)`` or raise :class:`ShapeError`.

    An array of the float type ``keep`` (an objective's working ``dtype``) is kept
    in that type rather than widened.
    """
    try:
        arr = (
            X if keep is not None and type(X) is np.ndarray and X.dtype == keep else as_float64(X)
        )
    except OverflowError:
        raise ValueError(
            f"{name} holds an integer too large for a float (beyond 1.8e308)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be an array of real numbers of shape (k, {dim}); got {type(X).__name__}"
        ) from exc
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ShapeError(f"{name} must have shape (k, {dim}); got shape {arr.shape}")
    return arr


def mark_failed_row(exc: BaseException, row: int) -> None:
    """Record on ``exc`` which row of a batch raised, for the evaluator's note.

    Objectives that evaluate a batch row by row call this when a row raises, so
    that the error names the point that failed.
    """
    try:
        exc._dfo_row = row  # type: ignore[attr-defined]
    except AttributeError:  # an exception type without a __dict__
        pass


def _digits(value: Any) -> int:
    return len(str(abs(int(value))))


def to_scalar(value: Any, source: str = "the objective") -> float:
    """Convert what an objective returned for one point to a float, or raise.

    Non-finite values (nan, inf) are allowed: methods deal with them.
    """
    if type(value) is float:  # the common case
        return value
    if isinstance(value, Real | np.bool_ | np.number) and not isinstance(
        value, np.complexfloating
    ):
        try:
            return float(value)
        except OverflowError:
            raise ObjectiveOutputError(
                f"{source} returned an integer too large for a float ({_digits(value)} "
                "digits); return a float (inf for too large)"
            ) from None
    if isinstance(value, np.ndarray) and value.size == 1 and value.ndim <= 1:
        if value.dtype.kind in "biuf":
            return float(value.reshape(()))
        raise ObjectiveOutputTypeError(
            f"{source} must return a real number; got an array of dtype {value.dtype}"
        )
    if isinstance(value, np.ndarray | list | tuple):
        try:
            what = f"an array of shape {np.shape(value)}"
        except ValueError:  # a ragged nested list
            what = f"a ragged {type(value).__name__}"
        raise ObjectiveOutputError(f"{source} must return a scalar for one point; got {what}")
    raise ObjectiveOutputTypeError(
        f"{source} must return a real number; got {type(value).__name__}: {value!r:.60}"
    )


def to_gradient(grad: Any, dim: int) -> np.ndarray:
    """Convert what an objective returned as its gradient to a ``(dim,)`` float64 array.

    Raises :class:`~dfo.exceptions.ObjectiveOutputError` (a TypeError too for what is
    not real numbers) that says what was expected.
    """
    try:
        arr = as_float64(grad)
    except OverflowError:
        raise ObjectiveOutputError(
            "the gradient holds an integer too large for a float (beyond 1.8e308); "
            "return float64 numbers (inf for too large)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ObjectiveOutputTypeError(
            f"the gradient must be a real vector of shape ({dim},); "
            f"got {type(grad).__name__}: {grad!r:.60}"
        ) from exc
    if arr.shape != (dim,):
        raise ObjectiveOutputError(f"the gradient must have shape ({dim},); got shape {arr.shape}")
    return arr


def to_values(values: Any, k: int, source: str = "the objective") -> np.ndarray:
    """Convert what an objective returned for ``k`` points to a ``(k,)`` float64 array."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64 and values.shape == (k,):
        return values
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise ObjectiveOutputError(
            f"{source} must return {k} real numbers for a batch of {k}; got {values!r:.60}"
        ) from exc
    if arr.dtype.kind not in "biuf":
        raise ObjectiveOutputTypeError(
            f"{source} must return real numbers for a batch; got an array of dtype {arr.dtype}"
        )
    if arr.shape != (k,):
        raise ObjectiveOutputError(
            f"{source} must return an array of shape ({k},) for a batch of {k} points; "
            f"got shape {arr.shape}"
        )
    return arr.astype(np.float64, copy=False)


class Objective:
    """A function to minimize over ``R^dim``.

    Subclasses implement :meth:`_evaluate_batch` (vectorized over rows) and, when
    they have one, :meth:`_value_and_grad` with ``has_gradient = True`` and
    :meth:`_value_and_jvp` with ``has_jvp = True``. Stochastic objectives override
    :meth:`realization`.

    Attributes
    ----------
    dim : int
        Number of variables.
    has_gradient : bool
        Whether :meth:`value_and_grad` is available.
    has_jvp : bool
        Whether :meth:`value_and_jvp` is available: forward mode where the
        objective has one, else ``grad @ v`` from its gradient (then True when
        ``has_gradient`` is).
    is_stochastic : bool
        Whether :meth:`realization` returns something other than ``self``.
    dtype : numpy.dtype
        The float type the objective computes in (float64 unless it says otherwise,
        e.g. a float32 network). Finite-difference steps are derived from its
        epsilon, and :meth:`evaluate_batch` passes points of this type through
        unconverted.
    """

    dim: int
    has_gradient: bool = False
    is_stochastic: bool = False
    dtype: np.dtype = np.dtype(np.float64)

    def __init__(self, dim: int) -> None:
        if not isinstance(dim, Integral) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be a positive integer; got {dim!r}")
        self.dim = int(dim)

    # -- hooks ---------------------------------------------------------------
    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        """Values of the rows of ``X`` (shape ``(k, dim)``, float64 or ``dtype``) as ``(k,)``."""
        raise NotImplementedError

    def _value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        raise GradientNotAvailableError(
            f"{type(self).__name__} has no gradient; use a derivative-free method"
        )

    def _value_and_jvp(self, x: np.ndarray, v: np.ndarray) -> tuple[float, float]:
        # without forward mode of its own: the gradient's projection (at a gradient's cost)
        value, grad = self.value_and_grad(x)
        with np.errstate(invalid="ignore", over="ignore"):  # a non-finite gradient
            return value, float(grad @ v)

    @property
    def has_jvp(self) -> bool:
        """Whether :meth:`value_and_jvp` is available; subclasses with forward mode set it."""
        return self.has_gradient

    # -- public API ----------------------------------------------------------
    def __call__(self, x: Any) -> float:
        """Value at one point ``x`` of shape ``(dim,)``."""
        x = check_point(x, self.dim)
        return float(self.evaluate_batch(x[None, :])[0])

    def evaluate_batch(self, X: Any) -> np.ndarray:
        """Values at the rows of ``X`` (shape ``(k, dim)``), as a float64 array ``(k,)``."""
        X = check_batch(X, self.dim, keep=self.dtype)
        return to_values(self._evaluate_batch(X), X.shape[0], type(self).__name__)

    def value_and_grad(self, x: Any) -> tuple[float, np.ndarray]:
        """Value and gradient at ``x``.

        Raises
        ------
        GradientNotAvailableError
            If the objective has no gradient (``has_gradient`` is False).
        """
        if not self.has_gradient:
            raise GradientNotAvailableError(
                f"{type(self).__name__} has no gradient (has_gradient is False)"
            )
        x = check_point(x, self.dim)
        value, grad = self._value_and_grad(x)
        return to_scalar(value, "the gradient function's value"), to_gradient(grad, self.dim)

    def value_and_jvp(self, x: Any, v: Any) -> tuple[float, float]:
        """Value at ``x`` and the directional derivative ``grad f(x) @ v`` (forward mode).

        Raises
        ------
        GradientNotAvailableError
            If the objective has no forward mode (``has_jvp`` is False).
        """
        if not self.has_jvp:
            raise GradientNotAvailableError(
                f"{type(self).__name__} has no directional derivative (has_jvp is False)"
            )
        x = check_point(x, self.dim)
        v = check_point(v, self.dim, "v")
        value, dderiv = self._value_and_jvp(x, v)
        return to_scalar(value, "the objective's value"), to_scalar(
            dderiv, "the directional derivative"
        )

    def realization(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Objective:
        """Fix the objective's randomness for one iteration.

        Every evaluation of one iteration (one gradient estimate, one population)
        goes through the returned objective. Deterministic objectives return ``self``.
        ``sampler``, for objectives that have one (:meth:`sampler`), is the run's
        state of the minibatch stream: the realization takes its next minibatch.
        """
        return self

    def gradient_stream(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Callable[[np.ndarray], tuple[Any, Any]]:
        """``f(x) -> (value, grad)`` on a new realization at every call (the lean loop's).

        :func:`dfo.minimize` gets it once per gradient run whose iterations nothing
        watches (:mod:`dfo.run.lean`) and calls it once per iteration with the
        iterate, which the function must not change. Each call draws the realization
        an iteration of the run loop would (``realization(rng, sampler)``; ``self``
        when deterministic) and returns its value and gradient at ``x``; the caller
        checks them as :meth:`value_and_grad`'s. The default evaluates a copy of
        ``x`` through the realization's gradient; objectives that can do it cheaper
        (without copies or per-call objects) override it with the same numbers.
        """
        stochastic = self.is_stochastic

        def value_and_grad(x: np.ndarray) -> tuple[Any, Any]:
            sample = self
            if stochastic and sampler is None:
                sample = self.realization(rng)
            elif stochastic:
                sample = self.realization(rng, sampler)
            point = x.copy()  # the iterate stays the run's
            if type(sample).value_and_grad is Objective.value_and_grad:  # checked once
                return sample._value_and_grad(point)
            return sample.value_and_grad(point)

        return value_and_grad

    def jvp_stream(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]:
        """``f(x, v) -> (value, grad @ v)`` on a new realization at every call (the lean loop's).

        :meth:`gradient_stream` for forward mode: one call per iteration of a
        forward-gradient run with the iterate and the iteration's direction, which
        the function must not change, on the realization the run loop would draw.
        The caller checks the value and the directional derivative as
        :meth:`value_and_jvp`'s. The default evaluates copies of ``x`` and ``v``
        through the realization's forward mode; objectives that can do it cheaper
        override it with the same numbers.
        """
        stochastic = self.is_stochastic

        def value_and_jvp(x: np.ndarray, v: np.ndarray) -> tuple[Any, Any]:
            sample = self
            if stochastic and sampler is None:
                sample = self.realization(rng)
            elif stochastic:
                sample = self.realization(rng, sampler)
            point, tangent = x.copy(), v.copy()  # the iterate and direction stay the run's
            if type(sample).value_and_jvp is Objective.value_and_jvp:  # checked once
                return sample._value_and_jvp(point, tangent)
            return sample.value_and_jvp(point, tangent)

        return value_and_jvp

    def batch_stream(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Callable[[np.ndarray], Any]:
        """``f(X) -> values`` on a new realization at every call (the lean loop's).

        :meth:`gradient_stream` for methods that only evaluate: one call per
        iteration of an spsa run with the iteration's points ``(k, dim)``, on the
        realization the run loop would draw. The caller checks the values as the
        evaluator does. The default is the realization's :meth:`evaluate_batch`;
        objectives that can do it cheaper (without per-call objects) override it
        with the same numbers.
        """
        stochastic = self.is_stochastic

        def values(X: np.ndarray) -> Any:
            sample = self
            if stochastic and sampler is None:
                sample = self.realization(rng)
            elif stochastic:
                sample = self.realization(rng, sampler)
            return sample.evaluate_batch(X)

        return values

    def sampler(self) -> EpochSampler | None:
        """A fresh minibatch stream for a run (None: the realizations need no state).

        :func:`dfo.minimize` keeps it for the whole run (and in checkpoints) and
        passes it to every :meth:`realization`; see :mod:`dfo.sampling`.
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class FunctionObjective(Objective):
    """An :class:`Objective` around a plain callable; see :func:`as_objective`.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float`` for ``x`` of shape ``(dim,)``; with ``batched=True``,
        ``fun(X) -> (k,)`` for ``X`` of shape ``(k, dim)``; with ``stochastic=True``,
        ``fun(x, rng)`` (or ``fun(X, rng)``) with a :class:`numpy.random.Generator`.
    dim : int
        Number of variables (a positive integer).
    batched : bool, default False
        Whether ``fun`` evaluates a whole batch of rows at once.
    grad : callable, optional
        ``grad(x) -> (dim,)``, the gradient at one point; it sets ``has_gradient``
        and enables :meth:`value_and_grad` (whose value comes from ``fun``) and so
        :meth:`value_and_jvp` (``grad(x) @ v``).
    stochastic : bool, default False
        Whether ``fun`` takes a generator as its second argument. Every call gets
        a fresh generator with one seed: 0 for the objective itself, one drawn from
        the run's generator for each :meth:`realization`, so all points of one
        iteration see the same random numbers.
    name : str, optional
        Name used in messages and the repr; defaults to ``fun.__name__``.

    Raises
    ------
    ValueError
        If ``dim`` is not a positive integer.
    TypeError
        If ``fun`` is not callable, or ``grad`` is neither callable nor None.

    Examples
    --------
    >>> import numpy as np
    >>> obj = FunctionObjective(lambda x: float(x @ x), 2, grad=lambda x: 2 * x)
    >>> obj.value_and_grad(np.array([1.0, 2.0]))
    (5.0, array([2., 4.]))
    >>> def noisy(x, rng):
    ...     return float(x @ x + rng.normal())
    >>> draw = FunctionObjective(noisy, 2, stochastic=True).realization(np.random.default_rng(0))
    >>> draw(np.zeros(2)) == draw(np.zeros(2))  # one realization, one noise
    True
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        dim: int,
        *,
        batched: bool = False,
        grad: Callable[[np.ndarray], Any] | None = None,
        stochastic: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(dim)
        if not callable(fun):
            raise TypeError(f"the objective must be callable; got {type(fun).__name__}")
        if grad is not None and not callable(grad):
            raise TypeError(f"grad must be callable or None; got {type(grad).__name__}")
        self.fun = fun
        self.batched = check_flag("batched", batched)
        self.grad = grad
        self.has_gradient = grad is not None
        self.is_stochastic = check_flag("stochastic", stochastic)
        self.name = name or getattr(fun, "__name__", type(fun).__name__)
        self._seed: int | None = None

    def _call(self, x: np.ndarray) -> Any:
        if self.is_stochastic:
            seed = 0 if self._seed is None else self._seed
            return self.fun(x, np.random.default_rng(seed))
        return self.fun(x)

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        if self.batched:
            return to_values(self._call(X), X.shape[0], f"objective {self.name!r}")
        out = np.empty(X.shape[0])
        call = self.fun if not self.is_stochastic else self._call
        i = 0
        try:
            for i, x in enumerate(X):
                value = call(x)
                # a Python float (the common case) needs no conversion
                if type(value) is not float:
                    value = to_scalar(value, f"objective {self.name!r}")
                out[i] = value
        except Exception as exc:
            mark_failed_row(exc, i)
            raise
        return out

    def _value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        assert self.grad is not None  # has_gradient
        return float(self._evaluate_batch(x[None, :])[0]), self.grad(x)

    def realization(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> FunctionObjective:
        if not self.is_stochastic:
            return self
        bound = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound._seed = int(rng.integers(2**63))
        return bound

    def __repr__(self) -> str:
        return f"FunctionObjective({self.name}, dim={self.dim})"


def as_objective(
    fun: Callable[..., Any] | Objective,
    dim: int | None = None,
    *,
    batched: bool = False,
    grad: Callable[[np.ndarray], Any] | None = None,
    stochastic: bool = False,
) -> Objective:
    """Wrap a plain callable as an :class:`Objective`.

    Parameters
    ----------
    fun : callable or Objective
        ``fun(x) -> float`` for ``x`` of shape ``(dim,)``; with ``batched=True``,
        ``fun(X) -> (k,)`` for ``X`` of shape ``(k, dim)``; with ``stochastic=True``
        it takes a second argument, a :class:`numpy.random.Generator`, and every
        evaluation of one iteration gets a generator with the same seed (common
        random numbers). An :class:`Objective` is returned unchanged.
    dim : int
        Number of variables (required for a callable).
    batched : bool, default False
        Whether ``fun`` evaluates a whole batch at once.
    grad : callable, optional
        ``grad(x) -> (dim,)`` gradient, enabling gradient-based methods.
    stochastic : bool, default False
        Whether ``fun`` takes a generator as its second argument.

    Returns
    -------
    Objective

    Raises
    ------
    TypeError
        If ``fun`` or ``grad`` is not callable, or ``fun`` returns a non-number.
    ObjectiveOutputError
        If ``fun`` returns an array of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> obj = as_objective(lambda x: float(np.sum(x**2)), dim=3)
    >>> obj(np.ones(3))
    3.0
    >>> obj.evaluate_batch(np.zeros((2, 3)))
    array([0., 0.])
    """
    if isinstance(fun, Objective):
        if dim is not None and dim != fun.dim:
            raise ShapeError(f"dim={dim} was given for an objective of dimension {fun.dim}")
        return fun
    if dim is None:
        raise TypeError("as_objective needs dim= (the number of variables) for a plain callable")
    return FunctionObjective(fun, dim, batched=batched, grad=grad, stochastic=stochastic)
