"""Small data sets to train networks on: bundled digits and seeded synthetic tasks.

- :func:`load_digits`: the 8x8 handwritten digits (1,797 images, 64 pixel
  features in 0..16, 10 classes), bundled with the package (about 45 KB; see
  ``DIGITS_SOURCE.txt`` beside this file for its source, license and conversion).
- :func:`two_spirals`, :func:`xor`: 2-D binary classification.
- :func:`sine`: 1-D regression, ``y`` of shape ``(n, 1)``.
- :func:`train_test_split`: seeded, optionally stratified split.
- :func:`load`: any of the above by name, already split, as a :class:`Dataset`.

Everything random takes ``seed=`` (an int or a :class:`numpy.random.Generator`);
the same seed gives the same arrays, bit for bit.

Examples
--------
>>> from dfo import datasets
>>> d = datasets.load("digits")
>>> d.X_train.shape, d.X_test.shape, d.n_classes
((1347, 64), (450, 64), 10)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from numbers import Integral, Real
from typing import Any, Literal, NamedTuple

import numpy as np

from dfo.exceptions import InvalidOptionError, ShapeError, suggest

__all__ = [
    "DATASETS",
    "Dataset",
    "Split",
    "load",
    "load_digits",
    "names",
    "sine",
    "train_test_split",
    "two_spirals",
    "xor",
]

Seed = int | np.random.Generator | None


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)):
        raise TypeError(f"seed must be an int, a numpy Generator or None; got {seed!r}")
    return np.random.default_rng(seed)


def _check_n(n: Any, minimum: int) -> int:
    if not isinstance(n, Integral) or isinstance(n, bool) or n < minimum:
        raise InvalidOptionError(f"n must be an integer >= {minimum}; got {n!r}")
    return int(n)


def _check_noise(noise: Any) -> float:
    if not isinstance(noise, Real) or not np.isfinite(float(noise)) or noise < 0:
        raise InvalidOptionError(f"noise must be a finite number >= 0; got {noise!r}")
    return float(noise)


# -- digits ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    with resources.files(__name__).joinpath("digits.npz").open("rb") as fh, np.load(fh) as data:
        images, labels = data["images"], data["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digits(*, scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits (UCI, Alpaydin & Kaynak 1998), bundled.

    Parameters
    ----------
    scale : bool, default True
        Divide the pixel counts (0..16) by 16, giving features in [0, 1].

    Returns
    -------
    X : ndarray, float64, shape (1797, 64)
        One flattened 8x8 image per row (row-major).
    y : ndarray, int64, shape (1797,)
        The digit, 0..9 (about 180 of each).

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, float(X.max()), int(y.max())
    ((1797, 64), 1.0, 9)
    """
    images, labels = _digits_raw()
    X = images.astype(np.float64)
    if scale:
        X /= 16.0
    return X, labels.astype(np.int64)


# -- synthetic --------------------------------------------------------------------


