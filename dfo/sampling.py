"""Minibatches drawn as shuffled epochs, with the state a run keeps between iterations.

Each epoch is a permutation of the training rows drawn from the run's generator;
minibatches are consecutive slices of the stream of epochs (``shuffle``, ``repeat``,
``batch``), so every row is used once per epoch and every minibatch has
``batch_size`` rows. A minibatch that crosses into the next epoch takes the last
rows of one permutation and the first rows of the next (it may then hold a row
twice). The generator is used once per epoch, not once per minibatch.

:func:`dfo.minimize` asks a stochastic objective for its :class:`EpochSampler`
(:meth:`dfo.Objective.sampler`), keeps it beside the run's generator, passes it to
every :meth:`~dfo.Objective.realization` and saves it in checkpoints, so that a
resumed run continues the same epochs bit for bit.

Examples
--------
>>> import numpy as np
>>> sampler = EpochSampler(5, 2)
>>> rng = np.random.default_rng(0)
>>> rows = np.concatenate([sampler.draw(rng) for _ in range(5)])  # two epochs
>>> sorted(rows[:5].tolist()), sorted(rows[5:].tolist())
([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["EpochSampler", "EpochState"]


class EpochState(NamedTuple):
    """Where a sampler is in its stream: the epoch's permutation, the next row, the epoch.

    The permutation is never changed in place (a new epoch makes a new array), so a
    state is a cheap snapshot. ``origin`` is the generator state the permutation was
    drawn from: a state pickles as that and is drawn again when unpickled, so a
    checkpoint holds a few numbers, not one index per row.

    Attributes
    ----------
    order : ndarray of int
        The permutation of the current epoch (empty before the first).
    position : int
        Where the next minibatch starts in ``order``.
    epoch : int
        Epochs begun.
    origin : dict or None
        The generator state ``order`` was drawn from.
    """

    order: np.ndarray
    position: int
    epoch: int
    origin: dict[str, Any] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (self.origin, self.order.size, self.position, self.epoch)


def _permutation(origin: dict[str, Any], n_rows: int) -> np.ndarray:
    """The permutation of ``n_rows`` a generator in the state ``origin`` draws."""
    rng = np.random.Generator(getattr(np.random, origin["bit_generator"])())
    rng.bit_generator.state = origin
    return rng.permutation(n_rows)


def _rebuild(origin: dict[str, Any] | None, n_rows: int, position: int, epoch: int) -> EpochState:
    order = np.empty(0, dtype=np.intp) if origin is None else _permutation(origin, n_rows)
    return EpochState(order, position, epoch, origin)


class EpochSampler:
    """The rows of successive minibatches of ``batch_size`` out of ``n_rows``.

    Parameters
    ----------
    n_rows : int
        Rows of the training set.
    batch_size : int
        Rows per minibatch, in ``[1, n_rows]``.

    Attributes
    ----------
    state : EpochState
        The current permutation, the position of the next minibatch in it, and the
        number of epochs begun (0 before the first draw). Settable (a resumed run).
    """

    def __init__(self, n_rows: int, batch_size: int) -> None:
        if not 1 <= batch_size <= n_rows:
            raise ValueError(
                f"batch_size must be in [1, {n_rows}] (the number of rows); got {batch_size}"
            )
        self.n_rows = int(n_rows)
        self.batch_size = int(batch_size)
        self.state = EpochState(np.empty(0, dtype=np.intp), 0, 0)

    # the state is kept in plain attributes, so that a draw within an epoch only
    # moves an int (it is called once per iteration); ``_end`` is ``_order.size``
    @property
    def state(self) -> EpochState:
        """The permutation, the next minibatch's position in it, the epochs begun."""
        return EpochState(self._order, self._position, self._epoch, self._origin)

    @state.setter
    def state(self, state: EpochState) -> None:
        self._order, self._position, self._epoch, self._origin = state
        self._end = self._order.size

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Row indices of the next minibatch (a view of the permutation: do not change it).

        ``rng`` is used only when a new epoch begins (one permutation).
        """
        position = self._position
        stop = position + self.batch_size
        if stop <= self._end:  # within the epoch: a slice
            self._position = stop
            return self._order[position:stop]
        rest = self._order[position:]
        origin = dict(rng.bit_generator.state)
        order = rng.permutation(self.n_rows)
        stop = self.batch_size - rest.size
        self.state = EpochState(order, stop, self._epoch + 1, origin)
        return np.concatenate([rest, order[:stop]]) if rest.size else order[:stop]

    def __getstate__(self) -> dict[str, Any]:
        # pickled as its state (which pickles as a generator state, not the permutation)
        return {"n_rows": self.n_rows, "batch_size": self.batch_size, "state": self.state}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.n_rows, self.batch_size = state["n_rows"], state["batch_size"]
        self.state = state["state"]

    def copy(self) -> EpochSampler:
        """An independent sampler in the same state."""
        other = EpochSampler(self.n_rows, self.batch_size)
        other.state = self.state
        return other

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EpochSampler)
            and (self.n_rows, self.batch_size) == (other.n_rows, other.batch_size)
            and self.state.position == other.state.position
            and self.state.epoch == other.state.epoch
            and np.array_equal(self.state.order, other.state.order)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"EpochSampler(n_rows={self.n_rows}, batch_size={self.batch_size}, "
            f"epoch={self.state.epoch}, position={self.state.position})"
        )
