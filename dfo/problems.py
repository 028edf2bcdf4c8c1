"""Classic test functions for optimizers, and a measurement-noise wrapper.

Every problem is an :class:`~dfo.objective.Objective` that evaluates a whole
batch of points in one vectorized numpy expression and has an exact gradient
(``has_gradient = True``). Each documents its global minimum through the
attributes ``minimizer`` (a point) and ``minimum`` (the value there).

=====================  ===========================  =================  =========
name                   class                        minimizer          minimum
=====================  ===========================  =================  =========
``"sphere"``           :class:`Sphere`              ``0``              0
``"ellipsoid"``        :class:`Ellipsoid`           ``0``              0
``"rosenbrock"``       :class:`Rosenbrock`          ``(1, ..., 1)``    0
``"rastrigin"``        :class:`Rastrigin`           ``0``              0
``"skewed-quartic"``   :class:`SkewedQuartic`       ``0``              0
=====================  ===========================  =================  =========

:func:`get` builds one by name. :class:`Noisy` adds Gaussian measurement noise
to any objective.

Values that overflow come back as ``inf`` without a warning: optimizers treat
non-finite values as worst.

Examples
--------
>>> import numpy as np
>>> from dfo import problems
>>> f = problems.get("rosenbrock", 4)
>>> f(f.minimizer)
0.0
>>> f.evaluate_batch(np.zeros((2, 4)))
array([3., 3.])
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError, suggest
from dfo.objective import Objective
from dfo.sampling import EpochSampler

__all__ = [
    "PROBLEMS",
    "Ellipsoid",
    "Noisy",
    "Rastrigin",
    "Rosenbrock",
    "SkewedQuartic",
    "Sphere",
    "get",
    "names",
]

# Overflow to inf is a legitimate value for an optimizer probing far away.
_QUIET: dict[str, Any] = {"over": "ignore", "invalid": "ignore"}


class _TestProblem(Objective):
    """Base of the deterministic test problems: exact gradient, known minimum."""

    has_gradient = True

    @property
    def minimizer(self) -> np.ndarray:
        """A global minimizer, shape ``(dim,)`` (a fresh array on each access)."""
        return np.zeros(self.dim)

    @property
    def minimum(self) -> float:
        """The global minimum value."""
        return 0.0

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(**_QUIET):
            return self._values(X)

    def _value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(**_QUIET):
            return float(self._values(x[None, :])[0]), self._grad(x)

    # subclasses fill these two
    def _values(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _grad(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Sphere(_TestProblem):
    """``f(x) = sum_i x_i^2``; gradient ``2 x``; minimum 0 at ``x = 0``.

    Parameters
    ----------
    dim : int
        Number of variables.
    """

    def _values(self, X: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", X, X)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * x


class Ellipsoid(_TestProblem):
    """``f(x) = sum_i c^(i/(dim-1)) x_i^2``: an ill-conditioned quadratic.

    The Hessian is diagonal with eigenvalues ``2 c^(i/(dim-1))``, ``i = 0..dim-1``,
    so its condition number is ``c`` (1 when ``dim == 1``). Minimum 0 at ``x = 0``.

    Parameters
    ----------
    dim : int
        Number of variables.
    condition : float, default 1e6
        Ratio of the largest to the smallest axis weight, ``>= 1``.
    """

    def __init__(self, dim: int, *, condition: float = 1e6) -> None:
        super().__init__(dim)
        condition = float(condition)
        if not np.isfinite(condition) or condition < 1.0:
            raise InvalidOptionError(f"condition must be a finite number >= 1; got {condition!r}")
        self.condition = condition
        exponents = np.arange(self.dim) / max(self.dim - 1, 1)
        self.weights = condition**exponents

    def _values(self, X: np.ndarray) -> np.ndarray:
        return (X * X) @ self.weights

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * self.weights * x

    def __repr__(self) -> str:
        return f"Ellipsoid(dim={self.dim}, condition={self.condition:g})"


class Rosenbrock(_TestProblem):
    """``f(x) = sum_{i<dim-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``.

    The banana valley. Minimum 0 at ``x = (1, ..., 1)``; needs ``dim >= 2``.

    Parameters
    ----------
    dim : int
        Number of variables, at least 2.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        if self.dim < 2:
            raise InvalidOptionError(f"Rosenbrock needs dim >= 2; got dim={self.dim}")

    @property
    def minimizer(self) -> np.ndarray:
        return np.ones(self.dim)

    def _values(self, X: np.ndarray) -> np.ndarray:
        head, tail = X[:, :-1], X[:, 1:]
        return np.sum(100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2, axis=1)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        head, tail = x[:-1], x[1:]
        inner = tail - head**2
        g = np.zeros_like(x)
        g[:-1] = -400.0 * head * inner - 2.0 * (1.0 - head)
        g[1:] += 200.0 * inner
        return g


class Rastrigin(_TestProblem):
    """``f(x) = 10 dim + sum_i (x_i^2 - 10 cos(2 pi x_i))``: highly multimodal.

    Local minima near every integer point; the global minimum is 0 at ``x = 0``.

    Parameters
    ----------
    dim : int
        Number of variables.
    """

    def _values(self, X: np.ndarray) -> np.ndarray:
        return 10.0 * self.dim + np.sum(X * X - 10.0 * np.cos(2.0 * np.pi * X), axis=1)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * x + 20.0 * np.pi * np.sin(2.0 * np.pi * x)


class SkewedQuartic(_TestProblem):
    """Spall's skewed quartic, ``L(t) = y'y + 0.1 sum_i y_i^3 + 0.01 sum_i y_i^4``.

    Here ``y = B t`` with ``B`` the ``p x p`` upper-triangular matrix of ones
    scaled by ``1/p`` (``p = dim``), so ``y_i = (t_i + ... + t_p) / p``. The
    standard SPSA test problem (Spall, *Introduction to Stochastic Search and
    Optimization*, 2003). Minimum 0 at ``t = 0``. The gradient is
    ``B' (2 y + 0.3 y^2 + 0.04 y^3)``.

    ``B t`` and ``B' g`` are computed as (reversed) cumulative sums, so an
    evaluation costs ``O(dim)`` per point, not ``O(dim^2)``.

    Parameters
    ----------
    dim : int
        Number of variables ``p``.
    """

    def _values(self, X: np.ndarray) -> np.ndarray:
        Y = np.cumsum(X[:, ::-1], axis=1)[:, ::-1] / self.dim
        Y2 = Y * Y
        return np.sum(Y2 + 0.1 * Y2 * Y + 0.01 * Y2 * Y2, axis=1)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        y = np.cumsum(x[::-1])[::-1] / self.dim
        dy = 2.0 * y + 0.3 * y * y + 0.04 * y**3
        return np.cumsum(dy) / self.dim


PROBLEMS: dict[str, type[_TestProblem]] = {
    "sphere": Sphere,
    "ellipsoid": Ellipsoid,
    "rosenbrock": Rosenbrock,
    "rastrigin": Rastrigin,
    "skewed-quartic": SkewedQuartic,
}
"""Name -> class of every test problem :func:`get` knows."""


def names() -> list[str]:
    """Names accepted by :func:`get`, sorted."""
    return sorted(PROBLEMS)


def get(name: str, dim: int, **options: Any) -> Objective:
    """Build a test problem by name.

    Parameters
    ----------
    name : str
        One of :func:`names`: ``"sphere"``, ``"ellipsoid"``, ``"rosenbrock"``,
        ``"rastrigin"``, ``"skewed-quartic"``.
    dim : int
        Number of variables.
    **options
        Passed to the class, e.g. ``condition=`` for ``"ellipsoid"``.

    Returns
    -------
    Objective

    Raises
    ------
    InvalidOptionError
        If the name is unknown (the message suggests close names).

    Examples
    --------
    >>> get("skewed-quartic", 10).minimum
    0.0
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in PROBLEMS:
        raise InvalidOptionError(
            f"unknown problem {name!r}; expected one of {names()}.{suggest(key, PROBLEMS)}"
        )
    return PROBLEMS[key](dim, **options)


# -- measurement noise --------------------------------------------------------


def _as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"seed must be an int, a numpy Generator or None; got {seed!r}")
    return np.random.default_rng(seed)


class Noisy(Objective):
    """Add Gaussian measurement noise to an objective: ``y = f(x) + sigma * z``.

    Parameters
    ----------
    objective : Objective
        The noise-free objective.
    sigma : float
        Standard deviation of the noise, ``>= 0``.
    common : bool, default False
        ``False``: every evaluated point gets its own independent draw ``z``
        (Spall's measurement-noise setting: each iteration measures afresh). Within
        one realization a point's draw is a function of the point, so a batch split
        over worker processes gets the same noise as in one serial call. ``True``: all
        points evaluated on one realization share a single draw, a common shift that
        cancels in differences.
    seed : int, Generator or None, default 0
        Seeds the wrapper's own generator, used only by direct calls
        (``noisy(x)``, ``noisy.evaluate_batch(X)``) made outside a realization.
        Each direct call draws fresh noise from it; with ``common=True`` the rows
        of one direct batch share one draw.

    Notes
    -----
    :meth:`realization` takes the run loop's generator, realizes the wrapped
    objective with it (if that one is stochastic) and then seeds a fresh noise
    generator from it, so a run seeded once is reproducible bit for bit.

    ``has_gradient`` is False: the noise has no gradient to offer, and a
    "noisy gradient" made of the exact gradient would hide what the noise does
    to a method. The noise-free gradient stays available as
    ``noisy.objective.value_and_grad``.

    Examples
    --------
    >>> import numpy as np
    >>> f = Noisy(Sphere(3), sigma=0.1)
    >>> g = f.realization(np.random.default_rng(0))
    >>> h = f.realization(np.random.default_rng(0))
    >>> g(np.ones(3)) == h(np.ones(3))
    True
    """

    is_stochastic = True
    has_gradient = False

    def __init__(
        self,
        objective: Objective,
        sigma: float,
        *,
        common: bool = False,
        seed: int | np.random.Generator | None = 0,
    ) -> None:
        if not isinstance(objective, Objective):
            raise TypeError(
                "Noisy wraps an Objective (use dfo.as_objective for a callable); "
                f"got {type(objective).__name__}"
            )
        super().__init__(objective.dim)
        sigma = float(sigma)
        if not np.isfinite(sigma) or sigma < 0:
            raise InvalidOptionError(f"sigma must be a finite number >= 0; got {sigma!r}")
        self.objective = objective
        self.sigma = sigma
        self.common = bool(common)
        self._rng = _as_generator(seed)

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        base = self.objective
        if base.is_stochastic:
            base = base.realization(self._rng)
        values = base.evaluate_batch(X)
        if self.common:
            return values + self.sigma * self._rng.standard_normal()
        return values + self.sigma * self._rng.standard_normal(X.shape[0])

    def realization(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Objective:
        base = (
            self.objective.realization(rng)
            if sampler is None
            else self.objective.realization(rng, sampler)
        )
        return _NoisyRealization(base, self.sigma, self.common, int(rng.integers(2**63)))

    def sampler(self) -> EpochSampler | None:
        """The minibatch stream of the wrapped objective, if it has one."""
        return self.objective.sampler()

    def __repr__(self) -> str:
        return f"Noisy({self.objective!r}, sigma={self.sigma:g}, common={self.common})"


class _NoisyRealization(Objective):
    """One iteration's view of a :class:`Noisy` objective (randomness bound).

    With independent noise, each point's draw comes from a generator keyed by the
    realization's seed and the point's bytes, not by the order of the calls: the
    same batch split into chunks over worker processes gets the same noise as in
    one serial call.
    """

    has_gradient = False

    def __init__(self, objective: Objective, sigma: float, common: bool, seed: int) -> None:
        super().__init__(objective.dim)
        self.objective = objective
        self.sigma = sigma
        self.common = common
        self._seed = seed
        self._shared = float(np.random.default_rng(seed).standard_normal()) if common else 0.0

    def _point_noise(self, x: np.ndarray) -> float:
        digest = hashlib.blake2b(x.tobytes(), digest_size=16).digest()
        key = [self._seed, *np.frombuffer(digest, dtype=np.uint32).tolist()]
        return float(np.random.default_rng(key).standard_normal())

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        values = self.objective.evaluate_batch(X)
        if self.common:
            return values + self.sigma * self._shared
        noise = np.array([self._point_noise(x) for x in X])
        return values + self.sigma * noise

    def __repr__(self) -> str:
        return f"Noisy({self.objective!r}, sigma={self.sigma:g}, common={self.common}) realization"
