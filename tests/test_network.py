"""Tests of the numpy MLP: backprop against independent references, population pass, errors.

Gradient references:
- complex step on an independent complex-valued forward pass written here
  (exact to ~1e-15: no subtraction, so no cancellation), tolerance 1e-9 relative;
- plain central differences, tolerance 1e-6 relative;
- closed forms for one-layer networks (linear least squares, softmax regression),
  tolerance 1e-12 relative (rounding only).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

import dfo
from dfo.exceptions import InvalidOptionError, ShapeError
from dfo.nn import losses
from dfo.nn.activations import ACTIVATIONS, get_activation
from dfo.nn.losses import Loss, get_loss
from dfo.nn.network import MLP

DIFFERENTIABLE = ["tanh", "relu", "sigmoid", "identity"]
LOSSES = ["cross_entropy", "mse"]


# -- an independent reference implementation (complex-capable) -------------------------
def _ref_relu(z):
    return np.where(z.real > 0, z, 0.0)


REF_ACT = {
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "identity": lambda z: z,
    "relu": _ref_relu,
    "step": lambda z: (z.real > 0).astype(float),
}


def ref_loss(theta, X, y, sizes, act, loss, out_act="identity"):
    """Loss computed directly from the documented parameter layout."""
    a = np.asarray(X, dtype=complex)
    off = 0
    n_layers = len(sizes) - 1
    for i in range(n_layers):
        n_in, n_out = sizes[i], sizes[i + 1]
        W = theta[off : off + n_in * n_out].reshape(n_in, n_out)
        off += n_in * n_out
        b = theta[off : off + n_out]
        off += n_out
        a = REF_ACT[act if i < n_layers - 1 else out_act](a @ W + b)
    if loss == "cross_entropy":
        shift = a.real.max(axis=1, keepdims=True)
        lse = shift[:, 0] + np.log(np.exp(a - shift).sum(axis=1))
        return np.mean(lse - a[np.arange(len(y)), y])
    y2 = np.asarray(y, dtype=float).reshape(a.shape)
    return np.mean(0.5 * np.sum((a - y2) ** 2, axis=1))


def complex_step_grad(f, theta, h=1e-30):
    n = theta.size
    g = np.empty(n)
    for i in range(n):
        t = theta.astype(complex)
        t[i] += 1j * h
        g[i] = f(t).imag / h
    return g


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def make_problem(sizes, act, loss, batch, seed, out_act="identity"):
    rng = np.random.default_rng(seed)
    net = MLP(sizes, act, output_activation=out_act)
    theta = net.init_params(rng)
    theta += 0.1 * rng.normal(size=theta.size)  # nonzero biases too
    X = rng.normal(size=(batch, sizes[0]))
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], size=batch)
    else:
        y = rng.normal(size=(batch, sizes[-1]))
    return net, theta, X, y


# -- gradients -----------------------------------------------------------------------------
@pytest.mark.parametrize("act", DIFFERENTIABLE)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sizes", [[3, 4], [4, 5, 3], [3, 6, 4, 2], [2, 3, 3, 3, 3]])
def test_backprop_matches_complex_step(act, loss, sizes):
    net, theta, X, y = make_problem(sizes, act, loss, batch=7, seed=len(sizes))
    value, grad = net.loss_and_grad(theta, X, y, loss=loss)
    ref = complex_step_grad(lambda t: ref_loss(t, X, y, sizes, act, loss), theta)
    assert value == pytest.approx(ref_loss(theta, X, y, sizes, act, loss).real, rel=1e-12)
    assert rel_err(grad, ref) <= 1e-9
    np.testing.assert_allclose(grad, ref, rtol=1e-7, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("out_act", ["sigmoid", "tanh"])
def test_backprop_through_output_activation(out_act):
    sizes = [3, 5, 2]
    net, theta, X, y = make_problem(sizes, "tanh", "mse", batch=6, seed=3, out_act=out_act)
    _, grad = net.loss_and_grad(theta, X, y, loss="mse")
    ref = complex_step_grad(lambda t: ref_loss(t, X, y, sizes, "tanh", "mse", out_act), theta)
    assert rel_err(grad, ref) <= 1e-9


@settings(max_examples=15, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    n_in=st.integers(1, 5),
    n_out=st.integers(2, 4),
    batch=st.integers(1, 9),
    act=st.sampled_from(DIFFERENTIABLE),
    loss=st.sampled_from(LOSSES),
    seed=st.integers(0, 2**16),
)
def test_backprop_matches_complex_step_property(hidden, n_in, n_out, batch, act, loss, seed):
    sizes = [n_in, *hidden, n_out]
    net, theta, X, y = make_problem(sizes, act, loss, batch=batch, seed=seed)
    _, grad = net.loss_and_grad(theta, X, y, loss=loss)
    ref = complex_step_grad(lambda t: ref_loss(t, X, y, sizes, act, loss), theta)
    scale = max(np.linalg.norm(ref), 1e-300)
    assert np.linalg.norm(grad - ref) <= 1e-9 * scale


@pytest.mark.parametrize("act", DIFFERENTIABLE)
@pytest.mark.parametrize("loss", LOSSES)
def test_backprop_matches_central_differences(act, loss):
    net, theta, X, y = make_problem([5, 8, 6, 3], act, loss, batch=10, seed=11)
    _, grad = net.loss_and_grad(theta, X, y, loss=loss)
    h = 1e-5
    fd = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        fd[i] = (net.loss(theta + e, X, y, loss) - net.loss(theta - e, X, y, loss)) / (2 * h)
    assert rel_err(grad, fd) <= 1e-6


def test_linear_least_squares_closed_form():
    rng = np.random.default_rng(0)
    net = MLP([4, 3], "identity")
    theta = rng.normal(size=net.n_params)
    X, y = rng.normal(size=(9, 4)), rng.normal(size=(9, 3))
    ((W, b),) = net.unflatten(theta)
    r = X @ W + b - y
    value, grad = net.loss_and_grad(theta, X, y, loss="mse")
    ((gW, gb),) = net.unflatten(grad)
    assert value == pytest.approx(0.5 * np.sum(r**2) / 9, rel=1e-13)
    np.testing.assert_allclose(gW, X.T @ r / 9, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gb, r.sum(axis=0) / 9, rtol=1e-12, atol=1e-15)


def test_single_output_mse_accepts_vector_targets():
    rng = np.random.default_rng(1)
    net = MLP([3, 1], "identity")
    theta = rng.normal(size=net.n_params)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    v1, g1 = net.loss_and_grad(theta, X, y, loss="mse")
    v2, g2 = net.loss_and_grad(theta, X, y[:, None], loss="mse")
    ((W, b),) = net.unflatten(theta)
    r = (X @ W + b)[:, 0] - y
    assert v1 == v2 == pytest.approx(0.5 * np.mean(r**2), rel=1e-13)
    np.testing.assert_array_equal(g1, g2)


def test_softmax_regression_closed_form():
    rng = np.random.default_rng(2)
    net = MLP([5, 4], "identity")
    theta = rng.normal(size=net.n_params)
    X, y = rng.normal(size=(12, 5)), rng.integers(0, 4, size=12)
    ((W, b),) = net.unflatten(theta)
    z = X @ W + b
    onehot = np.eye(4)[y]
    value, grad = net.loss_and_grad(theta, X, y)
    ((gW, gb),) = net.unflatten(grad)
    expected = np.mean(scipy.special.logsumexp(z, axis=1) - z[np.arange(12), y])
    assert value == pytest.approx(expected, rel=1e-13)
    delta = scipy.special.softmax(z, axis=1) - onehot
    np.testing.assert_allclose(gW, X.T @ delta / 12, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gb, delta.sum(axis=0) / 12, rtol=1e-12, atol=1e-15)


def test_step_activation_gives_zero_hidden_gradient():
    net, theta, X, y = make_problem([4, 6, 5, 3], "step", "cross_entropy", batch=8, seed=4)
    _, grad = net.loss_and_grad(theta, X, y)
    layers = net.unflatten(grad)
    for gW, gb in layers[:-1]:
        assert not gW.any() and not gb.any()
    # the output layer is softmax regression on the (0/1) step features
    (W1, b1), (W2, b2), (W3, b3) = net.unflatten(theta)
    h = (((X @ W1 + b1) > 0).astype(float) @ W2 + b2 > 0).astype(float)
    delta = scipy.special.softmax(h @ W3 + b3, axis=1) - np.eye(3)[y]
    np.testing.assert_allclose(layers[-1][0], h.T @ delta / 8, rtol=1e-12, atol=1e-15)
    assert np.abs(layers[-1][0]).max() > 0


def test_extreme_logits_finite():
    net = MLP([2, 3], "identity")
    theta = net.flatten([(np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]]), np.zeros(3))])
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    y = np.array([1, 1])
    value, grad = net.loss_and_grad(theta, X, y)
    # both rows: logsumexp = 1e4 (to rounding), true logit 0
    assert value == pytest.approx(1e4, rel=1e-15)
    assert np.isfinite(grad).all()
    ((gW, gb),) = net.unflatten(grad)
    # softmax is (1, 0, 0) then (0, 0, 1): delta rows (1, -1, 0), (0, -1, 1)
    np.testing.assert_allclose(gb, [0.5, -1.0, 0.5], atol=1e-15)
    np.testing.assert_allclose(gW[0], [0.5, 0.0, -0.5], atol=1e-15)
    assert net.population_loss(np.stack([theta, theta]), X, y) == pytest.approx([1e4, 1e4])


def test_huge_parameters_give_no_warnings():
    net = MLP([3, 4, 2], "relu")
    X = np.ones((2, 3))
    theta = np.full(net.n_params, 1e300)
    value = net.loss(theta, X, [0, 1])  # overflows to inf/nan inside: no warning
    _, grad = net.loss_and_grad(theta, X, [0, 1])
    assert not np.isfinite(value) or value >= 0
    assert grad.shape == (net.n_params,)
    net.population_loss(np.stack([theta, -theta]), X, [0, 1])


# -- activations ----------------------------------------------------------------------------
def test_activation_values():
    z = np.linspace(-30, 30, 121)
    np.testing.assert_allclose(get_activation("sigmoid")(z), scipy.special.expit(z), rtol=1e-14)
    np.testing.assert_array_equal(get_activation("relu")(z), np.maximum(z, 0))
    np.testing.assert_array_equal(get_activation("step")(z), (z > 0).astype(float))
    np.testing.assert_array_equal(get_activation("identity")(z), z)
    np.testing.assert_allclose(get_activation("tanh")(z), np.tanh(z), rtol=1e-15)


def test_sigmoid_is_stable_at_large_inputs():
    z = np.array([-1000.0, -745.0, -40.0, 40.0, 1000.0])
    a = get_activation("sigmoid")(z)  # RuntimeWarnings are errors in this suite
    assert a[0] == 0.0 and a[-1] == 1.0
    assert a[2] == pytest.approx(np.exp(-40.0) / (1 + np.exp(-40.0)), rel=1e-14)
    net = MLP([1, 1], "sigmoid", output_activation="sigmoid")
    value, grad = net.loss_and_grad(np.array([1000.0, 0.0]), [[1.0], [-1.0]], [1.0, 0.0], "mse")
    assert value == 0.0 and np.isfinite(grad).all()


def test_unknown_activation_suggests_name():
    with pytest.raises(InvalidOptionError, match=r"tahn.*Did you mean 'tanh'"):
        MLP([2, 2], "tahn")
    with pytest.raises(InvalidOptionError, match="expected one of"):
        MLP([2, 2], output_activation="softplus")
    assert set(ACTIVATIONS) == {"tanh", "relu", "sigmoid", "identity", "step"}


# -- parameters ------------------------------------------------------------------------------
def test_layout_and_views():
    net = dfo.MLP([64, 16, 10])
    assert net.sizes == (64, 16, 10) and net.activation == "tanh"
    assert net.n_params == 64 * 16 + 16 + 16 * 10 + 10
    theta = np.zeros(net.n_params)
    layers = net.unflatten(theta)
    assert [W.shape for W, _ in layers] == [(64, 16), (16, 10)]
    assert [b.shape for _, b in layers] == [(16,), (10,)]
    layers[0][0][2, 3] = 7.0
    layers[1][1][4] = 5.0
    assert theta[2 * 16 + 3] == 7.0
    assert theta[64 * 16 + 16 + 160 + 4] == 5.0
    np.testing.assert_array_equal(net.flatten(layers), theta)


@pytest.mark.parametrize("sizes", [[3, 4], [4, 5, 3], [3, 6, 4, 2]])
def test_the_views_of_one_vector_are_those_of_a_stack_of_one(sizes):
    # _params takes a shorter path for one vector: the same views (shapes, strides,
    # memory) as the general path gives for each row of a stack
    net = MLP(sizes)
    theta = net.init_params(0)
    for (W, b), (Ws, bs) in zip(net._params(theta), net._params(theta[None]), strict=True):
        assert W.shape == Ws.shape[1:] and W.strides == Ws.strides[1:]
        np.testing.assert_array_equal(W, Ws[0])
        assert np.shares_memory(W, theta)
        assert (b is None) == (bs is None)
        if b is not None:
            assert b.shape == bs.shape[1:] and b.strides == bs.strides[1:]
            np.testing.assert_array_equal(b, bs[0])
            assert np.shares_memory(b, theta)


def test_results_are_new_arrays_at_every_call():
    # a gradient (or stack of directional derivatives) handed out is the caller's: the
    # next call, on other data, does not write into it
    net, theta, X, y = make_problem([4, 6, 3], "tanh", "cross_entropy", batch=5, seed=1)
    V = np.random.default_rng(2).normal(size=(3, net.n_params))
    _, grad = net.loss_and_grad(theta, X, y)
    _, D = net.jvp(theta, V, X, y)
    kept_grad, kept_D = grad.copy(), D.copy()
    net.loss_and_grad(2 * theta, X[::-1], y[::-1])
    net.jvp(2 * theta, V[::-1], X[::-1], y[::-1])
    np.testing.assert_array_equal(grad, kept_grad)
    np.testing.assert_array_equal(D, kept_D)
    assert not np.shares_memory(grad, theta) and not np.shares_memory(D, V)


def test_init_params_scaling_and_reproducibility():
    net = MLP([400, 300, 10], "relu")
    theta = net.init_params(np.random.default_rng(0))
    (W1, b1), (_, b2) = net.unflatten(theta)
    assert not b1.any() and not b2.any()
    assert W1.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)  # He
    net_t = MLP([400, 300, 10], "tanh")
    (V1, _), _ = net_t.unflatten(net_t.init_params(0))
    assert V1.std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)  # Glorot
    np.testing.assert_array_equal(theta, net.init_params(np.random.default_rng(0)))
    with pytest.raises(TypeError, match="Generator"):
        net.init_params(None)


# -- population ----------------------------------------------------------------------------
@pytest.mark.parametrize("act", [*DIFFERENTIABLE, "step"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_population_matches_single_calls(act, loss, dtype):
    # the same products per network, batched or one at a time: agreement to a few
    # roundings of the dtype (float64 eps 2.2e-16, float32 1.2e-7)
    net, theta, X, y = make_problem([6, 7, 5, 3], act, loss, batch=13, seed=5)
    net = MLP(net.sizes, act, dtype=dtype)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    rng = np.random.default_rng(6)
    thetas = (theta + 0.3 * rng.normal(size=(9, net.n_params))).astype(dtype)
    single = np.array([net.loss(t, X, y, loss) for t in thetas])
    np.testing.assert_allclose(net.population_loss(thetas, X, y, loss), single, rtol=rtol)
    per_net = net.dtype.itemsize * (13 * sum(net.sizes[1:]) + net.n_params)
    for max_bytes in (1, 2 * per_net, 4 * per_net):  # chunks of 1, 2, 4
        got = net.population_loss(thetas, X, y, loss, max_bytes=max_bytes)
        np.testing.assert_allclose(got, single, rtol=rtol)


@pytest.mark.parametrize("loss", LOSSES)
def test_population_long_batch(loss):
    # long batches take the tall first-layer product
    net, theta, X, y = make_problem([8, 6, 3], "tanh", loss, batch=700, seed=8)
    thetas = theta + 0.3 * np.random.default_rng(9).normal(size=(5, net.n_params))
    single = np.array([net.loss(t, X, y, loss) for t in thetas])
    np.testing.assert_allclose(net.population_loss(thetas, X, y, loss), single, rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 5), min_size=0, max_size=2),
    k=st.integers(0, 6),
    batch=st.integers(1, 8),
    act=st.sampled_from(list(ACTIVATIONS)),
    seed=st.integers(0, 2**16),
    chunk=st.integers(1, 7),
)
def test_population_property(hidden, k, batch, act, seed, chunk):
    sizes = [3, *hidden, 4]
    net, _, X, y = make_problem(sizes, act, "cross_entropy", batch=batch, seed=seed)
    thetas = np.random.default_rng(seed).normal(size=(k, net.n_params))
    per_net = 8 * (batch * sum(sizes[1:]) + net.n_params)
    got = net.population_loss(thetas, X, y, max_bytes=chunk * per_net)
    single = np.array([net.loss(t, X, y) for t in thetas])
    assert got.shape == (k,)
    np.testing.assert_allclose(got, single, rtol=1e-12)


@pytest.mark.parametrize("k, max_bytes", [(1, 2**28), (5, 2**28), (5, 1)])  # 1 or 5 chunks
def test_population_of_a_custom_loss_comes_back_new_in_the_nets_dtype(k, max_bytes):
    # a loss's population form may return floats of another type, or a view of an array
    # it keeps: the caller still gets a new array of the network's dtype, shape (k,)
    kept = np.zeros(8)
    base = get_loss("mse")

    def population(out, y):
        values = base.population(out, y)
        kept[: values.size] = values
        return kept[: values.size]  # a float64 view

    loss = Loss("mine", base.check_targets, population, base.value_and_grad, base.value_and_jvp)
    net32, theta, X, y = make_problem([3, 4, 2], "tanh", "mse", batch=6, seed=3)
    net32 = MLP(net32.sizes, "tanh", dtype=np.float32)
    thetas = (theta + 0.3 * np.random.default_rng(4).normal(size=(k, theta.size))).astype(
        np.float32
    )
    got = net32.population_loss(thetas, X, y, loss, max_bytes=max_bytes)
    assert got.dtype == np.float32 and got.shape == (k,)
    assert not np.shares_memory(got, kept)
    np.testing.assert_array_equal(got, net32.population_loss(thetas, X, y, "mse"))


@pytest.mark.parametrize("act", DIFFERENTIABLE)
@pytest.mark.parametrize("sizes", [[6, 7, 5, 3], [4, 3], [5, 9, 2]])
def test_float32_populations_in_columns_match_the_rows_forward(act, sizes):
    # float32 populations of 4 or more run every layer transposed: the same dot products
    # as the rows forward of single calls, to a few float32 roundings (eps 1.2e-7)
    net, theta, X, y = make_problem(sizes, act, "cross_entropy", batch=13, seed=7)
    net = MLP(net.sizes, act, dtype=np.float32)
    thetas = (theta + 0.3 * np.random.default_rng(8).normal(size=(9, net.n_params))).astype(
        np.float32
    )
    single = np.array([net.loss(t, X, y) for t in thetas])
    Xe = net._inputs(net.check_inputs(X))
    per_net = 4 * (13 * sum(sizes[1:]) + net.n_params)
    # inputs checked, or [X, 1] unchecked: copied transposed once per call, or kept
    for inputs, check in ((X, True), (Xe, False), (np.asfortranarray(Xe), False)):
        for k in (2, 3, 4, 9):
            for max_bytes in (2**28, per_net, 2 * per_net):  # one chunk, chunks of 1 and 2
                got = net.population_loss(
                    thetas[:k], inputs, y, "cross_entropy", max_bytes=max_bytes, check=check
                )
                np.testing.assert_allclose(got, single[:k], rtol=1e-6)
    # the transposed forward itself, with its tangents: as the rows forward's
    V = np.random.default_rng(9).normal(size=(3, net.n_params)).astype(np.float32)
    stack = np.ascontiguousarray(thetas[:3])
    with np.errstate(all="ignore"):
        rows, drows = net._run(net._params(stack), Xe, tangents=net._params(V))
        cols, dcols = net._run(
            net._params(stack, True),
            np.ascontiguousarray(Xe.T),
            tangents=net._params(V, True),
            columns=True,
        )
    np.testing.assert_allclose(cols, rows, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dcols, drows, rtol=1e-5, atol=1e-5)
    one = net._params(stack[0], True)  # one vector: the same views, transposed
    for (W1, b1), (W3, b3) in zip(one, net._params(stack, True), strict=True):
        np.testing.assert_array_equal(W1, W3[0])
        assert (b1 is None) == (b3 is None)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 9])
def test_a_populations_layout_depends_on_its_size_alone(monkeypatch, k):
    # rows below 4 networks, columns from 4 in float32, whatever the inputs' memory
    # layout (an objective's column-major copy included): the same call, the same bits
    net, theta, X, y = make_problem([5, 6, 3], "tanh", "cross_entropy", batch=11, seed=2)
    net = MLP(net.sizes, "tanh", dtype=np.float32)
    thetas = (theta + 0.3 * np.random.default_rng(3).normal(size=(k, theta.size))).astype(
        np.float32
    )
    seen = []
    run = MLP._run

    def spy(self, *args, **kw):
        seen.append(kw.get("columns", False))
        return run(self, *args, **kw)

    monkeypatch.setattr(MLP, "_run", spy)
    Xe = net._inputs(net.check_inputs(X))
    got = [
        net.population_loss(thetas, inputs, y, check=False)
        for inputs in (Xe, np.asfortranarray(Xe), np.ascontiguousarray(Xe.T).T)
    ]
    assert seen == [k >= 4] * 3
    for other in got[1:]:
        np.testing.assert_array_equal(other, got[0])
    obj = dfo.NetworkObjective(net, X, y, dtype="float32")
    first = obj.evaluate_batch(thetas)
    obj.evaluate_batch(np.vstack([thetas] * 4))  # makes the column-major copy
    np.testing.assert_array_equal(obj.evaluate_batch(thetas), first)
    assert seen[-3:] == [k >= 4, True, k >= 4]


# -- prediction -------------------------------------------------------------------------------
def test_forward_predict_accuracy():
    net, theta, X, y = make_problem([4, 5, 3], "tanh", "cross_entropy", batch=20, seed=12)
    out = net.forward(theta, X)
    assert out.shape == (20, 3) and out.flags.c_contiguous
    np.testing.assert_allclose(out, ref_forward(theta, X, net), rtol=1e-13)
    pred = net.predict(theta, X)
    np.testing.assert_array_equal(pred, np.argmax(out, axis=1))
    assert net.accuracy(theta, X, y) == pytest.approx(np.mean(pred == y))
    assert net.accuracy(theta, X, np.eye(3)[y]) == net.accuracy(theta, X, y)
    assert net.accuracy(theta, X, pred) == 1.0


def ref_forward(theta, X, net):
    a = X
    for i, (W, b) in enumerate(net.unflatten(theta)):
        a = a @ W + b
        if i < net.n_layers - 1:
            a = np.tanh(a)
    return a


# -- bad input --------------------------------------------------------------------------------
@pytest.fixture
def small():
    net = MLP([3, 4, 2])
    return net, net.init_params(0), np.ones((5, 3)), np.array([0, 1, 0, 1, 1])


def test_bad_theta(small):
    net, theta, X, y = small
    with pytest.raises(ShapeError, match=rf"shape \({net.n_params},\).*got shape \(3,\)"):
        net.loss(theta[:3], X, y)
    with pytest.raises(TypeError, match="real vector"):
        net.loss("abc", X, y)
    with pytest.raises(ShapeError, match=r"\(k, 26\).*got shape \(26,\)"):
        net.population_loss(theta, X, y)


def test_bad_inputs(small):
    net, theta, X, y = small
    with pytest.raises(ShapeError, match=r"\(batch, 3\).*got shape \(5, 4\)"):
        net.loss_and_grad(theta, np.ones((5, 4)), y)
    with pytest.raises(ShapeError, match=r"got shape \(3,\)"):
        net.forward(theta, np.ones(3))
    with pytest.raises(ShapeError):
        net.forward(theta, np.ones((0, 3)))
    for bad in (np.nan, np.inf, -np.inf):
        Xb = X.copy()
        Xb[2, 1] = bad
        with pytest.raises(ValueError, match="finite"):
            net.loss(theta, Xb, y)
    # huge but finite inputs are fine
    net.forward(theta, np.full((2, 3), 1e308))


def test_bad_labels(small):
    net, theta, X, y = small
    with pytest.raises(ValueError, match=r"\[0, 2\).*got labels in \[0, 2\]"):
        net.loss(theta, X, [0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        net.loss(theta, X, [0, -1, 0, 0, 1])
    with pytest.raises(ValueError, match=r"non-integer value 0\.5"):
        net.loss(theta, X, [0, 0.5, 0, 0, 1])
    with pytest.raises(TypeError, match="integer class labels"):
        net.loss(theta, X, ["a", "b", "a", "a", "b"])
    with pytest.raises(ShapeError, match=r"\(5,\).*got shape \(4,\)"):
        net.loss(theta, X, y[:4])
    # whole-number floats are accepted
    assert net.loss(theta, X, y.astype(float)) == net.loss(theta, X, y)


def test_bad_options(small):
    net, theta, X, y = small
    with pytest.raises(InvalidOptionError, match="Did you mean 'cross_entropy'"):
        net.loss(theta, X, y, loss="cross-entropy")
    with pytest.raises(ShapeError, match=r"\(5, 2\)"):
        net.loss(theta, X, np.ones((5, 3)), loss="mse")
    with pytest.raises(ValueError, match="finite"):
        net.loss(theta, X, np.full((5, 2), np.nan), loss="mse")
    with pytest.raises(InvalidOptionError, match="at least 2"):
        MLP([3, 1]).loss(np.zeros(4), X, np.zeros(5))
    with pytest.raises(ValueError, match="max_bytes"):
        net.population_loss(theta[None], X, y, max_bytes=0)


@pytest.mark.parametrize("sizes", [[3], [3, 0, 2], [3, 2.5], "32"])
def test_bad_sizes(sizes):
    with pytest.raises((ValueError, TypeError)):
        MLP(sizes)


def test_pickle_roundtrip():
    import pickle

    net, theta, X, y = make_problem([3, 4, 2], "relu", "cross_entropy", batch=5, seed=0)
    clone = pickle.loads(pickle.dumps(net))
    assert clone.sizes == net.sizes and repr(clone) == repr(net)
    assert clone.loss(theta, X, y) == net.loss(theta, X, y)


# -- float32 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("act", DIFFERENTIABLE)
@pytest.mark.parametrize("loss", LOSSES)
def test_float32_agrees_with_float64(act, loss):
    # float32 rounding (eps 1.2e-7) through three layers: 1e-5 relative on the losses,
    # 1e-3 relative (in norm) on the gradient
    net, theta, X, y = make_problem([6, 7, 5, 3], act, loss, batch=13, seed=5)
    net32 = MLP(net.sizes, act, dtype="float32")
    thetas = theta + 0.3 * np.random.default_rng(6).normal(size=(9, net.n_params))
    ref = net.population_loss(thetas, X, y, loss)
    for rows in (thetas, thetas.astype(np.float32)):  # converted chunk by chunk, or as given
        got = net32.population_loss(rows, X, y, loss)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=1e-5)
    value, grad = net32.loss_and_grad(theta, X, y, loss)
    v64, g64 = net.loss_and_grad(theta, X, y, loss)
    assert grad.dtype == np.float32 and value == pytest.approx(v64, rel=1e-5)
    assert rel_err(grad.astype(np.float64), g64) < 1e-3
    assert net32.forward(theta, X).dtype == np.float32
    assert net32.init_params(0).dtype == np.float32
    np.testing.assert_array_equal(net32.init_params(0), net.init_params(0).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_forward_for_every_path(dtype):
    # loss, loss_and_grad and a population of one run the same forward pass: same bits
    net, theta, X, y = make_problem([6, 7, 5, 3], "tanh", "cross_entropy", batch=13, seed=5)
    net = MLP(net.sizes, "tanh", dtype=dtype)
    value = net.loss(theta, X, y)
    assert net.loss_and_grad(theta, X, y)[0] == value
    assert net.population_loss(theta[None], X, y)[0] == value
    # the objective holds its inputs with the first layer's column of ones: same bits
    obj = dfo.NetworkObjective(net, X, y)
    theta = theta.astype(net.dtype)
    assert obj(theta) == value and obj.evaluate_batch(theta[None])[0] == value
    assert obj.value_and_grad(theta)[0] == value
    np.testing.assert_array_equal(obj.value_and_grad(theta)[1], net.loss_and_grad(theta, X, y)[1])
    np.testing.assert_array_equal(obj.X, net.check_inputs(X))


def _logit_cases(dtype):
    # (logits of two samples, shifted?): logits z[sample, class]
    log_max, log_tiny = np.log(np.finfo(dtype).max), np.log(np.finfo(dtype).tiny)
    pattern = np.array([[1.0, -0.5, 0.2], [0.3, 0.1, -1.0]])
    huge = 1e300 if dtype == np.float64 else 1e30
    return [
        (0.25 * log_max * pattern, False),  # moderate
        (0.75 * log_max * pattern, False),  # large, but no exponential overflows
        (1e4 * pattern, True),  # exp overflows
        (np.array([[-huge, -huge, -huge], [0.0, 1.0, 2.0]]), True),  # a column underflows
        (1.05 * log_tiny + np.array([[0.0, -1.0, -2.0], [0.0, 0.0, 0.0]]), True),  # subnormal
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_shift_only_when_needed(dtype):
    # the plain exponentials are kept unless a column's sum overflowed or underflowed;
    # either way the loss agrees with scipy, and every path gives the same bits
    net = MLP([2, 3], "identity", dtype=dtype)
    X, y = np.eye(2), np.array([0, 2])
    for case, (z, shifted) in enumerate(_logit_cases(dtype)):
        W = z.astype(dtype)  # logits = eye @ W
        theta = net.flatten([(W, np.zeros(3))])
        with np.errstate(all="ignore"):
            m = losses._exp_sums(np.ascontiguousarray(W.T))[2]
        assert (m is not None) == shifted, case
        z64 = W.astype(np.float64)
        ref = np.mean(scipy.special.logsumexp(z64, axis=1) - z64[[0, 1], y])
        rtol = 1e-12 if dtype == np.float64 else 1e-6
        value = net.loss(theta, X, y)
        assert value == pytest.approx(ref, rel=rtol), case
        value_grad, grad = net.loss_and_grad(theta, X, y)
        assert value_grad == value and np.isfinite(grad).all(), case
        np.testing.assert_array_equal(net.population_loss(np.stack([theta] * 3), X, y), value)
        # the gradient: softmax - onehot, from the same exponentials
        p = scipy.special.softmax(z64, axis=1) - np.eye(3)[y]
        np.testing.assert_allclose(net.unflatten(grad)[0][1], p.mean(axis=0), atol=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_stacks_of_logits_decide_the_shift_as_single_networks(dtype):
    # a large stack of moderate logits (exponentiated in place after a range check)
    # gives, network by network, the bits of the same network alone (a new array,
    # checked on its sums); with extreme networks in it, the whole stack is shifted,
    # which rounds the others' losses differently
    rng = np.random.default_rng(3)
    y = np.array([0, 2])
    n = losses._IN_PLACE_BYTES // (6 * np.dtype(dtype).itemsize) + 10  # (n, 3, 2): above
    moderate = rng.normal(size=(n, 3, 2)).astype(dtype)
    mixed = moderate.copy()
    for i, (logits, _) in enumerate(_logit_cases(dtype)):
        mixed[7 * i + 1] = logits.T  # (n_out, batch)
    mixed[100, 1, 0] = np.nan
    near = moderate.copy()  # each logit in range, their sum of exponentials not
    near[5] = 0.999 * np.log(np.finfo(dtype).max)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    with np.errstate(all="ignore"):
        got = losses._ce_population(near.copy(), y)
    # (the loss is m + log 3 - z_y: rounding of the logits' size, ~700 or ~88)
    np.testing.assert_allclose(got[5], np.log(3.0), atol=4 * np.finfo(dtype).eps * near[5, 0, 0])
    for z in (moderate, mixed):  # the in-place branch, then the checks on the sums
        assert z.nbytes > losses._IN_PLACE_BYTES
        with np.errstate(all="ignore"):
            got = losses._ce_population(z.copy(), y)
            single = np.array([losses._ce_population(z[i : i + 1].copy(), y)[0] for i in range(n)])
        if z is moderate:
            np.testing.assert_array_equal(got, single)
    assert np.isnan(got[100]) and np.isnan(single[100])
    np.testing.assert_allclose(np.delete(got, 100), np.delete(single, 100), rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_logits_give_nan_losses(dtype):
    net = MLP([2, 3], "identity", dtype=dtype)
    X, y = np.eye(2), np.array([0, 2])
    theta = net.flatten([(np.array([[np.nan, 0.0, 1.0], [0.0, 0.0, 0.0]]), np.zeros(3))])
    with np.errstate(all="ignore"):
        assert losses._exp_sums(np.array([[np.nan], [0.0]], dtype=dtype))[2] is not None
    assert np.isnan(net.loss(theta, X, y)) and np.isnan(net.loss_and_grad(theta, X, y)[0])
    good = net.init_params(0)
    got = net.population_loss(np.stack([good, theta, good]), X, y)
    assert np.isnan(got[1]) and got[0] == got[2] == net.loss(good, X, y)


def test_bad_dtype():
    with pytest.raises(InvalidOptionError, match=r"\['float64', 'float32'\].*int32"):
        MLP([2, 3], dtype="int32")
    with pytest.raises(InvalidOptionError, match="dtype"):
        MLP([2, 3], dtype="bogus")
    assert "float32" in repr(MLP([2, 3], dtype=np.float32))
