"""A network's training loss as an :class:`~dfo.objective.Objective`.

:class:`NetworkObjective` turns an :class:`~dfo.nn.network.MLP` and a data set into a
function of the flat parameter vector, so that every method in dfo trains the
same thing: derivative-free methods call :meth:`~dfo.objective.Objective.evaluate_batch`
(one vectorized pass over all candidates), gradient methods call
:meth:`~dfo.objective.Objective.value_and_grad` (backpropagation) or
:meth:`~dfo.objective.Objective.value_and_jvp` (forward mode).

With ``batch_size`` set the objective is stochastic: :meth:`NetworkObjective.realization`
draws one minibatch and returns a small objective bound to it, on which every
evaluation of one iteration is made (common random numbers). Calling the
objective itself always evaluates the full training set.

Examples
--------
>>> import numpy as np
>>> from dfo.nn.network import MLP
>>> rng = np.random.default_rng(0)
>>> X, y = rng.normal(size=(200, 4)), rng.integers(0, 3, size=200)
>>> net = MLP([4, 8, 3])
>>> obj = NetworkObjective(net, X, y, batch_size=32)
>>> theta = net.init_params(rng)
>>> batch_obj = obj.realization(np.random.default_rng(1))   # one fixed minibatch
>>> batch_obj.evaluate_batch(np.stack([theta, 2 * theta])).shape
(2,)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from numbers import Integral
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.nn.losses import Loss, get_loss
from dfo.nn.network import _COLUMNS_FROM, MLP
from dfo.objective import Objective, as_real, check_dtype, check_point
from dfo.sampling import EpochSampler

__all__ = ["MinibatchObjective", "NetworkObjective"]

#: inputs up to this size keep a column-major copy for float32 populations
_COLUMNS_COPY_BYTES = 16 * 2**20
#: views and copies of the inputs, remade after unpickling
_NOT_PICKLED = frozenset({"X", "_Xe_columns"})


def _checked(
    stream: Callable[[np.ndarray], tuple[float, np.ndarray]], dtype: np.dtype
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``stream``, marked as giving a float and a gradient of shape ``(n_params,)`` in ``dtype``.

    What ``MLP.loss_and_grad`` returns: the lean loop (:mod:`dfo.run.lean`) need not
    check it again for an iterate of that type.
    """
    stream.checked_dtype = dtype  # type: ignore[attr-defined]
    return stream


