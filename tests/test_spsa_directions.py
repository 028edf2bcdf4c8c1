"""SPSA's Rademacher directions: numpy's bytes, drawn faster, the same stream."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dfo
from dfo.optimizers.gradient import random_bytes


@pytest.mark.parametrize("before", [None, "int32", "int64", "normal"])
def test_random_bytes_are_numpys_bytes_and_leave_the_same_stream(before):
    sizes = [1, 3, 4, 5, 7, 8, 9, 12, 16, 151, 152, 153, 156]
    for first, second in itertools.product(sizes, repeat=2):
        ref, fast = np.random.default_rng(7), np.random.default_rng(7)
        for rng in (ref, fast):  # a pending half of a 64-bit output, or none
            if before == "int32":
                rng.integers(0, 2**31, dtype=np.int32)
            elif before == "int64":
                rng.integers(2**63)
            elif before == "normal":
                rng.standard_normal(3)
        for n in (first, second):
            expected = ref.integers(0, 256, size=n, dtype=np.uint8)
            got = random_bytes(fast, n)
            assert got.dtype == np.uint8 and got.shape == (n,)
            np.testing.assert_array_equal(got, expected)
        # every later draw is the same, whichever half of an output comes next
        np.testing.assert_array_equal(fast.integers(0, 7, size=9), ref.integers(0, 7, size=9))
        np.testing.assert_array_equal(fast.random(5), ref.random(5))


def _numpy_signs(rng, q, dim):
    """The directions written out: 1 - 2 * the unpacked bits of numpy's bytes."""
    packed = rng.integers(0, 256, size=(q, (dim + 7) // 8), dtype=np.uint8)
    return 1.0 - 2.0 * np.unpackbits(packed, axis=1, count=dim).astype(np.float64)


@pytest.mark.parametrize(("dim", "q"), [(1, 1), (7, 3), (8, 2), (1210, 1), (1211, 3), (64, 5)])
def test_directions_are_the_signs_of_numpys_bits(dim, q):
    opt = dfo.make_optimizer("spsa", np.zeros(dim), seed=4, budget=1000, c=0.1, a=0.1)
    ref = np.random.default_rng(4)  # the optimizer's generator, from the same seed
    for _ in range(3):
        delta = opt._directions(q)
        assert delta.shape == (q, dim) and delta.dtype == np.float64
        assert delta.flags.c_contiguous
        np.testing.assert_array_equal(delta, _numpy_signs(ref, q, dim))
