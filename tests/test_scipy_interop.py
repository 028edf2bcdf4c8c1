"""dfo's methods through scipy's own calling code: scipy.optimize.minimize(method=...)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from scipy.optimize import OptimizeResult, rosen, rosen_der

import dfo
from dfo.exceptions import InvalidOptionError
from dfo.optimizers import get_method

METHODS = dfo.methods()


def _derivatives(method):
    cls = get_method(method)
    return cls.needs_gradient or cls.needs_jvp


def _jac(method):
    return rosen_der if _derivatives(method) else None


@pytest.mark.parametrize("method", METHODS)
def test_scipy_minimize_runs_every_method_and_matches_dfo_minimize(method):
    x0 = np.full(3, 0.5)
    res = scipy.optimize.minimize(
        rosen,
        x0,
        method=dfo.scipy_method(method),
        jac=_jac(method),
        options={"budget": 300, "seed": 0},
    )
    assert type(res) is OptimizeResult
    grad = _jac(method)
    obj = dfo.as_objective(rosen, dim=3, grad=grad) if grad else rosen
    ref = dfo.minimize(obj, x0, method=method, budget=300, seed=0)
    np.testing.assert_array_equal(res.x, ref.x)  # the same run, bit for bit
    assert res.fun == ref.fun == pytest.approx(rosen(res.x), rel=1e-12)
    assert res.nfev == ref.nfev <= 300 and res.nit == ref.nit and res.njev == ref.ngev
    assert res.success == ref.success and res.status == ref.status and res.message
    assert res.fun < rosen(x0)
    np.testing.assert_array_equal(res.history["best"], ref.history["best"])


@pytest.mark.parametrize("method", METHODS)
def test_scipy_callbacks_args_and_maxiter(method):
    def shifted(x, a, b):
        return rosen(x - a) + b

    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result.nit)
        if intermediate_result.nit == 4:
            raise StopIteration

    jac = (lambda x, a, b: rosen_der(x - a)) if _derivatives(method) else None
    res = scipy.optimize.minimize(
        shifted,
        np.zeros(2),
        args=(1.0, 2.0),
        method=dfo.scipy_method(method),
        jac=jac,
        callback=callback,
        options={"maxfev": 10_000, "seed": 1},
    )
    assert seen == [1, 2, 3, 4] and res.nit == 4 and res.status == dfo.result.Status.CALLBACK
    assert res.fun >= 2.0 and res.fun == pytest.approx(shifted(res.x, 1.0, 2.0), rel=1e-12)

    points = []
    res = scipy.optimize.minimize(
        shifted,
        np.zeros(2),
        args=(1.0, 2.0),
        method=dfo.scipy_method(method),
        jac=jac,
        callback=points.append,  # callback(xk)
        options={"maxiter": 3, "seed": 1},
    )
    assert res.nit == len(points) == 3 and all(p.shape == (2,) for p in points)


def test_jac_true_calls_fun_once_per_gradient():
    calls = []

    def fun_and_grad(x):
        calls.append(1)
        return rosen(x), rosen_der(x)

    res = scipy.optimize.minimize(
        fun_and_grad,
        np.zeros(3),
        jac=True,
        method=dfo.scipy_method("backprop-sgd"),
        options={"budget": 50, "seed": 0, "learning_rate": 1e-3},
    )
    assert res.njev > 0 and len(calls) == res.nfev


def test_bad_use_is_refused_before_any_evaluation():
    with pytest.raises(InvalidOptionError, match="unknown method 'cma'"):
        dfo.scipy_method("cma")
    calls = []

    def f(x):
        calls.append(1)
        return rosen(x)

    cases = [
        ({"constraints": {"type": "ineq", "fun": lambda x: x[0]}}, "takes no constraints"),
        ({"hess": lambda x: np.eye(2)}, "uses no Hessian"),
        ({"options": {"maxfev": 10, "budget": 10}}, "give one"),
        ({"options": {"c": 0.1}}, "unknown option 'c'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidOptionError, match=message):
            scipy.optimize.minimize(f, np.zeros(2), method=dfo.scipy_method("cma-es"), **kwargs)
    assert calls == []
