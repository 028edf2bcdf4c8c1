"""Finite-difference gradients: tweak each coordinate, measure, divide.

A forward difference ``(f(x + h_i e_i) - f(x)) / h_i`` costs ``n + 1``
evaluations of ``f`` for ``n`` variables; a central difference
``(f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i)`` costs ``2 n``. Their errors
are ``O(h)`` and ``O(h^2)`` plus a rounding error ``~ eps |f| / h``, which is
why the default steps are ``sqrt(eps)`` (forward) and ``eps^(1/3)`` (central),
scaled by ``max(1, |x_i|)``, with ``eps`` the machine epsilon of ``x``'s
float type.

Each step is replaced by the step the floating-point grid can actually take,
``(x_i + h_i) - x_i``, so the difference quotient divides by the true distance
between the probes.

:func:`finite_difference` evaluates every probe through
:meth:`~dfo.objective.Objective.evaluate_batch` in a single call (in chunks
of rows when the probe block would be large). :func:`fd_steps`,
:func:`fd_probes` and :func:`fd_gradient` are its three stages, for callers
that evaluate the probes themselves (an ask/tell optimizer). :func:`gradcheck`
compares an objective's exact gradient with central differences.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Any, NamedTuple

import numpy as np

from dfo.exceptions import GradientNotAvailableError, InvalidOptionError, ShapeError, suggest
from dfo.objective import Objective, as_objective, check_point, to_scalar

__all__ = [
    "SCHEMES",
    "FDGradient",
    "fd_gradient",
    "fd_probe_block",
    "fd_probe_parts",
    "fd_probes",
    "fd_steps",
    "finite_difference",
    "gradcheck",
]

SCHEMES = ("forward", "central")
"""Difference schemes :func:`finite_difference` knows."""

#: Upper bound on the bytes of one block of probes handed to ``evaluate_batch``: small
#: enough to stay in cache while it is built and evaluated (blocks of 8 MiB measured
#: 1.6-2.1x faster per probe than 256 MiB at n = 1e4-1e5), and what bounds the memory
#: of a finite-difference gradient in large n to a few blocks and a few vectors.
PROBE_BLOCK_BYTES = 8 * 2**20


class FDGradient(NamedTuple):
    """What :func:`finite_difference` returns.

    Attributes
    ----------
    grad : ndarray, shape (n,)
        The gradient estimate, in the float type of ``x``.
    nfev : int
        Evaluations of the objective spent: ``n + 1`` forward (``n`` when
        ``f0`` was given), ``2 n`` central.
    fun : float or None
        ``f(x)``: evaluated or given (forward), or the given ``f0``; None
        for a central difference without ``f0`` (it never evaluates ``x``).
    step : ndarray, shape (n,)
        The steps actually taken, ``(x + h) - x`` in the float type of ``x``.
    """

    grad: np.ndarray
    nfev: int
    fun: float | None
    step: np.ndarray


def _check_scheme(scheme: Any) -> str:
    if scheme not in SCHEMES:
        hint = suggest(str(scheme), SCHEMES)
        raise InvalidOptionError(f"scheme must be one of {list(SCHEMES)}; got {scheme!r}.{hint}")
    return scheme


def _as_vector(x: Any) -> np.ndarray:
    """``x`` as a 1-D float array, keeping float16/32/64; integers become float64."""
    arr = np.asarray(x)
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif arr.dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(
            f"x must be a vector of float16, float32 or float64 numbers; got dtype {arr.dtype}"
        )
    if arr.ndim != 1 or arr.size == 0:
        raise ShapeError(f"x must be a non-empty vector of shape (n,); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("x must be finite; it has nan or inf entries")
    return arr


def fd_steps(x: Any, *, scheme: str = "forward", h: Any = None) -> np.ndarray:
    """Finite-difference steps for each coordinate of ``x``, as actually representable.

    Parameters
    ----------
    x : array_like, shape (n,)
        The point; float32 (or float16) input keeps its type, anything else
        becomes float64.
    scheme : {"forward", "central"}, default "forward"
    h : float or array_like of shape (n,), optional
        Absolute step(s), positive. Default ``sqrt(eps) * max(1, |x_i|)``
        (forward) or ``eps^(1/3) * max(1, |x_i|)`` (central), ``eps`` being the
        machine epsilon of ``x``'s float type.

    Returns
    -------
    ndarray, shape (n,)
        ``(x + h) - x`` computed in ``x``'s float type: the distance the probe
        really moved.

    Raises
    ------
    InvalidOptionError
        Unknown scheme; ``h`` not positive and finite; or ``h`` so small that
        ``x_i + h_i == x_i``.
    ShapeError
        ``x`` not a vector, or ``h`` of the wrong shape.
    """
    _check_scheme(scheme)
    x = _as_vector(x)
    dtype = x.dtype
    if h is None:
        eps = np.finfo(dtype).eps
        rel = np.sqrt(eps) if scheme == "forward" else np.cbrt(eps)
        h_arr = (rel * np.maximum(1.0, np.abs(x))).astype(dtype)
    else:
        try:
            h_arr = np.asarray(h, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"h must be a positive number or array; got {h!r:.60}") from exc
        if h_arr.ndim == 0:
            h_arr = np.full(x.shape, h_arr)
        if h_arr.shape != x.shape:
            raise ShapeError(
                f"h must be a scalar or have the shape of x {x.shape}; got shape {h_arr.shape}"
            )
        if not np.all(np.isfinite(h_arr) & (h_arr > 0)):
            bad = h_arr[~(np.isfinite(h_arr) & (h_arr > 0))][0]
            raise InvalidOptionError(f"h must be positive and finite; got {bad!r}")
        h_arr = h_arr.astype(dtype)
    with np.errstate(over="ignore"):
        step = (x + h_arr) - x
    if not np.all(np.isfinite(step) & (step > 0)):
        i = int(np.flatnonzero(~(np.isfinite(step) & (step > 0)))[0])
        raise InvalidOptionError(
            f"step h={float(h_arr[i])!r} does not move x[{i}]={float(x[i])!r} in {dtype}: "
            "x + h == x (or overflows); use a larger h"
        )
    return step


def fd_probes(
    x: Any,
    step: Any,
    *,
    scheme: str = "forward",
    include_center: bool = True,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """The points at which a finite-difference gradient evaluates the objective.

    Parameters
    ----------
    x : array_like, shape (n,)
    step : array_like, shape (n,)
        Steps from :func:`fd_steps`.
    scheme : {"forward", "central"}, default "forward"
    include_center : bool, default True
        Forward scheme only: whether the first row is ``x`` itself (leave it
        out when ``f(x)`` is already known).
    start, stop : int, optional
        Return only rows ``start:stop`` of the probe matrix (default all), so
        a caller can evaluate a large probe set block by block without ever
        holding all of it.

    Returns
    -------
    ndarray, float64
        Forward: ``x`` (if ``include_center``) then ``x + step_i e_i`` for
        ``i = 0..n-1``, shape ``(n + 1, n)`` or ``(n, n)``. Central:
        ``x + step_i e_i`` for all ``i``, then ``x - step_i e_i``, shape ``(2n, n)``.
        (or rows ``start:stop`` of it).
    """
    _check_scheme(scheme)
    x = _as_vector(x)
    step = _check_step(step, x)
    include_center = bool(include_center) and scheme == "forward"
    rows = _n_rows(x.size, scheme, include_center)
    stop = rows if stop is None else stop
    if not (
        isinstance(start, Integral) and isinstance(stop, Integral) and 0 <= start <= stop <= rows
    ):
        raise InvalidOptionError(
            f"need integers 0 <= start <= stop <= {rows}; got start={start!r}, stop={stop!r}"
        )
    return _probe_block(x, step, scheme, include_center, int(start), int(stop))


def fd_gradient(
    values: Any, step: Any, *, scheme: str = "forward", f0: float | None = None
) -> np.ndarray:
    """Turn the objective's values at :func:`fd_probes` into a gradient.

    Parameters
    ----------
    values : array_like
        Values at the probes, in the order :func:`fd_probes` returns them:
        length ``n + 1`` (forward, center first), ``n`` (forward with ``f0``)
        or ``2 n`` (central).
    step : array_like, shape (n,)
        The steps used (from :func:`fd_steps`); its float type is the result's.
    scheme : {"forward", "central"}, default "forward"
    f0 : float, optional
        ``f(x)`` for a forward difference whose probes left out the center.

    Returns
    -------
    ndarray, shape (n,)
        Non-finite values propagate into the entries they touch.
    """
    _check_scheme(scheme)
    step = np.asarray(step)
    n = step.size
    values = np.asarray(values, dtype=np.float64)
    include_center = scheme == "forward" and f0 is None
    expected = _n_rows(n, scheme, include_center)
    if values.shape != (expected,):
        raise ShapeError(
            f"values must have shape ({expected},) for a {scheme} difference in {n} variables"
            f"{'' if f0 is None else ' with f0'}; got shape {values.shape}"
        )
    step64 = step.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if scheme == "forward":
            center = values[0] if f0 is None else to_scalar(f0, "f0")
            grad = (values[-n:] - center) / step64
        else:
            grad = (values[:n] - values[n:]) / (2.0 * step64)
    return grad.astype(step.dtype if step.dtype.kind == "f" else np.float64)


def finite_difference(
    f: Objective | Callable[[np.ndarray], float],
    x: Any,
    *,
    scheme: str = "forward",
    h: Any = None,
    f0: float | None = None,
    chunk_size: int | None = None,
) -> FDGradient:
    """Estimate the gradient of ``f`` at ``x`` by finite differences.

    Parameters
    ----------
    f : Objective or callable
        The function; a callable ``f(x) -> float`` is wrapped with
        ``as_objective(f, dim=len(x))``. For a stochastic objective pass one
        realization (``obj.realization(rng)``) so that every probe sees the same
        randomness.
    x : array_like, shape (n,)
        The point. A float32 (or float16) ``x`` gets steps sized and rounded in
        that type, and the gradient is returned in it; the objective itself
        still receives the (exactly converted) probes as float64. An objective
        whose ``dtype`` is coarser than ``x``'s (a float32 network) works the same
        way in its type: ``x`` is rounded to it first.
    scheme : {"forward", "central"}, default "forward"
        Forward: ``n + 1`` evaluations, error ``O(h)``. Central: ``2 n``
        evaluations, error ``O(h^2)``.
    h : float or array_like of shape (n,), optional
        Absolute step(s), positive; see :func:`fd_steps` for the default.
    f0 : float, optional
        ``f(x)`` if already known; saves one evaluation of a forward difference.
    chunk_size : int, optional
        Most probe rows per ``evaluate_batch`` call. Default: all of them in one
        call, unless the float64 block would exceed :data:`PROBE_BLOCK_BYTES`
        (8 MiB), in which case the largest number of rows that fits.

    Returns
    -------
    FDGradient
        ``(grad, nfev, fun, step)``; see :class:`FDGradient`.

    Raises
    ------
    ShapeError
        ``x`` not a vector, or not of ``f``'s dimension.
    InvalidOptionError
        Unknown scheme, bad ``h`` or ``chunk_size``.

    Examples
    --------
    >>> import numpy as np
    >>> res = finite_difference(lambda x: float(x @ x), np.array([1.0, -2.0]), scheme="central")
    >>> np.allclose(res.grad, [2.0, -4.0]), res.nfev
    (True, 4)
    """
    _check_scheme(scheme)
    x = _as_vector(x)
    n = x.size
    objective = as_objective(f, dim=n)
    if np.finfo(objective.dtype).eps > np.finfo(x.dtype).eps:
        # a float32 objective: steps from its epsilon, probes exactly representable in it
        x = x.astype(objective.dtype)
    step = fd_steps(x, scheme=scheme, h=h)
    fun = None if f0 is None else to_scalar(f0, "f0")
    include_center = scheme == "forward" and fun is None
    rows = _n_rows(n, scheme, include_center)
    chunk = _chunk_rows(chunk_size, n, rows)
    values = np.empty(rows)
    parts = fd_probe_parts(x, step, scheme)  # once: the blocks are made of them
    for start in range(0, rows, chunk):
        stop = min(start + chunk, rows)
        values[start:stop] = objective.evaluate_batch(
            fd_probe_block(parts, start, stop, scheme=scheme, include_center=include_center)
        )
    if include_center:
        fun = float(values[0])
    grad = fd_gradient(values, step, scheme=scheme, f0=None if include_center else fun)
    return FDGradient(grad=grad, nfev=rows, fun=fun, step=step)


def gradcheck(objective: Objective, x: Any, *, h: Any = None) -> float:
    """Relative difference between an objective's gradient and central differences.

    Returns ``||g - g_fd|| / max(||g||, ||g_fd||, tiny)`` at ``x``, with ``g``
    from :meth:`~dfo.objective.Objective.value_and_grad` and ``g_fd`` a central
    difference with step ``h``. A correct gradient of a smooth function gives
    about ``1e-9`` or less in float64 at the default step; a wrong one ``O(1)``.

    Parameters
    ----------
    objective : Objective
        An objective with ``has_gradient`` True.
    x : array_like, shape (dim,)
    h : float or array_like, optional
        Central-difference step(s); see :func:`fd_steps`.

    Returns
    -------
    float

    Raises
    ------
    GradientNotAvailableError
        If ``objective`` has no gradient (or is a plain callable).

    Examples
    --------
    >>> import numpy as np
    >>> from dfo.problems import Rosenbrock
    >>> gradcheck(Rosenbrock(5), np.linspace(-1, 1, 5)) < 1e-8
    True
    """
    if not isinstance(objective, Objective) or not objective.has_gradient:
        what = type(objective).__name__
        raise GradientNotAvailableError(
            f"gradcheck needs an Objective with a gradient; {what} has none "
            "(wrap a callable with as_objective(f, dim=n, grad=g))"
        )
    x64 = check_point(x, objective.dim)
    _, g = objective.value_and_grad(x64)
    g_fd = finite_difference(objective, x64, scheme="central", h=h).grad
    denom = max(float(np.linalg.norm(g)), float(np.linalg.norm(g_fd)), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(g - g_fd) / denom)


# -- helpers ------------------------------------------------------------------


def _n_rows(n: int, scheme: str, include_center: bool) -> int:
    if scheme == "central":
        return 2 * n
    return n + 1 if include_center else n


def _check_step(step: Any, x: np.ndarray) -> np.ndarray:
    step = np.asarray(step)
    if step.shape != x.shape:
        raise ShapeError(f"step must have the shape of x {x.shape}; got shape {step.shape}")
    if not np.all(np.isfinite(step) & (step > 0)):
        raise InvalidOptionError("step must be positive and finite (use fd_steps)")
    return step.astype(x.dtype, copy=False)


def _chunk_rows(chunk_size: Any, n: int, rows: int) -> int:
    if chunk_size is None:
        return max(1, min(rows, PROBE_BLOCK_BYTES // (8 * n)))
    if not isinstance(chunk_size, Integral) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise InvalidOptionError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    return min(int(chunk_size), rows)


def fd_probe_parts(
    x: np.ndarray, step: np.ndarray, scheme: str = "forward"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What every probe is made of: ``x``, ``x + step`` and ``x - step``, as float64.

    A probe is ``x`` with one coordinate taken from ``x + step`` (or ``x - step``):
    callers that build the probes of one gradient block by block make these once
    (three vectors) and pass them to :func:`fd_probe_block` for every block, rather
    than recomputing them per block (at large ``n`` a block has few rows).

    Parameters
    ----------
    x : ndarray, shape (n,)
        The centre, float64 or float32 (the sums are made in its type, then widened).
    step : ndarray, shape (n,)
        Steps from :func:`fd_steps`.
    scheme : {"forward", "central"}, default "forward"

    Returns
    -------
    (centre, plus, minus) : tuple of ndarray, float64, shape (n,)
        ``minus`` is ``plus`` for the forward scheme.
    """
    plus = (x + step).astype(np.float64)
    minus = (x - step).astype(np.float64) if scheme == "central" else plus
    return x.astype(np.float64, copy=False), plus, minus