def two_spirals(
    n: int = 400, *, noise: float = 0.05, turns: float = 1.5, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals in the plane: a classic task a linear model cannot do.

    Class 0 follows ``r (cos a, sin a)`` with ``a`` in ``[0, 2 pi turns]`` and
    ``r = a / (2 pi turns)``; class 1 is the same spiral rotated by 180 degrees.
    Points are spread evenly in arc length and then jittered by Gaussian
    noise of standard deviation ``noise``. Coordinates lie in about ``[-1, 1]``.

    Parameters
    ----------
    n : int, default 400
        Number of points, at least 2; class 0 gets ``ceil(n / 2)``.
    noise : float, default 0.05
        Standard deviation of the jitter added to each coordinate.
    turns : float, default 1.5
        Number of turns of each spiral.
    seed : int or Generator, default 0

    Returns
    -------
    X : ndarray, float64, shape (n, 2)
    y : ndarray, int64, shape (n,), values 0 and 1
    """
    n = _check_n(n, 2)
    noise = _check_noise(noise)
    if not isinstance(turns, Real) or not np.isfinite(turns) or turns <= 0:
        raise InvalidOptionError(f"turns must be a positive number; got {turns!r}")
    rng = _rng(seed)
    y = (np.arange(n) >= (n + 1) // 2).astype(np.int64)
    # sqrt of a uniform draw spreads points evenly along the spiral, not the angle
    r = np.sqrt(rng.uniform(0.02, 1.0, size=n))
    angle = 2.0 * np.pi * float(turns) * r + np.pi * y
    X = np.column_stack([r * np.cos(angle), r * np.sin(angle)])
    X += noise * rng.standard_normal(X.shape)
    order = rng.permutation(n)
    return X[order], y[order]


def xor(n: int = 400, *, noise: float = 0.1, seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: the label is 1 where exactly one coordinate is positive.

    ``x`` is drawn uniformly from ``[-1, 1]^2``, labelled ``(x_0 > 0) xor
    (x_1 > 0)``, and then jittered by Gaussian noise of standard deviation
    ``noise`` (so labels near the axes can look wrong, as in real data).

    Parameters
    ----------
    n : int, default 400
        Number of points, at least 1.
    noise : float, default 0.1
    seed : int or Generator, default 0

    Returns
    -------
    X : ndarray, float64, shape (n, 2)
    y : ndarray, int64, shape (n,), values 0 and 1
    """
    n = _check_n(n, 1)
    noise = _check_noise(noise)
    rng = _rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
    X += noise * rng.standard_normal(X.shape)
    return X, y


def sine(n: int = 200, *, noise: float = 0.1, seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """1-D regression: ``y = sin(x) + noise * z`` for ``x`` uniform on ``[-pi, pi]``.

    Parameters
    ----------
    n : int, default 200
        Number of points, at least 1.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise on ``y``.
    seed : int or Generator, default 0

    Returns
    -------
    X : ndarray, float64, shape (n, 1)
    y : ndarray, float64, shape (n, 1)
    """
    n = _check_n(n, 1)
    noise = _check_noise(noise)
    rng = _rng(seed)
    X = rng.uniform(-np.pi, np.pi, size=(n, 1))
    y = np.sin(X) + noise * rng.standard_normal((n, 1))
    return X, y


# -- splitting --------------------------------------------------------------------


class Split(NamedTuple):
    """A train/test split, as :func:`train_test_split` returns it.

    A :class:`~typing.NamedTuple`: it unpacks as ``X_train, y_train, X_test,
    y_test`` (not scikit-learn's order), so prefer the field names.

    Attributes
    ----------
    X_train, y_train : ndarray
        The training rows and their targets.
    X_test, y_test : ndarray
        The test rows and their targets.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    >>> split = train_test_split(X, y, test_size=0.2, seed=0)
    >>> split.X_train.shape, split.X_test.shape, np.bincount(split.y_test).tolist()
    ((8, 2), (2, 2), [1, 1])
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _n_test(test_size: Any, n: int) -> int:
    if isinstance(test_size, Integral) and not isinstance(test_size, bool):
        n_test = int(test_size)
    elif isinstance(test_size, Real) and 0.0 < float(test_size) < 1.0:
        n_test = math.ceil(float(test_size) * n)
    else:
        raise InvalidOptionError(
            f"test_size must be a fraction in (0, 1) or a number of samples; got {test_size!r}"
        )
    if not 1 <= n_test <= n - 1:
        raise InvalidOptionError(
            f"test_size={test_size!r} leaves {n_test} of {n} samples for testing; "
            "both the train and the test part need at least one"
        )
    return n_test


def _apportion(counts: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainders)."""
    exact = counts * (total / counts.sum())
    alloc = np.floor(exact).astype(np.int64)
    remainder = exact - alloc
    # ties broken at random, reproducibly
    order = np.lexsort((rng.random(counts.size), -remainder))
    alloc[order[: total - alloc.sum()]] += 1
    return np.minimum(alloc, counts)


def train_test_split(
    X: Any,
    y: Any,
    *,
    test_size: float | int = 0.25,
    seed: Seed = 0,
    stratify: bool | None = None,
) -> Split:
    """Shuffle and split ``(X, y)`` into a training and a test part.

    Parameters
    ----------
    X : array_like, shape (n, ...)
    y : array_like, shape (n,) or (n, ...)
    test_size : float or int, default 0.25
        Fraction of the samples in (0, 1), rounded up to a count, or a
        number of samples; each part keeps at least one.
    seed : int or Generator, default 0
    stratify : bool, optional
        Keep each class's share the same in both parts (largest-remainder
        rounding). Default: stratify when ``y`` is a vector of integer labels.
        ``True`` for a non-integer or multi-column ``y`` raises.

    Returns
    -------
    Split
        ``(X_train, y_train, X_test, y_test)``, each in a random order. Note
        the order differs from scikit-learn's ``X_train, X_test, y_train, y_test``;
        use the field names.

    Raises
    ------
    ShapeError
        ``X`` and ``y`` have different numbers of rows.
    InvalidOptionError
        Bad ``test_size``, or ``stratify=True`` for non-label ``y``.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0]:
        raise ShapeError(
            f"X and y must have the same number of rows; got shapes {X.shape} and {y.shape}"
        )
    n = X.shape[0]
    n_test = _n_test(test_size, n)
    rng = _rng(seed)
    is_labels = y.ndim == 1 and y.dtype.kind in "biu"
    if stratify is None:
        stratify = is_labels
    elif stratify and not is_labels:
        raise InvalidOptionError(
            "stratify=True needs y to be a vector of integer class labels; "
            f"got dtype {y.dtype} and shape {y.shape}"
        )
    if stratify:
        classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        per_class = _apportion(counts, n_test, rng)
        test_parts, train_parts = [], []
        for c in range(classes.size):
            members = rng.permutation(np.flatnonzero(inverse == c))
            test_parts.append(members[: per_class[c]])
            train_parts.append(members[per_class[c] :])
        test_idx = rng.permutation(np.concatenate(test_parts))
        train_idx = rng.permutation(np.concatenate(train_parts))
    else:
        perm = rng.permutation(n)
        test_idx, train_idx = perm[:n_test], perm[n_test:]
    return Split(X[train_idx], y[train_idx], X[test_idx], y[test_idx])


# -- by name ------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A named task, split into training and test data; see :func:`load`.

    Attributes
    ----------
    name : str
    X_train, y_train, X_test, y_test : ndarray
        Features are float64 ``(n, n_features)``. Labels are int64 ``(n,)`` for
        classification, float64 ``(n, n_outputs)`` for regression.
    task : {"classification", "regression"}
    n_classes : int or None
        Number of classes; None for regression.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: Literal["classification", "regression"]
    n_classes: int | None

    @property
    def n_features(self) -> int:
        """Number of input features."""
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Outputs a model needs: ``n_classes`` or the number of regression targets."""
        if self.n_classes is not None:
            return self.n_classes
        return int(self.y_train.shape[1])


def _digits(seed: Seed) -> tuple[np.ndarray, np.ndarray]:
    return load_digits()


DATASETS: dict[str, tuple[Any, Literal["classification", "regression"], int | None]] = {
    "digits": (_digits, "classification", 10),
    "spirals": (two_spirals, "classification", 2),
    "xor": (xor, "classification", 2),
    "sine": (sine, "regression", None),
}
"""Name -> (generator ``f(seed=...) -> (X, y)``, task, number of classes)."""


def names() -> list[str]:
    """Names accepted by :func:`load`, sorted."""
    return sorted(DATASETS)


def load(name: str, *, seed: Seed = 0, test_size: float | int = 0.25) -> Dataset:
    """Load (or generate) a data set by name and split it.

    Parameters
    ----------
    name : str
        ``"digits"``, ``"spirals"``, ``"xor"`` or ``"sine"`` (defaults of the
        generator functions).
    seed : int or Generator, default 0
        Seeds both the generation (synthetic sets) and the split.
    test_size : float or int, default 0.25
        See :func:`train_test_split`; classification splits are stratified.

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidOptionError
        Unknown name (the message suggests close names).
    """
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise InvalidOptionError(
            f"unknown data set {name!r}; expected one of {names()}.{suggest(key, DATASETS)}"
        )
    make, task, n_classes = DATASETS[key]
    rng = _rng(seed)
    X, y = make(seed=rng)
    split = train_test_split(X, y, test_size=test_size, seed=rng)
    return Dataset(key, *split, task=task, n_classes=n_classes)
