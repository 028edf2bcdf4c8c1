"""forward-gradient (Baydin et al. 2022): unbiased, counted, trains the digits network."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dfo
from dfo import problems
from dfo.datasets import load_digits
from dfo.exceptions import GradientNotAvailableError


def test_estimate_is_unbiased():
    # E[(g . v) v] = g for v ~ N(0, I): the mean of N draws is within 5 standard errors
    f = problems.get("rosenbrock", 5)
    x = np.linspace(-1.0, 1.0, 5)
    _, g = f.value_and_grad(x)
    n_draws = 20_000
    opt = dfo.make_optimizer("forward-gradient", x, seed=0, n_directions=n_draws)
    X, V = opt.ask(), opt.directions()
    d = np.einsum("ij,ij->i", np.repeat(g[None], n_draws, 0), V)
    est = d @ V / n_draws
    # per coordinate, Var[(g . v) v_i] = |g|^2 + g_i^2
    se = np.sqrt((g @ g + g**2) / n_draws)
    assert np.all(np.abs(est - g) < 5 * se)
    # and the step taken is -lr times that estimate
    opt.tell(X, f.evaluate_batch(X), d)
    np.testing.assert_allclose(opt.x, x - 0.01 * est, rtol=1e-12)


def test_trains_the_digits_network_through_minimize():
    X, y = load_digits()
    net = dfo.MLP([64, 16, 10])
    obj = dfo.NetworkObjective(net, X[:1200], y[:1200], batch_size=64)
    theta = net.init_params(0)
    start = net.accuracy(theta, X[1200:], y[1200:])
    res = dfo.minimize(obj, theta, "forward-gradient", budget=3000, seed=0, learning_rate=0.02)
    assert res.nfev <= 3000 and res.njvp == res.nit == res.nfev - 1  # one kept for x
    assert res.ngev == 0
    acc = net.accuracy(res.x, X[1200:], y[1200:])
    assert start < 0.2 and acc > 0.75


def test_needs_forward_mode_and_says_so_before_evaluating():
    calls = []

    def f(x):
        calls.append(1)
        return float(x @ x)

    with pytest.raises(GradientNotAvailableError, match="has_jvp is False"):
        dfo.minimize(f, np.zeros(3), "forward-gradient", budget=10)
    assert calls == []


def test_jvp_of_a_gradient_objective_is_its_projection():
    obj = dfo.as_objective(lambda x: float(x @ x), dim=3, grad=lambda x: 2 * x)
    assert obj.has_jvp
    assert obj.value_and_jvp(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, -1.0])) == (
        14.0,
        -4.0,
    )


def test_minimize_is_the_plain_algorithm_bit_for_bit():
    """The run loop's one-direction path against forward gradient written out: the same
    random streams, the checked public ``value_and_jvp`` with a stack of one direction
    (the network's batched tangents), ``x - lr * d v``; every iterate and value equal."""
    X, y = load_digits()
    net = dfo.MLP([64, 16, 10])
    obj = dfo.NetworkObjective(net, X[:600], y[:600], batch_size=32)
    theta = net.init_params(1)
    budget, lr = 200, 0.02
    res = dfo.minimize(
        obj, theta, "forward-gradient", budget=budget, seed=7, learning_rate=lr, history_x=True
    )
    opt_seed, obj_seed = np.random.SeedSequence(7).spawn(2)
    rng, obj_rng = np.random.default_rng(opt_seed), np.random.default_rng(obj_seed)
    sampler = obj.sampler()
    x, xs, values = theta.copy(), [], []
    for _ in range(budget - 1):  # one evaluation is kept for the final iterate
        v = rng.standard_normal((1, net.n_params))
        batch = obj.realization(obj_rng, sampler)
        value, d = net.jvp(x, v, batch.X, batch.y)
        x = x - lr * (d[0] * v[0])
        values.append(value)
        xs.append(x)
    np.testing.assert_array_equal(res.history["value"], values)
    np.testing.assert_array_equal(res.history["x"], np.array(xs))
    np.testing.assert_array_equal(res.x, x)
    assert res.njvp == budget - 1 and res.nfev == budget


def test_directions_handed_out_stay_the_callers():
    # each iteration draws its directions into the optimizer's own array: the ones
    # handed out before are copies, unchanged by the next draw
    opt = dfo.make_optimizer("forward-gradient", np.ones(4), seed=0, n_directions=2)
    assert opt.directions().shape == (0, 4)  # none drawn before the first ask
    X = opt.ask()
    V = opt.directions()
    kept = V.copy()
    opt.tell(X, 0.5 * (X**2).sum(axis=1), np.einsum("ij,ij->i", X, V))
    opt.ask()
    np.testing.assert_array_equal(V, kept)
    assert not np.array_equal(opt.directions(), kept)
    # the draws are the generator's standard normals, one block per iteration
    fresh = dfo.make_optimizer("forward-gradient", np.ones(4), seed=0, n_directions=2)
    np.testing.assert_array_equal(fresh.rng.standard_normal((2, 4)), kept)


def test_a_pickled_copy_draws_its_directions_where_it_reads_them():
    # the directions live in one array of the optimizer: a copy (a checkpoint) asked
    # after unpickling evaluates the lean loop along the direction it asked for
    opt = dfo.make_optimizer("forward-gradient", np.ones(4), seed=0)
    copy = pickle.loads(pickle.dumps(opt))
    copy.ask()
    np.testing.assert_array_equal(copy.lean_direction(), copy.directions()[0])
    copy.tell_jvp(1.0, 0.5)  # the step along that direction
    np.testing.assert_array_equal(copy.x, np.ones(4) - 0.01 * (copy.directions()[0] * 0.5))
