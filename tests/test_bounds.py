"""dfo.bounds: every accepted form of bounds, one Box."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from dfo.bounds import Box, parse_bounds
from dfo.exceptions import InvalidOptionError, ShapeError

INF = np.inf


@pytest.mark.parametrize(
    ("bounds", "lower", "upper"),
    [
        (scipy.optimize.Bounds([0, -1, -INF], [1, 1, 2]), [0, -1, -INF], [1, 1, 2]),
        (scipy.optimize.Bounds(-2, 2), [-2, -2, -2], [2, 2, 2]),
        ([(0, 1), (None, 5), (-1, None)], [0, -INF, -1], [1, 5, INF]),
        (((0, 1), (0, 1), (0, 1)), [0, 0, 0], [1, 1, 1]),
        ((np.zeros(3), np.array([1, 2, 3])), [0, 0, 0], [1, 2, 3]),
        ((-1.0, 1.0), [-1, -1, -1], [1, 1, 1]),
        ((None, [1, 2, 3]), [-INF, -INF, -INF], [1, 2, 3]),
        ((0, None), [0, 0, 0], [INF, INF, INF]),
        ([np.float32(0), 1], [0, 0, 0], [1, 1, 1]),
    ],
)
def test_every_form_gives_the_same_box(bounds, lower, upper):
    box = parse_bounds(bounds, 3)
    assert box == Box(np.array(lower, float), np.array(upper, float))
    # scipy reads the same box from our pairs
    again = scipy.optimize.Bounds(
        *zip(
            *[(-INF if a is None else a, INF if b is None else b) for a, b in box.pairs()],
            strict=True,
        )
    )
    np.testing.assert_array_equal(again.lb, lower)
    np.testing.assert_array_equal(again.ub, upper)


def test_two_variables_pairs_are_scipys_reading():
    box = parse_bounds([(0, 1), (2, 3)], 2)
    assert box.lower.tolist() == [0, 2] and box.upper.tolist() == [1, 3]
    other = parse_bounds((np.array([0, 1]), np.array([2, 3])), 2)
    assert other.lower.tolist() == [0, 1] and other.upper.tolist() == [2, 3]
    with pytest.raises(InvalidOptionError, match="pass numpy arrays"):
        parse_bounds([[0, 0], [1, 1]], 2)  # meant as (lower, upper): x_0 in [0, 0]


@pytest.mark.parametrize(
    ("bounds", "error", "match"),
    [
        ([(0, 1)] * 3, ShapeError, "3 \\(lo, hi\\) pairs; x0 has 4"),
        ((np.zeros(3), np.ones(3)), ShapeError, "shape \\(4,\\)"),
        ((1.0, 0.0), InvalidOptionError, "lower < upper .* index 0"),
        ((0.0, [1, 1, 0, 1]), InvalidOptionError, "index 2"),
        ((np.nan, 1.0), InvalidOptionError, "nan"),
        ("box", InvalidOptionError, "Bounds, a sequence of 4"),
        (5.0, InvalidOptionError, "Bounds, a sequence of 4"),
        (("a", "b"), InvalidOptionError, "lower bound"),
    ],
)
def test_bad_bounds_say_what_was_expected(bounds, error, match):
    with pytest.raises(error, match=match):
        parse_bounds(bounds, 4)


def test_projections_stay_inside():
    box = parse_bounds([(0, 1), (None, 0), (-1, 1)], 3)
    rng = np.random.default_rng(0)
    X = 5 * rng.standard_normal((200, 3))
    for Y in (box.clip(X), box.reflect(X)):
        assert box.contains(Y)
    assert box.reflect(np.array([1.25, 0.5, 0.0])).tolist() == [0.75, -0.5, 0.0]
    # inset: a probe step of 0.3 fits around the result in every direction
    x = box.inset(np.array([0.95, -0.1, 0.0]), 0.3)
    assert x.tolist() == pytest.approx([0.7, -0.3, 0.0])
    assert box.contains(x + 0.3) and box.contains(x - np.array([0.3, 0.3, 0.3]))
    # a box narrower than two steps: its middle
    assert box.inset(np.array([0.0, 0.0, 0.0]), 0.6)[0] == 0.5