def fd_probe_block(
    parts: tuple[np.ndarray, np.ndarray, np.ndarray],
    start: int,
    stop: int,
    *,
    scheme: str = "forward",
    include_center: bool = True,
) -> np.ndarray:
    """Rows ``start..stop-1`` of the probe matrix from :func:`fd_probe_parts`' vectors.

    The rows :func:`fd_probes` returns for the same ``x``, steps, scheme and rows,
    bit for bit, without checking its arguments (the caller's are checked once).

    Parameters
    ----------
    parts : tuple of ndarray
        ``fd_probe_parts(x, step, scheme)``.
    start, stop : int
        ``0 <= start <= stop <=`` the number of probes.
    scheme : {"forward", "central"}, default "forward"
    include_center : bool, default True
        Forward scheme only: whether row 0 is ``x`` itself.

    Returns
    -------
    ndarray, float64, shape (stop - start, n)
    """
    centre, plus, minus = parts
    n = centre.size
    block = np.empty((stop - start, n))
    block[:] = centre
    offset = 1 if include_center and scheme == "forward" else 0
    k = np.arange(max(start, offset), stop) - offset  # index among perturbed rows
    if k.size:
        rows_in_block = k + offset - start
        coords = k % n if scheme == "central" else k
        is_plus = k < n
        block[rows_in_block, coords] = np.where(is_plus, plus[coords], minus[coords])
    return block


def _probe_block(
    x: np.ndarray, step: np.ndarray, scheme: str, include_center: bool, start: int, stop: int
) -> np.ndarray:
    """Rows ``start..stop-1`` of the probe matrix, float64 (exact for float32 ``x``)."""
    parts = fd_probe_parts(x, step, scheme)
    return fd_probe_block(parts, start, stop, scheme=scheme, include_center=include_center)
