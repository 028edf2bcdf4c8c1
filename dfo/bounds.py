"""Box bounds: one parser for every way people write them, one :class:`Box` for the methods.

:func:`parse_bounds` accepts

- a :class:`scipy.optimize.Bounds` (its ``lb``, ``ub``; scalars broadcast),
- scipy's sequence of ``dim`` pairs ``[(lo, hi), ...]``, ``None`` meaning unbounded,
- a pair ``(lower, upper)`` of scalars or arrays of shape ``(dim,)``, ``None`` meaning
  unbounded on that side.

With two variables, two pairs of numbers could be either: tuples,
``[(lo_0, hi_0), (lo_1, hi_1)]``, are scipy's per-variable pairs (its idiom); lists or
arrays, ``([lo_0, lo_1], [hi_0, hi_1])``, are ``(lower, upper)``.

How the methods keep inside (no point outside the box is ever evaluated):

=====================  ===============================================================
method                 bounds handling
=====================  ===============================================================
cma-es                 pycma's own (``BoundTransform``)
nelder-mead, scipy     scipy's own (``bounds=``)
gradient steps         the iterate is projected onto the box after every step; the
                       probes of a gradient estimate (FD steps, SPSA perturbations)
                       are taken around the nearest point at least one probe step
                       inside
random-search          uniform in a finite box; Gaussian around the best point,
                       reflected into the box, otherwise
=====================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError

__all__ = ["Box", "parse_bounds"]


class Box:
    """A box ``lower <= x <= upper`` (``-inf`` / ``+inf`` where unbounded).

    Parameters
    ----------
    lower, upper : ndarray, shape (dim,)
        The bounds, ``lower < upper`` everywhere (checked by :func:`parse_bounds`).

    Attributes
    ----------
    lower, upper : ndarray, shape (dim,)
        Read-only copies.
    finite : bool
        Whether every bound is finite.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray) -> None:
        self.lower = np.array(lower, dtype=np.float64)
        self.upper = np.array(upper, dtype=np.float64)
        self.lower.flags.writeable = False
        self.upper.flags.writeable = False
        self.finite = bool(np.isfinite(self.lower).all() and np.isfinite(self.upper).all())

    @property
    def dim(self) -> int:
        """Number of variables."""
        return self.lower.size

    def contains(self, X: np.ndarray) -> bool:
        """Whether every row of ``X`` (or the point ``X``) is inside the box."""
        return bool(np.all((self.lower <= X) & (X <= self.upper)))

    def clip(self, X: np.ndarray) -> np.ndarray:
        """``X`` projected onto the box (a new array)."""
        return np.clip(X, self.lower, self.upper)

    def reflect(self, X: np.ndarray) -> np.ndarray:
        """``X`` reflected at the bounds into the box (a new array; clipped if need be)."""
        Y = np.array(X, dtype=np.float64)
        width = self.upper - self.lower
        finite = np.isfinite(width)
        lo = np.where(np.isfinite(self.lower), self.lower, 0.0)
        # one-sided bounds: mirror once; two-sided: fold with period 2 * width
        with np.errstate(invalid="ignore"):
            below = Y < self.lower
            Y = np.where(below & ~finite, 2 * self.lower - Y, Y)
            above = Y > self.upper
            Y = np.where(above & ~finite, 2 * self.upper - Y, Y)
            w = np.where(finite, width, 1.0)
            t = np.mod(Y - lo, 2 * w)
            folded = lo + np.where(t > w, 2 * w - t, t)
            Y = np.where(finite, folded, Y)
        return self.clip(Y)

    def inset(self, x: np.ndarray, margin: Any) -> np.ndarray:
        """The point nearest ``x`` at least ``margin`` inside every bound (if the box allows).

        Where the box is narrower than ``2 * margin``, the middle of the box.
        """
        margin = np.broadcast_to(np.asarray(margin, dtype=np.float64), x.shape)
        lo, hi = self.lower + margin, self.upper - margin
        mid = np.where(np.isfinite(self.lower + self.upper), 0.5 * (self.lower + self.upper), x)
        return np.where(lo <= hi, np.clip(x, lo, hi), mid)

    def pairs(self) -> list[tuple[float | None, float | None]]:
        """scipy's ``[(lo, hi), ...]`` with None for infinite bounds."""
        return [
            (None if np.isinf(lo) else float(lo), None if np.isinf(hi) else float(hi))
            for lo, hi in zip(self.lower, self.upper, strict=True)
        ]

    def to_scipy(self) -> Any:
        """The box as :class:`scipy.optimize.Bounds`."""
        from scipy.optimize import Bounds

        return Bounds(self.lower, self.upper)

    def as_dict(self) -> dict[str, list[float]]:
        """``{"lower": [...], "upper": [...]}`` (what a Result records)."""
        return {"lower": self.lower.tolist(), "upper": self.upper.tolist()}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Box)
            and np.array_equal(self.lower, other.lower)
            and np.array_equal(self.upper, other.upper)
        )

    def __hash__(self) -> int:
        return hash((self.lower.tobytes(), self.upper.tobytes()))

    def __repr__(self) -> str:
        return f"Box(lower={self.lower.tolist()}, upper={self.upper.tolist()})"


