"""The workload of ``dfo scaling`` and the small helpers its modules share.

The network family ``64-h-10`` over the bundled 8x8 digits (:func:`network_for`,
:func:`sweep_sizes`, :func:`digits_batch`), option checks that raise
:class:`~dfo.exceptions.InvalidOptionError`, and :class:`CoordinateSample`, which
restricts an objective to a few coordinates so that a block of finite-difference
probes can be timed on its own.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from dfo.datasets import load_digits
from dfo.exceptions import InvalidOptionError
from dfo.nn.network import MLP
from dfo.objective import Objective

__all__ = [
    "N_IN",
    "N_OUT",
    "CoordinateSample",
    "digits_batch",
    "int_option",
    "network_for",
    "progress_bar",
    "real_option",
    "rel_error",
    "sizes_option",
    "sweep_sizes",
]

N_IN, N_OUT = 64, 10
"""Input and output widths of the network family (8x8 digits, 10 classes)."""


# -- validation -------------------------------------------------------------------------
def int_option(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, or :class:`InvalidOptionError` naming ``name``.

    Parameters
    ----------
    value : Any
    name : str
        The option's name in the message.
    minimum : int, default 1
    """
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise InvalidOptionError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def real_option(value: Any, name: str, minimum: float = 0.0, strict: bool = False) -> float:
    """``value`` as a finite float ``>= minimum`` (``>`` if ``strict``), or raise.

    Parameters
    ----------
    value : Any
    name : str
        The option's name in the message.
    minimum : float, default 0.0
    strict : bool, default False

    Raises
    ------
    InvalidOptionError
    """
    bad = not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value)
    if bad or value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise InvalidOptionError(
            f"{name} must be a finite number {relation} {minimum}; got {value!r}"
        )
    return float(value)


def sizes_option(sizes: Any, name: str = "sizes") -> list[int]:
    """A non-empty sequence of positive integers as a list, or raise.

    Parameters
    ----------
    sizes : sequence of int
    name : str, default "sizes"
        The option's name in the message.
    """
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of parameter counts; got {sizes!r:.60}")
    if len(sizes) == 0:
        raise InvalidOptionError(f"{name} must not be empty")
    return [int_option(s, f"{name}[{i}]") for i, s in enumerate(sizes)]


# -- workload ---------------------------------------------------------------------------
def network_for(n_params: int, *, activation: str = "tanh") -> MLP:
    """The ``64-h-10`` network of the sweep with about ``n_params`` parameters.

    ``h = max(1, round((n_params - 10) / 75))``, so the smallest has 85 parameters.

    Parameters
    ----------
    n_params : int
        Approximate number of parameters wanted.
    activation : str, default "tanh"
        Hidden-layer activation.

    Returns
    -------
    MLP

    Examples
    --------
    >>> network_for(100_000).sizes, network_for(100_000).n_params
    ((64, 1333, 10), 99985)
    """
    n_params = int_option(n_params, "n_params")
    hidden = max(1, round((n_params - N_OUT) / (N_IN + 1 + N_OUT)))
    return MLP([N_IN, hidden, N_OUT], activation=activation)


def sweep_sizes(max_params: int = 100_000, *, count: int = 12, min_params: int = 85) -> list[int]:
    """Parameter counts spaced evenly in ``log n`` from ``min_params`` to ``max_params``.

    Parameters
    ----------
    max_params : int, default 100000
        Largest size (at least 85).
    count : int, default 12
        Number of sizes asked for.
    min_params : int, default 85
        Smallest size.

    Returns
    -------
    list of int
        The distinct actual sizes of :func:`network_for`, ascending (fewer than
        ``count`` when the range is too narrow for distinct widths).

    Examples
    --------
    >>> sweep_sizes(10_000, count=4)
    [85, 385, 2035, 9985]
    """
    max_params = int_option(max_params, "max_params", N_IN + 1 + 2 * N_OUT)
    count = int_option(count, "count", 2)
    min_params = int_option(min_params, "min_params")
    min_params = min(min_params, max_params)
    targets = np.geomspace(min_params, max_params, count)
    return sorted({network_for(round(float(t))).n_params for t in targets})


def digits_batch(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded batch of ``batch`` digit images and labels.

    Parameters
    ----------
    batch : int
        Rows, at most the 1,797 digits.
    seed : int
        Seeds the choice of rows.
    """
    X, y = load_digits()
    batch = int_option(batch, "batch")
    if batch > X.shape[0]:
        raise InvalidOptionError(f"batch must be at most {X.shape[0]} (the digits); got {batch}")
    rows = np.random.default_rng(seed).permutation(X.shape[0])[:batch]
    return X[rows], y[rows]


class CoordinateSample(Objective):
    """``z -> f(x with x[coords] = z)``: ``f`` as a function of a few coordinates.

    A finite difference of this objective at ``x[coords]`` evaluates exactly the
    probe rows of the full finite difference that belong to those coordinates
    (full-length rows, built like :func:`dfo.finite_difference` builds them), so its
    time per row is the full computation's.

    Parameters
    ----------
    objective : Objective
    x : ndarray, shape (n,)
        The point whose other coordinates stay fixed.
    coords : ndarray of int
        The free coordinates.
    """

    def __init__(self, objective: Objective, x: np.ndarray, coords: np.ndarray) -> None:
        super().__init__(coords.size)
        self.objective, self.x, self.coords = objective, x, coords

    def _evaluate_batch(self, Z: np.ndarray) -> np.ndarray:
        rows = np.empty((Z.shape[0], self.x.size))
        rows[:] = self.x
        rows[:, self.coords] = Z
        return self.objective.evaluate_batch(rows)


def rel_error(g: np.ndarray, ref: np.ndarray) -> float:
    """``||g - ref|| / ||ref||``.

    Parameters
    ----------
    g, ref : ndarray
    """
    g = np.asarray(g, dtype=np.float64)
    return float(np.linalg.norm(g - ref) / max(np.linalg.norm(ref), np.finfo(float).tiny))


def progress_bar(iterable: Sequence[Any], desc: str, show: bool) -> Iterator[Any]:
    """Iterate over ``iterable``, with a tqdm progress bar on stderr if ``show``.

    Parameters
    ----------
    iterable : sequence
    desc : str
        The bar's label.
    show : bool
    """
    if not show:
        return iter(iterable)
    from tqdm.auto import tqdm

    return iter(tqdm(iterable, desc=desc, leave=False, file=sys.stderr))
