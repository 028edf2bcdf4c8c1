"""Losses on a network's outputs, each forward beside its backward.

Both losses are means over the batch, so their values do not grow with the
batch size:

``"cross_entropy"``
    Softmax cross-entropy with integer class labels ``y`` in ``[0, n_out)``:
    ``mean_i [logsumexp(z_i) - z_i[y_i]]``. The log-sum-exp subtracts the row
    maximum whenever the plain sum of exponentials would overflow or underflow, so
    logits of any finite size (``1e4``, ``-1e300``) give a finite loss and gradient.
    The gradient with respect to the logits is ``(softmax(z) - onehot(y)) / batch``,
    and its directional derivative along a tangent ``dz`` of the logits is
    ``mean_i [softmax(z_i) . dz_i - dz_i[y_i]]``.
``"mse"``
    Half the squared error summed over outputs, averaged over the batch:
    ``mean_i 0.5 * ||out_i - y_i||^2``, with ``y`` of shape ``(batch, n_out)``
    (or ``(batch,)`` when ``n_out == 1``). The gradient with respect to the
    outputs is ``(out - y) / batch``; along a tangent ``dout``, the directional
    derivative is ``mean_i (out_i - y_i) . dout_i``.

Every function here assumes its inputs were validated by :meth:`Loss.check_targets`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError, ShapeError, lookup
from dfo.objective import as_float64

__all__ = ["LOSSES", "Loss", "check_labels", "get_loss"]


# -- cross-entropy ------------------------------------------------------------------
def check_labels(y: Any, batch: int, n_out: int, name: str = "y") -> np.ndarray:
    """Return class labels ``y`` as an ``intp`` vector of shape ``(batch,)``, or raise.

    Float arrays are accepted when every entry is a whole number.

    Parameters
    ----------
    y : array_like
        Class labels, one per row of the batch.
    batch : int
        Number of rows the labels must match.
    n_out : int
        Number of classes (the network's output width); labels lie in ``[0, n_out)``.
    name : str, default "y"
        Name used in error messages.

    Returns
    -------
    ndarray of intp, shape (batch,)

    Raises
    ------
    ShapeError
        If ``y`` is not a vector of length ``batch``.
    TypeError
        If ``y`` is not numeric (booleans are refused too).
    ValueError
        If a label is not a whole number or lies outside ``[0, n_out)``.
    """
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise ShapeError(
            f"{name} must be a vector of {batch} integer class labels, shape ({batch},); "
            f"got a ragged {type(y).__name__}"
        ) from exc
    if arr.ndim != 1 or arr.shape[0] != batch:
        raise ShapeError(
            f"{name} must be a vector of {batch} integer class labels, shape ({batch},); "
            f"got shape {arr.shape}"
        )
    kind = arr.dtype.kind
    if kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))][0]
            raise ValueError(
                f"{name} must hold integer class labels; got the non-integer value {float(bad)!r}"
            )
    elif kind not in "iu":
        raise TypeError(
            f"{name} must hold integer class labels; got an array of dtype {arr.dtype}"
        )
    if batch:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= n_out:
            raise ValueError(
                f"{name} must hold class labels in [0, {n_out}) (one class per output unit); "
                f"got labels in [{lo:g}, {hi:g}]"
            )
    return arr.astype(np.intp, copy=False)


def _exp_sums(
    z: np.ndarray, overwrite: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(e, s, m)`` for logits ``z`` (``(..., n_out, batch)``; left intact unless ``overwrite``).

    ``e = exp(z - m)`` (a new array, or ``z`` itself with ``overwrite``), ``s`` its
    column sums (``(..., batch)``) and ``m`` the column maximum (``(..., 1, batch)``),
    which keeps the exponentials in range for logits of any finite size. The shift is
    taken only when it matters: ``exp(z)`` is computed first, and when every column sum
    is finite and far above the smallest normal number (no exponential overflowed,
    none of the terms that count underflowed) ``m`` is None and the sums are kept, two
    passes fewer. Otherwise (an overflow, a column of very negative logits, a nan) the
    shifted form is computed from ``z``. A large stack that may be overwritten is first
    checked for moderate logits (``|z| < log(max float) / 2``, so that no sum can leave
    the range) and then exponentiated in place, in cache: the same decision, the same
    values.
    """
    if overwrite and z.nbytes > _IN_PLACE_BYTES:
        limit = _EXP_LIMIT[z.dtype.char]
        if -limit < np.minimum.reduce(z, axis=None) and np.maximum.reduce(z, axis=None) < limit:
            np.exp(z, out=z)
            return z, np.add.reduce(z, axis=-2), None
    e = np.exp(z)
    s = np.add.reduce(e, axis=-2)
    if (
        _SUM_FLOOR[z.dtype.char] < np.minimum.reduce(s, axis=None)
        and np.maximum.reduce(s, axis=None) < np.inf
    ):  # (a nan fails the first test: shifted)
        return e, s, None
    m = z.max(axis=-2, keepdims=True)
    np.subtract(z, m, out=e)
    np.exp(e, out=e)
    return e, np.add.reduce(e, axis=-2), m


#: stacks of logits above this size are exponentiated in place when they may be
#: (a second array of their size would no longer share the cache with them)
_IN_PLACE_BYTES = 2**18
#: logits below this size in magnitude give column sums in range, whatever n_out
_EXP_LIMIT = {t: 0.5 * float(np.log(np.finfo(t).max)) for t in "fd"}
#: smallest column sum kept unshifted: ``tiny / eps``, so that terms lost to underflow
#: (each below ``tiny``) change a kept sum by less than ``n_out * eps**2`` relative
_SUM_FLOOR = {t: float(np.finfo(t).tiny / np.finfo(t).eps) for t in "fd"}


@functools.lru_cache(maxsize=32)
def _columns(batch: int) -> np.ndarray:
    """``arange(batch)``, read-only and made once per batch size (to index ``z[y, cols]``)."""
    cols = np.arange(batch)
    cols.flags.writeable = False
    return cols


def _ce_population(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    # z: (k, n_out, batch) logits of k networks; may be overwritten. One fused pass:
    # mean_i [log sum_c exp(z_ci) - z_yi i].
    b = z.shape[-1]
    zy = z[..., y, _columns(b)]
    _, s, m = _exp_sums(z, overwrite=True)
    np.log(s, out=s)
    s -= zy
    if m is not None:
        s += m[..., 0, :]
    return np.add.reduce(s, axis=-1) / b


def _ce_forward(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(value, e, s)`` of logits ``z`` (``(n_out, batch)``, left intact).

    ``e = exp(z - m)`` and ``s`` its column sums, as in :func:`_exp_sums`:
    ``softmax(z) = e / s``. The value is ``mean_i [log s_i + m_i - z_yi i]``.
    """
    b = z.shape[1]
    e, s, m = _exp_sums(z)
    per_sample = np.log(s)
    per_sample -= z[y, _columns(b)]
    if m is not None:
        per_sample += m[0]
    return float(np.add.reduce(per_sample) / b), e, s


def _ce_value_and_grad(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    # z: (n_out, batch) logits; left intact. Returns dL/dz of the same layout.
    b = z.shape[1]
    value, e, s = _ce_forward(z, y)
    # backward: dL/dz = (softmax(z) - onehot(y)) / b
    s *= b
    np.divide(e, s, out=e)
    np.subtract.at(e, (y, _columns(b)), e.dtype.type(1.0 / b))  # e[y, cols] -= 1 / b
    return value, e


def _ce_value_and_jvp(z: np.ndarray, y: np.ndarray, dz: np.ndarray) -> tuple[float, np.ndarray]:
    # z: (n_out, batch) logits, left intact; dz: (..., n_out, batch) tangents of them.
    b = z.shape[1]
    value, e, s = _ce_forward(z, y)
    # tangent: dL = mean_i [softmax(z_i) . dz_i - dz_i[y_i]]
    expected = np.einsum("cb,...cb->...b", e, dz)
    expected /= s
    expected -= dz[..., y, _columns(b)]
    return value, np.add.reduce(expected, axis=-1) / b


def _ce_check(y: Any, batch: int, n_out: int, name: str = "y") -> np.ndarray:
    if n_out < 2:
        raise InvalidOptionError(
            f"loss='cross_entropy' needs one output unit per class (at least 2); the network "
            f"has {n_out} output. Use loss='mse' for a single output."
        )
    return check_labels(y, batch, n_out, name)


# -- mean squared error -----------------------------------------------------------
def _mse_check(y: Any, batch: int, n_out: int, name: str = "y") -> np.ndarray:
    try:
        arr = as_float64(y)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be an array of real targets for loss='mse'; got {type(y).__name__}"
        ) from exc
    if arr.ndim == 1 and n_out == 1 and arr.shape[0] == batch:
        arr = arr[:, None]
    if arr.shape != (batch, n_out):
        extra = f" or ({batch},)" if n_out == 1 else ""
        raise ShapeError(
            f"{name} must have shape ({batch}, {n_out}){extra} for loss='mse'; "
            f"got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite; got nan or inf")
    return arr


def _mse_value_and_grad(out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    # out left intact; returns dL/dout of the same (n_out, batch) layout.
    b = out.shape[1]
    r = out - y.T
    flat = r.ravel()
    value = float(0.5 * np.dot(flat, flat) / b)
    # backward: dL/dout = (out - y) / b
    r *= 1.0 / b
    return value, r


def _mse_value_and_jvp(
    out: np.ndarray, y: np.ndarray, dout: np.ndarray
) -> tuple[float, np.ndarray]:
    # out: (n_out, batch), left intact; dout: (..., n_out, batch) tangents of it.
    b = out.shape[1]
    r = out - y.T
    value = float(0.5 * np.dot(r.ravel(), r.ravel()) / b)
    # tangent: dL = mean_i (out_i - y_i) . dout_i
    return value, np.einsum("cb,...cb->...", r, dout) / b


def _mse_population(out: np.ndarray, y: np.ndarray) -> np.ndarray:
    # out: (k, n_out, batch) outputs of k networks; overwritten.
    b = out.shape[-1]
    np.subtract(out, y.T, out=out)
    np.square(out, out=out)
    return 0.5 * np.add.reduce(out, axis=(-2, -1)) / b


@dataclass(frozen=True, eq=False)
class Loss:
    """A loss on network outputs: value, value with gradient, and a population form.

    Attributes
    ----------
    name : str
        ``"cross_entropy"`` or ``"mse"``.
    check_targets : callable
        ``check_targets(y, batch, n_out, name="y") -> y`` validates and normalizes the
        targets (labels as ``intp``; mse targets as float64 ``(batch, n_out)``).
    population : callable
        ``population(outs, y) -> (k,)`` for the stacked outputs ``(k, n_out, batch)``
        of ``k`` networks on the same inputs; overwrites ``outs``. The one definition
        of the loss's value: one network is a stack of one.
    value_and_grad : callable
        ``value_and_grad(out, y) -> (float, dL/dout)`` for one network's outputs
        ``(n_out, batch)``; leaves ``out`` intact.
    value_and_jvp : callable
        ``value_and_jvp(out, y, dout) -> (float, dL)``: the value and its directional
        derivatives along the tangents ``dout`` of the outputs (forward mode), shape
        ``(..., n_out, batch)`` -> ``dL`` of shape ``(...)``; leaves ``out`` intact.

    Notes
    -----
    Outputs are held transposed, one column per sample: ``out`` has shape
    ``(n_out, batch)``, so that reductions over the classes run along the long,
    contiguous batch axis. Targets keep the user's layout (``(batch,)`` labels,
    ``(batch, n_out)`` regression targets).
    """

    name: str
    check_targets: Callable[..., np.ndarray]
    population: Callable[[np.ndarray, np.ndarray], np.ndarray]
    value_and_grad: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]
    value_and_jvp: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, np.ndarray]]

    def value(self, out: np.ndarray, y: np.ndarray) -> float:
        """The loss of one network's outputs ``(n_out, batch)``; may overwrite ``out``."""
        return float(self.population(out[None], y)[0])

    def __reduce__(self) -> tuple[Callable[[str], Loss], tuple[str]]:
        return get_loss, (self.name,)

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"


LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss(
        "cross_entropy", _ce_check, _ce_population, _ce_value_and_grad, _ce_value_and_jvp
    ),
    "mse": Loss("mse", _mse_check, _mse_population, _mse_value_and_grad, _mse_value_and_jvp),
}


def get_loss(name: str | Loss) -> Loss:
    """Look up a loss by name (``"cross_entropy"`` or ``"mse"``).

    Parameters
    ----------
    name : str or Loss
        A loss name; a :class:`Loss` is returned unchanged.

    Returns
    -------
    Loss

    Raises
    ------
    InvalidOptionError
        If the name is unknown; the message lists the valid names and suggests the closest.
    TypeError
        If ``name`` is neither a string nor a :class:`Loss`.

    Examples
    --------
    >>> get_loss("mse").name
    'mse'
    """
    if isinstance(name, Loss):
        return name
    return lookup(name, LOSSES, "loss")