def _side(value: Any, dim: int, which: str, fill: float) -> np.ndarray:
    if value is None:
        return np.full(dim, fill)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidOptionError(
            f"the {which} bound must be None, a number or an array of shape ({dim},); "
            f"got {value!r:.60}"
        ) from None
    if arr.size == 1:
        arr = arr.reshape(())
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size != dim):
        raise InvalidOptionError(
            f"the {which} bound must be a number or an array of shape ({dim},); "
            f"got shape {arr.shape}"
        )
    return np.where(np.isnan(arr), np.nan, np.broadcast_to(arr, (dim,)))


def _pair_of_scalars(item: Any) -> bool:
    if isinstance(item, np.ndarray) or not isinstance(item, Sequence) or isinstance(item, str):
        return False
    if len(item) != 2:
        return False
    return all(v is None or np.ndim(v) == 0 for v in item)


def parse_bounds(bounds: Any, dim: int) -> Box | None:
    """``bounds`` in any of the accepted forms as a :class:`Box` (None for None).

    Parameters
    ----------
    bounds : scipy.optimize.Bounds, sequence of (lo, hi) pairs, (lower, upper) or None
        See the module docstring.
    dim : int
        Number of variables.

    Returns
    -------
    Box or None

    Raises
    ------
    InvalidOptionError
        A form not recognised, a nan bound, or ``lower >= upper`` somewhere (the
        message names the first such index).
        Also for arrays or a sequence of pairs of the wrong length.

    Examples
    --------
    >>> parse_bounds([(0, 1), (None, 5), (-1, None)], 3)
    Box(lower=[0.0, -inf, -1.0], upper=[1.0, 5.0, inf])
    >>> parse_bounds((0.0, [1.0, 2.0]), 2)
    Box(lower=[0.0, 0.0], upper=[1.0, 2.0])
    >>> import scipy.optimize
    >>> parse_bounds(scipy.optimize.Bounds(-1, 1), 2)
    Box(lower=[-1.0, -1.0], upper=[1.0, 1.0])
    """
    if bounds is None:
        return None
    if isinstance(bounds, Box):
        if bounds.dim != dim:
            raise InvalidOptionError(f"bounds are for {bounds.dim} variables; x0 has {dim}")
        return bounds
    lb, ub = getattr(bounds, "lb", None), getattr(bounds, "ub", None)
    if lb is not None and ub is not None:  # scipy.optimize.Bounds
        lower, upper = _side(lb, dim, "lower", -np.inf), _side(ub, dim, "upper", np.inf)
    elif (
        isinstance(bounds, Sequence)
        and not isinstance(bounds, str)
        and len(bounds) == dim
        and all(_pair_of_scalars(item) for item in bounds)
        and not (dim == 2 and not all(isinstance(v, tuple) for v in bounds))
    ):  # scipy's [(lo, hi), ...]
        lower = np.array([-np.inf if lo is None else lo for lo, _ in bounds], dtype=np.float64)
        upper = np.array([np.inf if hi is None else hi for _, hi in bounds], dtype=np.float64)
    else:
        if (
            isinstance(bounds, Sequence)
            and not isinstance(bounds, str)
            and len(bounds) != dim
            and len(bounds) > 0
            and all(_pair_of_scalars(item) for item in bounds)
            and (len(bounds) != 2 or all(isinstance(v, tuple) for v in bounds))
        ):
            raise InvalidOptionError(
                f"bounds has {len(bounds)} (lo, hi) pairs; x0 has {dim} entries"
            )
        try:
            lo_side, hi_side = bounds
        except (TypeError, ValueError):
            raise InvalidOptionError(
                f"bounds must be scipy.optimize.Bounds, a sequence of {dim} (lo, hi) pairs "
                f"or a pair (lower, upper) of numbers or arrays of shape ({dim},); "
                f"got {bounds!r:.80}"
            ) from None
        lower = _side(lo_side, dim, "lower", -np.inf)
        upper = _side(hi_side, dim, "upper", np.inf)
    for name, side in (("lower", lower), ("upper", upper)):
        if np.isnan(side).any():
            i = int(np.flatnonzero(np.isnan(side))[0])
            raise InvalidOptionError(f"the {name} bound must not be nan; it is at index {i}")
    bad = np.flatnonzero(~(lower < upper))
    if bad.size:
        i = int(bad[0])
        raise InvalidOptionError(
            f"bounds must have lower < upper in every coordinate; at index {i} "
            f"lower = {lower[i]:g}, upper = {upper[i]:g}"
            + (
                " (with two variables, two tuples are read as scipy's (lo, hi) per "
                "variable, two lists or arrays as (lower, upper))"
                if dim == 2 and isinstance(bounds, Sequence)
                else ""
            )
        )
    return Box(lower, upper)
