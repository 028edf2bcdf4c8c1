"""Forward mode (MLP.jvp) against backprop and an independent complex-step reference.

- ``jvp`` against ``grad @ v`` (backprop), float64: relative 1e-10, for every
  differentiable activation, both losses, depths 1 to 4, one and several directions.
- ``jvp`` against a complex step along ``v`` on the independent complex-valued forward
  pass of ``test_network.ref_loss``: ``Im f(theta + i h v) / h``, exact to ~1e-15 (no
  subtraction), relative 1e-10.
- The step activation's tangent is zero: the hidden layers get no directional derivative.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_network import DIFFERENTIABLE, LOSSES, make_problem, ref_loss

from dfo.exceptions import ShapeError
from dfo.nn.network import MLP

SIZES = [[3, 4], [4, 5, 3], [3, 6, 4, 2], [2, 3, 3, 3, 3]]


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("act", DIFFERENTIABLE)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sizes", SIZES)
def test_jvp_equals_backprop_and_complex_step(act, loss, sizes):
    net, theta, X, y = make_problem(sizes, act, loss, batch=7, seed=len(sizes) + 10)
    rng = np.random.default_rng(1)
    v = rng.normal(size=net.n_params)
    value, d = net.jvp(theta, v, X, y, loss=loss)
    ref_value, grad = net.loss_and_grad(theta, X, y, loss=loss)
    assert value == ref_value
    assert isinstance(d, float)
    assert abs(d - grad @ v) <= 1e-10 * abs(grad @ v)
    h = 1e-30
    step = ref_loss(theta + 1j * h * v, X, y, sizes, act, loss).imag / h
    assert abs(d - step) <= 1e-10 * abs(step)


@pytest.mark.parametrize("loss", LOSSES)
def test_jvp_many_directions_at_once(loss):
    net, theta, X, y = make_problem([4, 6, 5, 3], "tanh", loss, batch=5, seed=2)
    V = np.random.default_rng(3).normal(size=(6, net.n_params))
    _, D = net.jvp(theta, V, X, y, loss=loss)
    _, grad = net.loss_and_grad(theta, X, y, loss=loss)
    assert D.shape == (6,)
    assert _rel(D, V @ grad) <= 1e-10
    # rows of the identity: the whole gradient, exact (n JVPs)
    _, full = net.jvp(theta, np.eye(net.n_params), X, y, loss=loss)
    assert _rel(full, grad) <= 1e-10


def test_step_hidden_layer_has_zero_tangent():
    net, theta, X, y = make_problem([3, 5, 2], "step", "cross_entropy", batch=6, seed=0)
    v = np.zeros(net.n_params)
    v[: 3 * 5 + 5] = 1.0  # first layer only
    assert net.jvp(theta, v, X, y)[1] == 0.0


def test_jvp_shape_errors():
    net = MLP([2, 3, 2])
    theta = np.zeros(net.n_params)
    X, y = np.zeros((1, 2)), np.array([0])
    with pytest.raises(ShapeError, match=r"v must have shape \(17,\)"):
        net.jvp(theta, np.zeros(3), X, y)
    with pytest.raises(TypeError, match="v must be a real vector"):
        net.jvp(theta, np.zeros(net.n_params, dtype=complex), X, y)
