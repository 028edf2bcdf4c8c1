"""Evolution strategies at population scale (Salimans et al., 2017, "Evolution Strategies
as a Scalable Alternative to Reinforcement Learning"; the OpenAI-ES update).

Each iteration draws ``m = popsize / 2`` Gaussian directions ``eps_j ~ N(0, I)`` and
evaluates the whole antithetic population ``x + sigma eps_j``, ``x - sigma eps_j`` in one
``evaluate_batch``. The values are replaced by their centered ranks ``u`` (in
``[-1/2, 1/2]``, non-finite values ranked worst), which makes the update blind to the
scale of the loss and to outliers, and

    g = 1 / (popsize sigma) * sum_j (u_j^+ - u_j^-) eps_j  (+ weight_decay * x)

is a smoothed gradient of the loss's ranks; a dfo step rule turns it into a step
(Adam by default). The directions of one iteration come from one seed
(:func:`perturbations`), so a worker that knows the seed and ``sigma`` can rebuild its
candidates, and its master needs only the values back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.objective import check_dtype
from dfo.optimizers import register
from dfo.optimizers.gradient import GradientStepOptimizer, _positive, _positive_int
from dfo.optimizers.step_rules import StepRule

__all__ = ["EvolutionStrategy", "centered_ranks", "perturbations"]


def perturbations(seed: int, m: int, dim: int, dtype: Any = np.float64) -> np.ndarray:
    """The ``m`` Gaussian directions ``(m, dim)`` of one iteration, rebuilt from its seed.

    Parameters
    ----------
    seed : int
        The iteration's seed (``EvolutionStrategy.perturbation_seed``).
    m, dim : int
        Number of directions (half the population) and dimension.
    dtype : float type, default float64
        float32 draws are about twice as fast (and different numbers).

    Returns
    -------
    ndarray, shape (m, dim)
    """
    return np.random.default_rng(seed).standard_normal((m, dim), dtype=dtype)


def centered_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` scaled to ``[-1/2, 1/2]`` (lowest value -1/2); non-finite worst.

    Parameters
    ----------
    values : ndarray, shape (k,)

    Returns
    -------
    ndarray, shape (k,), float64
        ``rank / (k - 1) - 1/2`` (0 for ``k = 1``); ties keep their order.

    Examples
    --------
    >>> centered_ranks(np.array([3.0, -1.0, np.nan, 0.5]))
    array([ 0.16666667, -0.5       ,  0.5       , -0.16666667])
    """
    keys = np.where(np.isfinite(values), values, np.inf)
    ranks = np.empty(keys.size)
    ranks[np.argsort(keys, kind="stable")] = np.arange(keys.size)
    if keys.size > 1:
        ranks /= keys.size - 1
    return ranks - 0.5 if keys.size > 1 else ranks


