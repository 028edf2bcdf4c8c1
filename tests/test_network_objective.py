"""Tests of NetworkObjective: consistency with the network, minibatch realizations, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dfo
from dfo.exceptions import InvalidOptionError, ShapeError
from dfo.nn.network_objective import MinibatchObjective
from dfo.objective import Objective


def make_data(n=120, n_in=5, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = rng.integers(0, n_out, size=n)
    return X, y


@pytest.fixture
def setup():
    X, y = make_data()
    net = dfo.MLP([5, 6, 3], "tanh")
    theta = net.init_params(np.random.default_rng(1))
    return net, X, y, theta


def test_is_an_objective(setup):
    net, X, y, _ = setup
    obj = dfo.NetworkObjective(net, X, y)
    assert isinstance(obj, Objective)
    assert obj.dim == net.n_params and obj.has_gradient and not obj.is_stochastic
    assert obj.realization(np.random.default_rng(0)) is obj
    assert "NetworkObjective" in repr(obj)


def test_full_batch_matches_network(setup):
    net, X, y, theta = setup
    obj = dfo.NetworkObjective(net, X, y)
    assert obj(theta) == net.loss(theta, X, y)
    assert obj(theta) == obj.evaluate_batch(theta[None])[0]
    assert obj.full_loss(theta) == net.loss(theta, X, y)
    value, grad = obj.value_and_grad(theta)
    v2, g2 = net.loss_and_grad(theta, X, y)
    assert value == v2
    np.testing.assert_array_equal(grad, g2)
    thetas = theta + 0.2 * np.random.default_rng(2).normal(size=(7, net.n_params))
    np.testing.assert_allclose(
        obj.evaluate_batch(thetas), [net.loss(t, X, y) for t in thetas], rtol=1e-12
    )


def test_mse_objective():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    y = np.sin(X[:, 0]) + X[:, 1]
    net = dfo.MLP([2, 8, 1], "sigmoid")
    obj = dfo.NetworkObjective(net, X, y, loss="mse", batch_size=10)
    theta = net.init_params(rng)
    assert obj(theta) == pytest.approx(net.loss(theta, X, y, loss="mse"), rel=1e-15)
    batch = obj.realization(np.random.default_rng(0))
    idx = batch.indices
    np.testing.assert_allclose(
        batch.evaluate_batch(np.stack([theta, -theta])),
        [net.loss(t, X[idx], y[idx], loss="mse") for t in (theta, -theta)],
        rtol=1e-12,
    )
    with pytest.raises(InvalidOptionError, match="single output"):
        obj.accuracy(theta, X, y)


def test_minibatch_realization(setup):
    net, X, y, theta = setup
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    assert obj.is_stochastic
    r1 = obj.realization(np.random.default_rng(42))
    r2 = obj.realization(np.random.default_rng(42))
    r3 = obj.realization(np.random.default_rng(43))
    assert isinstance(r1, MinibatchObjective) and not r1.is_stochastic
    assert r1.realization(np.random.default_rng(0)) is r1
    np.testing.assert_array_equal(r1.indices, r2.indices)
    assert not np.array_equal(r1.indices, r3.indices)
    assert len(np.unique(r1.indices)) == 16 and r1.indices.min() >= 0 and r1.indices.max() < 120
    assert r1.X.shape == (16, 5)  # only the minibatch rows are held
    # evaluations on the realization are the loss on exactly those rows
    thetas = theta + 0.3 * np.random.default_rng(5).normal(size=(6, net.n_params))
    rows = r1.indices
    expected = [net.loss(t, X[rows], y[rows]) for t in thetas]
    np.testing.assert_allclose(r1.evaluate_batch(thetas), expected, rtol=1e-12)
    assert r1(thetas[0]) == pytest.approx(expected[0], rel=1e-12)
    value, grad = r1.value_and_grad(theta)
    v2, g2 = net.loss_and_grad(theta, X[rows], y[rows])
    assert value == v2
    np.testing.assert_array_equal(grad, g2)
    # calling the stochastic parent directly uses all the data
    assert obj(theta) == net.loss(theta, X, y)


def test_realizations_advance_the_generator(setup):
    net, X, y, _ = setup
    obj = dfo.NetworkObjective(net, X, y, batch_size=30)
    rng = np.random.default_rng(0)
    a = obj.realization(rng).indices
    b = obj.realization(rng).indices
    assert not np.array_equal(a, b)
    # full-size minibatches are permutations of all rows
    full = dfo.NetworkObjective(net, X, y, batch_size=120).realization(rng)
    np.testing.assert_array_equal(np.sort(full.indices), np.arange(120))


def test_realization_pickles(setup):
    net, X, y, theta = setup
    obj = dfo.NetworkObjective(net, X, y, batch_size=8)
    r = obj.realization(np.random.default_rng(7))
    clone = pickle.loads(pickle.dumps(r))
    thetas = np.stack([theta, 0.5 * theta])
    np.testing.assert_array_equal(clone.evaluate_batch(thetas), r.evaluate_batch(thetas))
    np.testing.assert_array_equal(clone.value_and_grad(theta)[1], r.value_and_grad(theta)[1])
    assert len(pickle.dumps(r)) < len(pickle.dumps(obj))
    # the inputs travel once (X is a view of them with the bias's column of ones)
    whole = pickle.loads(pickle.dumps(obj))
    np.testing.assert_array_equal(whole.X, obj.X)
    np.testing.assert_array_equal(clone.X, X[r.indices])
    assert np.shares_memory(whole.X, whole._Xe)
    assert len(pickle.dumps(obj)) < 1.5 * obj._Xe.nbytes + 10_000


@settings(max_examples=10, deadline=None)
@given(
    batch_size=st.integers(1, 50),
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(1, 5),
    loss=st.sampled_from(["cross_entropy", "mse"]),
)
def test_realization_consistency_property(batch_size, seed, k, loss):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 3))
    net = dfo.MLP([3, 4, 2], "relu")
    y = rng.integers(0, 2, size=50) if loss == "cross_entropy" else rng.normal(size=(50, 2))
    obj = dfo.NetworkObjective(net, X, y, loss=loss, batch_size=batch_size)
    r = obj.realization(np.random.default_rng(seed))
    assert r.indices.shape == (batch_size,)
    thetas = rng.normal(size=(k, net.n_params))
    rows = r.indices
    expected = [net.loss(t, X[rows], y[rows], loss=loss) for t in thetas]
    np.testing.assert_allclose(r.evaluate_batch(thetas), expected, rtol=1e-12)


def test_accuracy(setup):
    net, X, y, theta = setup
    obj = dfo.NetworkObjective(net, X[:80], y[:80], X_test=X[80:], y_test=y[80:])
    assert obj.accuracy(theta) == pytest.approx(np.mean(net.predict(theta, X[80:]) == y[80:]))
    assert obj.accuracy(theta, X[:80], y[:80]) == net.accuracy(theta, X[:80], y[:80])
    assert obj.test_loss(theta) == net.loss(theta, X[80:], y[80:])
    no_test = dfo.NetworkObjective(net, X, y)
    with pytest.raises(ValueError, match="no held-out data"):
        no_test.accuracy(theta)
    with pytest.raises(ValueError, match="both X and y"):
        obj.accuracy(theta, X)


def test_bad_data(setup):
    net, X, y, _ = setup
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        dfo.NetworkObjective(net, Xn, y)
    with pytest.raises(ShapeError, match=r"\(batch, 5\).*got shape \(120, 4\)"):
        dfo.NetworkObjective(net, X[:, :4], y)
    with pytest.raises(ShapeError, match=r"\(120,\).*got shape \(119,\)"):
        dfo.NetworkObjective(net, X, y[:-1])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        dfo.NetworkObjective(net, X, y + 1)
    with pytest.raises(TypeError, match=r"dfo\.MLP"):
        dfo.NetworkObjective("net", X, y)
    with pytest.raises(InvalidOptionError, match="Did you mean 'mse'"):
        dfo.NetworkObjective(net, X, y, loss="mes")
    with pytest.raises(ValueError, match="together"):
        dfo.NetworkObjective(net, X, y, X_test=X)
    with pytest.raises(ShapeError, match="X_test"):
        dfo.NetworkObjective(net, X, y, X_test=X[:, :2], y_test=y)
    with pytest.raises(ShapeError, match=r"y_test.*\(120,\)"):
        dfo.NetworkObjective(net, X, y, X_test=X, y_test=y[:10])


@pytest.mark.parametrize("batch_size", [0, 121, 2.5, True, "8"])
def test_bad_batch_size(setup, batch_size):
    net, X, y, _ = setup
    with pytest.raises(ValueError, match=r"batch_size.*\[1, 120\]"):
        dfo.NetworkObjective(net, X, y, batch_size=batch_size)


def test_bad_parameters(setup):
    net, X, y, theta = setup
    obj = dfo.NetworkObjective(net, X, y, batch_size=4)
    with pytest.raises(ShapeError):
        obj(theta[:-1])
    with pytest.raises(ShapeError):
        obj.evaluate_batch(theta)
    with pytest.raises(TypeError, match="Generator"):
        obj.realization(0)


def test_float32_objective(setup):
    net, X, y, theta = setup
    obj = dfo.NetworkObjective(net, X, y, dtype="float32")
    assert obj.dtype == np.float32 and obj.net.dtype == np.float32 and obj.X.dtype == np.float32
    assert net.dtype == np.float64  # the caller's network is left as it was
    ref = dfo.NetworkObjective(net, X, y)
    thetas = theta + 0.2 * np.random.default_rng(2).normal(size=(7, net.n_params))
    want = ref.evaluate_batch(thetas)
    for rows in (thetas, thetas.astype(np.float32)):
        got = obj.evaluate_batch(rows)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-5)
    assert obj(theta) == pytest.approx(ref(theta), rel=1e-5)
    _, grad = obj.value_and_grad(theta)
    np.testing.assert_allclose(grad, ref.value_and_grad(theta)[1], rtol=1e-3, atol=1e-6)
    batch = dfo.NetworkObjective(net, X, y, batch_size=10, dtype=np.float32)
    assert batch.realization(np.random.default_rng(0)).dtype == np.float32


def test_float32_finite_differences_take_float32_steps(setup):
    net, X, y, theta = setup
    obj = dfo.NetworkObjective(net, X, y, dtype="float32")
    res = dfo.finite_difference(obj, theta)
    eps32 = np.finfo(np.float32).eps
    assert res.step.dtype == np.float32
    np.testing.assert_allclose(res.step, np.sqrt(eps32) * np.maximum(1, np.abs(theta)), rtol=1e-3)
    exact = dfo.NetworkObjective(net, X, y).value_and_grad(theta)[1]
    err = np.linalg.norm(res.grad - exact) / np.linalg.norm(exact)
    assert err < 2e-2  # forward error ~ sqrt(eps32) = 3e-4 per probe, times curvature
    # float64's step does not even move a float32 point; a step 100x below float32's
    # drowns in rounding: the reason for the rule
    with pytest.raises(dfo.exceptions.InvalidOptionError, match="does not move"):
        dfo.finite_difference(obj, theta, h=np.sqrt(np.finfo(np.float64).eps))
    small = dfo.finite_difference(obj, theta, h=0.01 * np.sqrt(eps32)).grad
    assert np.linalg.norm(small - exact) / np.linalg.norm(exact) > 3 * err


def test_fd_sgd_follows_the_objective_dtype(setup):
    net, X, y, theta = setup
    obj = dfo.NetworkObjective(net, X, y, dtype="float32")
    res = dfo.minimize(obj, theta, method="fd-sgd", budget=3 * (net.n_params + 1), seed=0)
    assert res.dtype == "float32" and res.options["dtype"] == "float32"
    assert res.fun < obj(theta)
    assert dfo.minimize(
        dfo.NetworkObjective(net, X, y), theta, method="spsa", budget=10
    ).dtype == ("float64")


@pytest.mark.parametrize("batch_size", [None, 5])
def test_float32_populations_keep_a_column_major_copy_of_the_inputs(batch_size):
    # the copy holds the same values: the same losses as from the rows; small populations
    # of a fresh realization make none (a copy per realization would cost them time)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, size=20)
    net = dfo.MLP([4, 6, 3], dtype="float32")
    obj = dfo.NetworkObjective(net, X, y, dtype="float32", batch_size=batch_size)
    target = obj.realization(np.random.default_rng(1))
    thetas = (net.init_params(2) + 0.3 * rng.normal(size=(6, net.n_params))).astype(np.float32)
    assert target.evaluate_batch(thetas[:2]).shape == (2,)
    assert "_Xe_columns" not in target.__dict__
    got = target.evaluate_batch(thetas)
    copy = target.__dict__["_Xe_columns"]
    assert copy.flags.f_contiguous and not np.shares_memory(copy, target._Xe)
    np.testing.assert_array_equal(copy, target._Xe)
    single = [target(t) for t in thetas]
    np.testing.assert_allclose(got, single, rtol=1e-6)
    np.testing.assert_allclose(target.evaluate_batch(thetas[:2]), single[:2], rtol=1e-6)
    clone = pickle.loads(pickle.dumps(target))
    assert "_Xe_columns" not in clone.__dict__
    np.testing.assert_array_equal(clone.evaluate_batch(thetas), got)
    # float64 keeps its rows
    obj64 = dfo.NetworkObjective(dfo.MLP([4, 6, 3]), X, y)
    obj64.evaluate_batch(thetas.astype(np.float64))
    assert "_Xe_columns" not in obj64.__dict__
