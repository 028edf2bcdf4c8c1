"""A classifier's error rate (the 0-1 loss) as an objective: nothing to differentiate.

:class:`ErrorRateObjective` is the fraction of training rows a network misclassifies,
``mean_i [argmax_c out_i != y_i]``, as a function of its flat parameters. It is
piecewise constant: a small change of any weight changes no prediction, so its
derivative is exactly 0 wherever it exists (and undefined on the boundaries where a
prediction flips). Backpropagation and forward mode see that zero
(:meth:`~dfo.objective.Objective.value_and_grad` returns it, honestly); methods that
compare values (CMA-ES, random search) see the plateaus' differences and still train.

With ``batch_size`` it is stochastic like :class:`~dfo.nn.network_objective.NetworkObjective`:
every evaluation of one iteration sees the same minibatch.

Examples
--------
>>> import numpy as np
>>> from dfo.nn.network import MLP
>>> net = MLP([2, 4, 2])
>>> X = np.array([[1.0, 0.0], [0.0, 1.0]]); y = np.array([0, 1])
>>> obj = ErrorRateObjective(net, X, y)
>>> theta = net.init_params(0)
>>> value, grad = obj.value_and_grad(theta)
>>> value in (0.0, 0.5, 1.0), bool(np.all(grad == 0))
(True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dfo.nn.network import MLP
from dfo.nn.network_objective import NetworkObjective
from dfo.objective import Objective
from dfo.sampling import EpochSampler

__all__ = ["ErrorRateObjective"]


class ErrorRateObjective(Objective):
    """The error rate of an :class:`~dfo.nn.network.MLP` classifier over its parameters.

    Parameters
    ----------
    net : MLP
        A classifier (at least two outputs).
    X, y : array_like
        Training inputs and integer labels.
    batch_size : int, optional
        Minibatch size; None (default) evaluates every training row.
    X_test, y_test : array_like, optional
        Held-out data for :meth:`accuracy`.

    Attributes
    ----------
    network : NetworkObjective
        The same network and data with the cross-entropy loss (validation, minibatch
        draws, held-out accuracy).
    has_gradient : bool
        True: the derivative is exactly zero wherever it exists.

    Raises
    ------
    TypeError, ShapeError, ValueError, InvalidOptionError
        As :class:`~dfo.nn.network_objective.NetworkObjective` raises them.
    """

    has_gradient = True

    def __init__(
        self,
        net: MLP,
        X: Any,
        y: Any,
        *,
        batch_size: int | None = None,
        X_test: Any = None,
        y_test: Any = None,
    ) -> None:
        self.network = NetworkObjective(
            net, X, y, batch_size=batch_size, X_test=X_test, y_test=y_test
        )
        super().__init__(net.n_params)
        self.net = net
        self.X, self.y = self.network.X, self.network.y
        self.is_stochastic = self.network.is_stochastic

    def _evaluate_batch(self, Thetas: np.ndarray) -> np.ndarray:
        out = np.empty(Thetas.shape[0])
        for i, theta in enumerate(Thetas):
            # the network objective's inputs with their column of ones: no copy per call
            scores = self.net.forward(theta, self.network._Xe, check=False)
            out[i] = np.mean(np.argmax(scores, axis=1) != self.y)
        return out

    def _value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        # piecewise constant: the derivative is 0 wherever it exists
        return float(self._evaluate_batch(x[None, :])[0]), np.zeros(self.dim)

    def realization(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Objective:
        """The error rate on one minibatch drawn with ``rng`` (``self`` if full batch).

        Parameters
        ----------
        rng : numpy.random.Generator
        sampler : EpochSampler, optional
            The run's minibatch stream (see :meth:`NetworkObjective.realization`).
        """
        if not self.is_stochastic:
            return self
        batch = self.network.realization(rng, sampler)
        return ErrorRateObjective(self.net, batch.X, batch.y)  # type: ignore[attr-defined]

    def sampler(self) -> EpochSampler | None:
        """The minibatch stream of the underlying :class:`NetworkObjective`."""
        return self.network.sampler()

    def full_error(self, theta: Any) -> float:
        """Error rate of ``theta`` on the whole training set (for monitoring).

        Parameters
        ----------
        theta : array_like, shape (n_params,)
        """
        theta = self.net.check_theta(theta)
        return float(np.mean(self.net.predict(theta, self.X) != self.y))

    def accuracy(self, theta: Any) -> float:
        """Accuracy of ``theta`` on the held-out data.

        Parameters
        ----------
        theta : array_like, shape (n_params,)
        """
        return self.network.accuracy(theta)

    def __repr__(self) -> str:
        batch = "full" if self.network.batch_size is None else str(self.network.batch_size)
        return f"ErrorRateObjective({self.net!r}, n_train={self.X.shape[0]}, batch_size={batch})"
