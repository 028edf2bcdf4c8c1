"""The gradient loop without repeated checks and copies keeps every guarantee."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dfo
from dfo.exceptions import ObjectiveOutputError
from dfo.objective import all_finite, square_norm


def test_the_finiteness_test_reads_huge_values_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        huge = np.full(1000, 1e200)
        assert not np.isfinite(square_norm(huge))  # overflows: the exact test decides
        assert all_finite(huge)
        for bad in (np.nan, np.inf, -np.inf):
            a = np.ones(5)
            a[3] = bad
            assert not all_finite(a)
            assert not np.isfinite(square_norm(a))
        assert square_norm(np.array([3.0, 4.0])) == 25.0


def sphere(x):
    return 0.5 * float(x @ x)


def test_huge_finite_gradients_never_make_nan_parameters():
    def grad(x):
        return np.full_like(x, 1e308)  # finite; the step overflows

    def quiet_sphere(x):
        with np.errstate(over="ignore"):
            return 0.5 * float(x @ x)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none from dfo's own arithmetic
        res = dfo.minimize(
            dfo.as_objective(quiet_sphere, dim=3, grad=grad),
            np.ones(3),
            "backprop-sgd",
            budget=30,
            seed=0,
            learning_rate=10.0,
        )
    assert np.isfinite(res.x).all()
    assert "failed steps sent the iterate back" in res.message


def test_an_objective_that_changes_its_point_changes_nothing_of_the_run():
    def clean_grad(x):
        return x.copy()

    def vandal_grad(x):
        g = x.copy()
        x.fill(1e9)  # changes the point it was handed
        return g

    runs = [
        dfo.minimize(
            dfo.as_objective(sphere, dim=4, grad=g),
            np.arange(1.0, 5.0),
            "backprop-sgd",
            budget=20,
            seed=0,
            history_x=True,
        )
        for g in (clean_grad, vandal_grad)
    ]
    np.testing.assert_array_equal(runs[0].history["x"], runs[1].history["x"])
    np.testing.assert_array_equal(runs[0].x, runs[1].x)


class Loose(dfo.Objective):
    """An objective whose gradient is whatever ``grad`` returns."""

    has_gradient = True

    def __init__(self, grad):
        super().__init__(2)
        self.grad = grad

    def _evaluate_batch(self, X):
        return 0.5 * np.sum(X**2, axis=1)

    def _value_and_grad(self, x):
        return np.float32(0.5 * x @ x), self.grad(x)


def test_what_the_objective_returns_is_still_checked():
    res = dfo.minimize(Loose(lambda x: list(x)), np.ones(2), "backprop-sgd", budget=10)
    assert res.ngev == res.nit and np.isfinite(res.fun)
    with pytest.raises(ObjectiveOutputError, match=r"shape \(2,\); got shape \(3,\)"):
        dfo.minimize(Loose(lambda x: np.ones(3)), np.ones(2), "backprop-sgd", budget=10)
