"""The 0-1 loss objective (digits-01): its value by hand, its zero derivative, DFO trains it."""

from __future__ import annotations

import numpy as np

import dfo
from dfo.compare.tasks import get_task
from dfo.nn.error_rate import ErrorRateObjective


def _by_hand(net, theta, X, y):
    a = X
    for i, (W, b) in enumerate(net.unflatten(theta)):
        a = a @ W + b
        if i < net.n_layers - 1:
            a = np.tanh(a)
    return float(np.mean(np.argmax(a, axis=1) != y))


def test_value_is_the_error_rate_and_the_derivative_is_zero():
    rng = np.random.default_rng(0)
    net = dfo.MLP([5, 6, 3])
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 3, size=40)
    obj = ErrorRateObjective(net, X, y)
    thetas = rng.normal(size=(4, net.n_params))
    np.testing.assert_array_equal(
        obj.evaluate_batch(thetas), [_by_hand(net, t, X, y) for t in thetas]
    )
    value, grad = obj.value_and_grad(thetas[0])
    assert value == _by_hand(net, thetas[0], X, y) and not grad.any()
    assert obj.has_jvp and obj.value_and_jvp(thetas[0], thetas[1])[1] == 0.0
    # piecewise constant: a tiny step changes no prediction
    assert obj(thetas[0] + 1e-9 * thetas[1]) == value


def test_minibatches_are_common_within_an_iteration():
    data = dfo.datasets.load("digits", seed=0)
    net = dfo.MLP([64, 8, 10])
    obj = ErrorRateObjective(net, data.X_train, data.y_train, batch_size=32)
    assert obj.is_stochastic
    draw = obj.realization(np.random.default_rng(3))
    again = obj.realization(np.random.default_rng(3))
    theta = net.init_params(1)
    assert draw(theta) == again(theta) and not draw.is_stochastic
    assert draw.X.shape == (32, 64)


def test_cma_es_trains_digits_01_and_backprop_does_not_move():
    task = get_task("digits-01")
    x0 = task.start(0)
    start = task.train_loss(x0)
    res = dfo.minimize(task.objective, x0, "cma-es", budget=1500, seed=0, sigma0=0.3)
    assert task.train_loss(res.x) < start - 0.2
    res = dfo.minimize(task.objective, x0, "backprop-sgd", budget=50, seed=0, learning_rate=0.3)
    np.testing.assert_array_equal(res.x, x0)  # the gradient is exactly zero