@register("es")
class EvolutionStrategy(GradientStepOptimizer):
    """OpenAI-ES: antithetic Gaussian perturbations, centered ranks, a step rule.

    Parameters
    ----------
    sigma : float, default 0.02
        Standard deviation of the perturbations.
    popsize : int, optional
        Candidates per iteration, even (``popsize / 2`` antithetic pairs); default
        ``max(8, 4 + floor(3 ln n))`` rounded up to even.
    learning_rate : float, default 0.01
        Step size of the step rule at the first iteration.
    step_rule : {"sgd", "momentum", "adam"} or StepRule, default "adam"
    alpha : float, default 0
        Decay of the learning rate, Spall style: ``learning_rate * ((A + 1) / (k + 1 +
        A))**alpha`` at iteration ``k`` (0: constant).
    A : float, optional
        Stability constant of that decay; default 10% of the iterations the budget
        allows.
    weight_decay : float, default 0
        Adds ``weight_decay * x`` to the estimate (L2 regularization, as Salimans et al.).
    dtype : {"float64", "float32"}, optional
        Float type the population is built in (float32: half the memory traffic, and a
        float32 objective evaluates it without conversion); :func:`dfo.minimize` sets the
        objective's type. The iterate stays float64.
    patience, divergence
        As for :class:`dfo.optimizers.gradient.BackpropSGD` (the value checked is the
        mean of the population's values).

    Attributes
    ----------
    perturbation_seed : int
        Seed of the directions of the last iteration asked (:func:`perturbations`).

    Examples
    --------
    >>> import numpy as np, dfo
    >>> res = dfo.minimize(lambda x: float(np.sum((x - 1) ** 2)), np.zeros(5), method="es",
    ...                    budget=6000, seed=0, sigma=0.1, learning_rate=0.05)
    >>> bool(res.fun < 1e-2)
    True
    """

    def __init__(
        self,
        x0: Any,
        *,
        seed: int | None = None,
        budget: int | None = None,
        sigma: float = 0.02,
        popsize: int | None = None,
        learning_rate: float = 0.01,
        step_rule: str | StepRule = "adam",
        alpha: float = 0.0,
        A: float | None = None,
        weight_decay: float = 0.0,
        dtype: str | None = None,
        patience: int = 10,
        divergence: float = 1e4,
    ) -> None:
        super().__init__(
            x0,
            seed=seed,
            budget=budget,
            learning_rate=learning_rate,
            step_rule=step_rule,
            patience=patience,
            divergence=divergence,
        )
        _positive("sigma", sigma)
        if popsize is None:
            popsize = max(8, 4 + int(3 * math.log(self.dim)))
            popsize += popsize % 2
        popsize = _positive_int("popsize", popsize)
        if popsize % 2:
            raise InvalidOptionError(
                f"popsize must be even (antithetic pairs x + sigma eps, x - sigma eps); "
                f"got {popsize}"
            )
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not alpha >= 0:
            raise InvalidOptionError(f"alpha must be a number >= 0; got {alpha!r}")
        if (
            isinstance(weight_decay, bool)
            or not isinstance(weight_decay, int | float)
            or not 0 <= weight_decay < math.inf
        ):
            raise InvalidOptionError(f"weight_decay must be a number >= 0; got {weight_decay!r}")
        if A is None:
            A = 0.1 * (budget // popsize if budget else 100)
        if isinstance(A, bool) or not isinstance(A, int | float) or not 0 <= A < math.inf:
            raise InvalidOptionError(f"A must be a number >= 0; got {A!r}")
        self.sigma, self.popsize = float(sigma), popsize
        self.alpha, self.A, self.weight_decay = float(alpha), float(A), float(weight_decay)
        self.dtype = None if dtype is None else check_dtype(dtype).name
        self.k = 0
        self.perturbation_seed = 0
        self._eps: np.ndarray | None = None

    def _ask(self) -> np.ndarray:
        m = self.popsize // 2
        dtype = self.dtype or "float64"
        self.perturbation_seed = int(self.rng.integers(2**63))
        self._eps = eps = perturbations(self.perturbation_seed, m, self.dim, dtype)
        X = np.empty((2 * m, self.dim), dtype=dtype)
        np.multiply(eps, self.sigma, out=X[:m])
        np.negative(X[:m], out=X[m:])
        X += self.x.astype(dtype, copy=False)  # x + sigma eps_j, then x - sigma eps_j
        return X

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        m = self.popsize // 2
        eps = (
            self._eps
            if self._eps is not None
            else perturbations(self.perturbation_seed, m, self.dim, self.dtype or "float64")
        )
        self._eps = None
        finite = np.isfinite(values)
        if not finite.any():
            return self._step(math.nan, None)
        u = centered_ranks(values)
        weights = (u[:m] - u[m:]) / (self.popsize * self.sigma)
        grad = (weights.astype(eps.dtype) @ eps).astype(np.float64)
        if self.weight_decay:
            grad += self.weight_decay * self.x
        value = float(values[finite].mean())
        reported = self._step(value, grad)
        self.k += 1
        return reported

    def _rate(self) -> float:
        return self.learning_rate * ((self.A + 1.0) / (self.k + 1.0 + self.A)) ** self.alpha

    def options(self) -> dict[str, Any]:
        extra = {} if self.dtype is None else {"dtype": self.dtype}
        return {
            **super().options(),
            "sigma": self.sigma,
            "popsize": self.popsize,
            "alpha": self.alpha,
            "A": self.A,
            "weight_decay": self.weight_decay,
            **extra,
        }