class _NetLoss(Objective):
    """Loss of ``net`` on fixed, validated data ``(X, y)``, as an Objective."""

    has_gradient = True
    has_jvp = True

    def __init__(self, net: MLP, X: np.ndarray, y: np.ndarray, lossfn: Loss) -> None:
        super().__init__(net.n_params)
        self.net = net
        # the inputs are held once, with the column of ones of the first layer's bias
        # (MLP._inputs); X is a view of them
        self._Xe = net._inputs(X)
        self.X = self._Xe[:, :-1]
        self.y = y
        self._lossfn = lossfn
        self.dtype = net.dtype

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name not in _NOT_PICKLED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, X=state["_Xe"][:, :-1])

    @property
    def loss(self) -> str:
        """Name of the loss (``"cross_entropy"`` or ``"mse"``)."""
        return self._lossfn.name

    def __call__(self, x: Any) -> float:
        """Loss at one parameter vector ``x`` of shape ``(n_params,)``."""
        # same value as evaluate_batch(x[None]), without the batch machinery
        theta = as_real(check_point(x, self.dim), self.dtype)
        return self.net.loss(theta, self._Xe, self.y, self._lossfn, check=False)

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        # X here is a batch of parameter vectors (k, n_params), already checked.
        Xe = self._population_inputs(X.shape[0])
        return self.net.population_loss(X, Xe, self.y, self._lossfn, check=False)

    def _population_inputs(self, k: int) -> np.ndarray:
        """``[X, 1]`` for a population of ``k``: in float32, a column-major copy.

        ``MLP.population_loss`` runs float32 populations in columns, from the
        transpose of ``[X, 1]``: held here (made once, when the inputs are at most
        16 MiB and a population that runs in columns first needs it), the forward does
        not transpose them at every call. The same values, so the same losses.
        """
        Xe = self._Xe
        if self.dtype.char != "f":
            return Xe
        columns = self.__dict__.get("_Xe_columns")
        if columns is None and k >= _COLUMNS_FROM and Xe.nbytes <= _COLUMNS_COPY_BYTES:
            columns = self._Xe_columns = np.asfortranarray(Xe)
        return Xe if columns is None else columns

    def _value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        theta = as_real(x, self.dtype)
        return self.net.loss_and_grad(theta, self._Xe, self.y, self._lossfn, check=False)

    def _value_and_jvp(self, x: np.ndarray, v: np.ndarray) -> tuple[float, float]:
        theta, v = as_real(x, self.dtype), as_real(v, self.dtype)
        return self.net.jvp(theta, v, self._Xe, self.y, self._lossfn, check=False)

    def gradient_stream(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        """Backpropagation at the iterate on the whole data, without a copy of the point.

        A subclass with a gradient of its own gets :class:`Objective`'s stream.
        """
        if type(self)._value_and_grad is not _NetLoss._value_and_grad:
            return super().gradient_stream(rng, sampler)
        net, X, y, lossfn, dtype = self.net, self._Xe, self.y, self._lossfn, self.dtype

        def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            return net.loss_and_grad(as_real(x, dtype), X, y, lossfn, check=False)

        return _checked(value_and_grad, dtype)

    def jvp_stream(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
        """Forward mode at the iterate on the whole data, without copies of the point.

        A subclass with a forward mode of its own gets :class:`Objective`'s stream.
        """
        if type(self)._value_and_jvp is not _NetLoss._value_and_jvp:
            return super().jvp_stream(rng, sampler)
        net, X, y, lossfn, dtype = self.net, self._Xe, self.y, self._lossfn, self.dtype

        def value_and_jvp(x: np.ndarray, v: np.ndarray) -> tuple[float, float]:
            return net.jvp(as_real(x, dtype), as_real(v, dtype), X, y, lossfn, check=False)

        return value_and_jvp


class MinibatchObjective(_NetLoss):
    """The loss on one fixed minibatch, returned by :meth:`NetworkObjective.realization`.

    Deterministic (its own :meth:`realization` returns itself) and picklable: it
    holds only the network and the minibatch rows.

    Attributes
    ----------
    indices : ndarray of int
        Rows of the parent's training set in this minibatch.
    """

    def __init__(
        self, net: MLP, X: np.ndarray, y: np.ndarray, lossfn: Loss, indices: np.ndarray
    ) -> None:
        super().__init__(net, X, y, lossfn)
        self.indices = indices

    @classmethod
    def of(
        cls, parent: NetworkObjective, X: np.ndarray, y: np.ndarray, indices: np.ndarray
    ) -> MinibatchObjective:
        """The minibatch ``(X, y)`` (rows ``indices``) of ``parent``, checked there.

        The constructor's work without its checks: a run makes one per iteration.
        ``X`` holds the rows with the parent's column of ones (``[X, 1]``).
        """
        batch = cls.__new__(cls)
        batch.__dict__.update(
            dim=parent.dim,
            net=parent.net,
            _Xe=X,
            X=X[:, :-1],
            y=y,
            _lossfn=parent._lossfn,
            dtype=parent.dtype,
            indices=indices,
        )
        return batch

    def __repr__(self) -> str:
        return f"MinibatchObjective({self.net!r}, loss={self.loss!r}, rows={len(self.indices)})"


class NetworkObjective(_NetLoss):
    """The training loss of an :class:`~dfo.nn.network.MLP` over its flat parameters.

    Parameters
    ----------
    net : MLP
        The network; ``dim`` is ``net.n_params``.
    X : array_like, shape (n, n_in)
        Training inputs (finite).
    y : array_like
        Training targets: integer labels ``(n,)`` in ``[0, n_out)`` for
        ``"cross_entropy"``; ``(n, n_out)`` (or ``(n,)`` if ``n_out == 1``) for ``"mse"``.
    loss : {"cross_entropy", "mse"}, default "cross_entropy"
        See :mod:`dfo.nn.losses`.
    batch_size : int, optional
        Minibatch size. None (default) uses the full training set every time and
        the objective is deterministic; an int makes it stochastic
        (``is_stochastic`` is True): :meth:`realization` takes ``batch_size`` rows,
        in a run the next minibatch of shuffled epochs (every row once per epoch;
        see :mod:`dfo.sampling`).
    X_test, y_test : array_like, optional
        Held-out data for :meth:`accuracy` (and :meth:`test_loss`).
    dtype : {"float64", "float32"} or numpy type, optional
        Float type of the arithmetic; default the network's. Another type than the
        network's evaluates a copy of the network in that type (``net`` then holds
        the copy). Data are stored in it; points and gradients cross the objective
        interface as float64 (``evaluate_batch`` also takes rows of this type as they
        are, without a conversion).

    Attributes
    ----------
    net : MLP
    X, y : ndarray
        The validated training data (inputs in ``dtype``; labels as ``intp``).
    dtype : numpy.dtype
    X_test, y_test : ndarray or None
    batch_size : int or None
    n_train : int

    Raises
    ------
    TypeError
        If ``net`` is not an MLP, or data are not numeric.
    ShapeError
        If data shapes do not fit the network or each other.
    ValueError
        If data contain nan or inf, labels are out of range, or ``batch_size``
        is not in ``[1, n]``.

    Notes
    -----
    The data are validated once, here; evaluations then skip all checks.
    Calling the objective (``obj(theta)``, ``evaluate_batch``, ``value_and_grad``)
    always uses the whole training set, also when ``batch_size`` is set.
    """

    def __init__(
        self,
        net: MLP,
        X: Any,
        y: Any,
        *,
        loss: str = "cross_entropy",
        batch_size: int | None = None,
        X_test: Any = None,
        y_test: Any = None,
        dtype: Any = None,
    ) -> None:
        if not isinstance(net, MLP):
            raise TypeError(f"net must be a dfo.MLP; got {type(net).__name__}")
        if dtype is not None and check_dtype(dtype) != net.dtype:
            net = MLP(
                net.sizes, net.activation, output_activation=net.output_activation, dtype=dtype
            )
        lossfn = get_loss(loss)
        X = np.ascontiguousarray(net.check_inputs(X, "X"))
        y = np.ascontiguousarray(net.check_targets(y, X.shape[0], lossfn, "y"))
        super().__init__(net, X, y, lossfn)
        self.n_train = X.shape[0]

        if batch_size is not None:
            if (
                not isinstance(batch_size, Integral)
                or isinstance(batch_size, bool)
                or not 1 <= batch_size <= self.n_train
            ):
                raise ValueError(
                    f"batch_size must be None or an integer in [1, {self.n_train}] "
                    f"(the number of training rows); got {batch_size!r}"
                )
            batch_size = int(batch_size)
        self.batch_size = batch_size
        self.is_stochastic = batch_size is not None

        if (X_test is None) != (y_test is None):
            raise ValueError("X_test and y_test must be given together")
        self.X_test: np.ndarray | None = None
        self.y_test: np.ndarray | None = None
        if X_test is not None:
            self.X_test = np.ascontiguousarray(net.check_inputs(X_test, "X_test"))
            self.y_test = net.check_targets(y_test, self.X_test.shape[0], lossfn, "y_test")

    # -- stochastic interface ------------------------------------------------------
    def realization(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Objective:
        """The loss on one minibatch (or ``self`` if full batch).

        With ``sampler`` (the run's, from :meth:`sampler`) the minibatch is the next
        one of its shuffled epochs, and ``rng`` draws each epoch's permutation;
        without it, ``batch_size`` rows are drawn with ``rng`` without replacement.
        The same generator (and sampler) state gives the same minibatch. Only the
        drawn rows are copied, in one ``take`` per array.
        """
        if self.batch_size is None:
            return self
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
        idx = self._next_rows(rng, sampler)
        return MinibatchObjective.of(
            self, self._Xe.take(idx, axis=0), self.y.take(idx, axis=0), idx
        )

    def _next_rows(self, rng: np.random.Generator, sampler: EpochSampler | None) -> np.ndarray:
        """The rows of the next minibatch (:meth:`realization`'s draw)."""
        assert self.batch_size is not None
        if sampler is None:
            return rng.choice(self.n_train, size=self.batch_size, replace=False)
        return sampler.draw(rng)

    def _own_minibatches(self, hook: str) -> bool:
        """Whether the realizations and ``hook`` are this class's: a stream may then fill buffers.

        A subclass that draws its realizations or evaluates in its own way gets
        :class:`Objective`'s streams, built on those.
        """
        cls = type(self)
        return cls.realization is NetworkObjective.realization and getattr(cls, hook) is getattr(
            _NetLoss, hook
        )

    def _minibatch_buffers(
        self, rng: np.random.Generator, sampler: EpochSampler | None
    ) -> tuple[Callable[[], None], np.ndarray, np.ndarray]:
        """``(fill, X_batch, y_batch)``: ``fill()`` takes the next minibatch into the buffers.

        The rows :meth:`realization` would draw, written into the same two arrays at
        every call (no per-call objects; the rows stay in cache).
        """
        assert self.batch_size is not None
        X, y, size = self._Xe, self.y, self.batch_size
        X_batch = np.empty((size, *X.shape[1:]), dtype=X.dtype)
        y_batch = np.empty((size, *y.shape[1:]), dtype=y.dtype)
        # once per iteration: bound methods and positional arguments, no lookups
        take_X, take_y = X.take, y.take
        if sampler is None:
            next_rows = partial(rng.choice, self.n_train, size, False)
        else:
            next_rows = partial(sampler.draw, rng)

        def fill() -> None:
            idx = next_rows()
            # the rows are valid: "clip" checks nothing, and writes straight into the buffers
            # ("raise" would write into a temporary and copy it)
            take_X(idx, 0, X_batch, "clip")
            take_y(idx, 0, y_batch, "clip")

        return fill, X_batch, y_batch

    def gradient_stream(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        """Backpropagation at the iterate on the next minibatch of each call.

        The minibatch :meth:`realization` would draw, taken into the same two
        buffers at every call (:meth:`_minibatch_buffers`). A subclass with
        realizations or a gradient of its own gets :class:`Objective`'s.
        """
        if self.batch_size is None:
            return super().gradient_stream(rng, sampler)
        if not self._own_minibatches("_value_and_grad"):
            return Objective.gradient_stream(self, rng, sampler)
        loss_and_grad, lossfn, dtype = self.net.loss_and_grad, self._lossfn, self.dtype
        fill, X_batch, y_batch = self._minibatch_buffers(rng, sampler)

        def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            fill()
            theta = x if type(x) is np.ndarray and x.dtype == dtype else as_real(x, dtype)
            return loss_and_grad(theta, X_batch, y_batch, lossfn, check=False)

        return _checked(value_and_grad, dtype)

    def jvp_stream(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
        """Forward mode at the iterate on the next minibatch of each call.

        The minibatch :meth:`realization` would draw, in two buffers
        (:meth:`_minibatch_buffers`). A subclass with realizations or a forward mode of
        its own gets :class:`Objective`'s.
        """
        if self.batch_size is None:
            return super().jvp_stream(rng, sampler)
        if not self._own_minibatches("_value_and_jvp"):
            return Objective.jvp_stream(self, rng, sampler)
        net, lossfn, dtype = self.net, self._lossfn, self.dtype
        fill, X_batch, y_batch = self._minibatch_buffers(rng, sampler)

        def value_and_jvp(x: np.ndarray, v: np.ndarray) -> tuple[float, float]:
            fill()
            theta, tangent = as_real(x, dtype), as_real(v, dtype)
            return net.jvp(theta, tangent, X_batch, y_batch, lossfn, check=False)

        return value_and_jvp

    def batch_stream(
        self, rng: np.random.Generator, sampler: EpochSampler | None = None
    ) -> Callable[[np.ndarray], np.ndarray]:
        """The population's losses on the next minibatch of each call.

        The minibatch :meth:`realization` would draw, in two buffers
        (:meth:`_minibatch_buffers`). A subclass with realizations or an evaluation of
        its own gets :class:`Objective`'s.
        """
        if self.batch_size is None:
            return super().batch_stream(rng, sampler)
        if not self._own_minibatches("_evaluate_batch"):
            return Objective.batch_stream(self, rng, sampler)
        net, lossfn = self.net, self._lossfn
        fill, X_batch, y_batch = self._minibatch_buffers(rng, sampler)

        def values(X: np.ndarray) -> np.ndarray:
            fill()
            return net.population_loss(X, X_batch, y_batch, lossfn, check=False)

        return values

    def sampler(self) -> EpochSampler | None:
        """Shuffled epochs of ``batch_size`` rows for a run (None if full batch)."""
        if self.batch_size is None:
            return None
        return EpochSampler(self.n_train, self.batch_size)

    # -- monitoring (not meant to be charged to an optimizer's budget) -------------
    def full_loss(self, theta: Any) -> float:
        """Loss of ``theta`` on the whole training set."""
        theta = self.net.check_theta(theta)
        return self.net.loss(theta, self._Xe, self.y, self._lossfn, check=False)

    def test_loss(self, theta: Any) -> float:
        """Loss of ``theta`` on the held-out data."""
        X, y = self._test_data()
        return self.net.loss(self.net.check_theta(theta), X, y, self._lossfn, check=False)

    def accuracy(self, theta: Any, X: Any = None, y: Any = None) -> float:
        """Classification accuracy of ``theta``.

        On the held-out data ``(X_test, y_test)`` by default, or on ``(X, y)`` when
        given (pass ``obj.X, obj.y`` for the training accuracy).

        Raises
        ------
        ValueError
            If no data are given and the objective has no held-out data.
        InvalidOptionError
            If the network has a single output (regression).
        """
        if self.net.n_out < 2:
            raise InvalidOptionError(
                "accuracy needs a classifier with one output per class; the network has "
                "a single output"
            )
        if (X is None) != (y is None):
            raise ValueError("give both X and y, or neither (held-out data)")
        if X is None:
            X, y = self._test_data()
        return self.net.accuracy(theta, X, y)

    def _test_data(self) -> tuple[np.ndarray, np.ndarray]:
        if self.X_test is None or self.y_test is None:
            raise ValueError(
                "this NetworkObjective has no held-out data: pass X_test= and y_test= "
                "when creating it, or give X and y"
            )
        return self.X_test, self.y_test

    def __repr__(self) -> str:
        batch = "full" if self.batch_size is None else str(self.batch_size)
        return (
            f"NetworkObjective({self.net!r}, loss={self.loss!r}, n_train={self.n_train}, "
            f"batch_size={batch})"
        )
