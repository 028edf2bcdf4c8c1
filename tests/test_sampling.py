"""Shuffled epochs: every row once per epoch, the run's state, common random numbers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dfo
from dfo.nn.network_objective import MinibatchObjective
from dfo.sampling import EpochSampler


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), batch=st.integers(1, 40), epochs=st.integers(1, 4))
def test_every_row_once_per_epoch_in_full_batches(n, batch, epochs):
    batch = min(batch, n)
    sampler = EpochSampler(n, batch)
    rng = np.random.default_rng(n * 100 + batch)
    draws = [sampler.draw(rng).copy() for _ in range(-(-epochs * n // batch))]
    assert all(d.shape == (batch,) for d in draws)
    stream = np.concatenate(draws)
    for e in range(epochs):  # each block of n consecutive rows is a permutation
        np.testing.assert_array_equal(np.sort(stream[e * n : (e + 1) * n]), np.arange(n))
    assert sampler.state.epoch == -(-len(stream) // n)


def test_the_generator_draws_one_permutation_per_epoch():
    sampler, rng = EpochSampler(10, 3), np.random.default_rng(5)
    ref = np.random.default_rng(5)
    first = ref.permutation(10)
    np.testing.assert_array_equal(sampler.draw(rng), first[:3])
    state = rng.bit_generator.state
    sampler.draw(rng), sampler.draw(rng)  # rows 3..8: the same epoch
    assert rng.bit_generator.state == state
    second = ref.permutation(10)
    np.testing.assert_array_equal(sampler.draw(rng), [first[9], *second[:2]])


def test_a_pickled_sampler_holds_no_permutation_and_continues_identically():
    sampler, rng = EpochSampler(100_000, 64), np.random.default_rng(0)
    for _ in range(5):
        sampler.draw(rng)
    blob = pickle.dumps((sampler, rng))
    assert len(blob) < 2_000  # the generator state of the epoch, not 100,000 indices
    copy, rng_copy = pickle.loads(blob)
    assert copy == sampler
    for _ in range(3000):  # across the next epoch boundary
        np.testing.assert_array_equal(copy.draw(rng_copy), sampler.draw(rng))


def test_a_sampler_set_to_a_state_continues_from_it():
    sampler, rng = EpochSampler(50, 7), np.random.default_rng(0)
    for _ in range(9):  # into the second epoch
        sampler.draw(rng)
    state, rng_state = sampler.state, rng.bit_generator.state
    assert (state.position, state.epoch) == (13, 2)
    ahead = [sampler.draw(rng).copy() for _ in range(20)]
    rng.bit_generator.state = rng_state
    sampler.state = state
    assert sampler.state.position == 13
    np.testing.assert_array_equal(ahead, [sampler.draw(rng) for _ in range(20)])
    # a checkpoint's sampler (pickled as n_rows, batch_size and state) the same way
    rng.bit_generator.state = rng_state
    old = EpochSampler.__new__(EpochSampler)
    old.__setstate__({"n_rows": 50, "batch_size": 7, "state": pickle.loads(pickle.dumps(state))})
    np.testing.assert_array_equal(ahead, [old.draw(rng) for _ in range(20)])


def test_batch_size_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 5\]"):
        EpochSampler(5, 6)


class RecordingObjective(dfo.NetworkObjective):
    """Records the rows of every realization and of every evaluation on it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drawn: list[np.ndarray] = []
        self.evaluated: list[int] = []  # the realization each evaluation used

    def realization(self, rng, sampler=None):
        batch = super().realization(rng, sampler)
        self.drawn.append(batch.indices.copy())
        key, log = len(self.drawn) - 1, self.evaluated

        class Recorded(MinibatchObjective):
            def _evaluate_batch(self, X):
                log.extend([key] * X.shape[0])
                return super()._evaluate_batch(X)

            def _value_and_grad(self, x):
                log.append(key)
                return super()._value_and_grad(x)

            def _value_and_jvp(self, x, v):
                log.append(key)
                return super()._value_and_jvp(x, v)

        batch.__class__ = Recorded
        return batch


def recording_objective(n=50, batch_size=8):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(n, 3)), rng.integers(0, 2, size=n)
    net = dfo.MLP([3, 4, 2])
    return RecordingObjective(net, X, y, batch_size=batch_size), net.init_params(1)


def test_minimize_goes_through_shuffled_epochs():
    obj, theta = recording_objective()
    dfo.minimize(obj, theta, "backprop-sgd", budget=60, seed=0)
    stream = np.concatenate(obj.drawn[:-1])  # the last one: the final evaluation
    assert len(obj.drawn) == 60 and stream.size == 59 * 8
    for e in range(stream.size // 50):
        np.testing.assert_array_equal(np.sort(stream[e * 50 : (e + 1) * 50]), np.arange(50))
    again, _ = recording_objective()
    dfo.minimize(again, theta, "backprop-sgd", budget=60, seed=0)
    np.testing.assert_array_equal(np.concatenate(again.drawn), np.concatenate(obj.drawn))


@pytest.mark.parametrize(
    ("method", "options", "per_estimate"),
    [
        ("fd-sgd", {"h": 1e-4, "max_probes": 7}, 27),  # n + 1 probes in 4 asks
        ("spsa", {"c": 0.1, "n_directions": 2, "a": 0.1}, 4),
        ("forward-gradient", {}, 1),
        ("backprop-sgd", {}, 1),
    ],
)
def test_every_evaluation_of_one_estimate_uses_one_minibatch(method, options, per_estimate):
    obj, theta = recording_objective()
    assert theta.size == 26
    res = dfo.minimize(obj, theta, method, budget=400, seed=1, **options)
    counts = np.bincount(obj.evaluated)
    assert counts.sum() == res.nfev
    # the last realization is the final evaluation of the recommendation, alone; the
    # budget may have cut the estimate before it short
    assert counts[-1] == 1 and set(counts[:-2].tolist()) == {per_estimate}
    assert 1 <= counts[-2] <= per_estimate
    stream = np.concatenate(obj.drawn)
    np.testing.assert_array_equal(np.sort(stream[:50]), np.arange(50))  # epochs here too
