"""dfo.bounds: every accepted form of bounds, one Box."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from dfo.bounds import Box, parse_bounds
from dfo.exceptions import InvalidOptionError

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
    for other in ((np.array([0, 1]), np.array([2, 3])), ([0, 1], [2, 3]), [[0, 1], [2, 3]]):
        box = parse_bounds(other, 2)
        assert box.lower.tolist() == [0, 1] and box.upper.tolist() == [2, 3]
    with pytest.raises(InvalidOptionError, match="two tuples are read as scipy's"):
        parse_bounds([(0, 0), (1, 1)], 2)  # meant as (lower, upper): x_0 in [0, 0]


@pytest.mark.parametrize(
    ("bounds", "error", "match"),
    [
        ([(0, 1)] * 3, InvalidOptionError, "3 \\(lo, hi\\) pairs; x0 has 4"),
        ((np.zeros(3), np.ones(3)), InvalidOptionError, "shape \\(4,\\)"),
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


# -- every method honours bounds ---------------------------------------------------------

import dfo  # noqa: E402
from dfo.optimizers import get_method  # noqa: E402

LOWER = np.array([-1.0, 0.5, -INF])
UPPER = np.array([1.0, INF, 1.0])
FORMS = {
    "scipy": scipy.optimize.Bounds(LOWER, UPPER),
    "pairs": [(-1.0, 1.0), (0.5, None), (None, 1.0)],
    "arrays": (np.array([-1.0, 0.5, -INF]), np.array([1.0, INF, 1.0])),
}


class OutsideTheBox(Exception):
    pass


class Boxed:
    """``|x - 2|^2``, minimized at (1, 2, 1) in the box; raises for a point outside it."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        if not (np.all(x >= LOWER) and np.all(x <= UPPER)):
            raise OutsideTheBox(f"evaluated outside the box: {x}")
        return float(np.sum((x - 2.0) ** 2))

    def grad(self, x):
        return 2.0 * (x - 2.0)


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("method", dfo.methods())
def test_no_point_outside_the_box_is_ever_evaluated(method, form):
    f = Boxed()
    obj = dfo.as_objective(f, dim=3, grad=f.grad)
    x0 = np.array([0.0, 0.0, 3.0])  # outside: projected onto the box first
    res = dfo.minimize(obj, x0, method=method, budget=400, seed=0, bounds=FORMS[form])
    assert f.calls == res.nfev > 0
    assert np.all(res.x >= LOWER) and np.all(res.x <= UPPER)
    start = float(np.sum((np.clip(x0, LOWER, UPPER) - 2.0) ** 2))
    assert res.fun < start  # it went somewhere: toward (1, 2, 1)


@pytest.mark.parametrize("method", dfo.methods())
def test_make_optimizer_takes_bounds(method):
    cls = get_method(method)
    opt = dfo.make_optimizer(method, np.zeros(3), seed=0, budget=200, bounds=FORMS["pairs"])
    f = Boxed()
    for _ in range(30):
        if opt.stop():
            break
        X = opt.ask()
        values = [f(x) for x in X]
        grads = [f.grad(x) for x in X] if opt.needs_gradient or cls.needs_gradient else None
        if cls.needs_jvp:  # directional derivatives along the method's directions
            grads = [f.grad(x) @ v for x, v in zip(X, opt.directions(), strict=True)]
        opt.tell(X, values, grads)
    assert f.calls == opt.nfev


def test_bad_bounds_are_refused_before_evaluating():
    f = Boxed()
    with pytest.raises(InvalidOptionError):
        dfo.minimize(f, np.zeros(3), method="spsa", bounds=[(1.0, 0.0)] * 3)
    with pytest.raises(InvalidOptionError, match="2 \\(lo, hi\\) pairs"):
        dfo.minimize(f, np.zeros(3), method="cma-es", bounds=[(0.0, 1.0)] * 2)
    assert f.calls == 0
