"""The gradient loop without repeated checks and copies keeps every guarantee."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dfo
from dfo.exceptions import ObjectiveOutputError
from dfo.objective import all_finite, square_norm
from dfo.result import Status


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


# -- the lean loop (dfo.run.lean) gives the ask/tell loop's bits ------------------------
def _data(dtype="float64"):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 5))
    y = rng.integers(0, 3, size=150)
    net = dfo.MLP([5, 4, 3], activation="tanh", dtype=dtype)
    return net, X, y, net.init_params(np.random.default_rng(1))


def _interrupt_at(monkeypatch, name, call):
    """Make ``dfo.MLP.<name>`` raise KeyboardInterrupt at its ``call``-th call.

    Returns the call counter (``counter["n"] = 0`` starts the count again).
    """
    method = getattr(dfo.MLP, name)
    counter = {"n": 0}

    def interrupting(self, *args, **kwargs):
        counter["n"] += 1
        if counter["n"] == call:
            raise KeyboardInterrupt
        return method(self, *args, **kwargs)

    monkeypatch.setattr(dfo.MLP, name, interrupting)
    return counter


def _same_run(a, b):
    assert a.message == b.message
    assert (a.nit, a.nfev, a.ngev, a.njvp, a.n_nonfinite) == (
        b.nit,
        b.nfev,
        b.ngev,
        b.njvp,
        b.n_nonfinite,
    )
    np.testing.assert_array_equal(a.x, b.x)
    assert a.fun == b.fun or (np.isnan(a.fun) and np.isnan(b.fun))
    for key in a.history:
        if key != "time":
            np.testing.assert_array_equal(a.history[key], b.history[key])


LEAN_CASES = {
    "full batch": ({}, {}),
    "minibatches": ({"batch_size": 16}, {}),
    "minibatches, adam": ({"batch_size": 16}, {"step_rule": "adam"}),
    "minibatches, momentum": ({"batch_size": 16}, {"step_rule": "momentum"}),
    "failed steps": ({"batch_size": 16}, {"learning_rate": 300.0, "divergence": 0.5}),
    "target": ({}, {"target": 1.07}),
    "max_iter": ({"batch_size": 16}, {"max_iter": 37}),
    "bounds": ({"batch_size": 16}, {"bounds": (-0.3, 0.3), "learning_rate": 2.0}),
}


#: forward-gradient's options where backprop-sgd's defaults do not fit
FORWARD_CASES = {"target": {"learning_rate": 0.1}, "minibatches, adam": {"learning_rate": 0.05}}


@pytest.mark.parametrize("method", ["backprop-sgd", "forward-gradient"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(LEAN_CASES))
def test_the_lean_loop_gives_the_bits_of_the_ask_tell_loop(case, dtype, method, monkeypatch):
    net, X, y, theta = _data(dtype)
    obj_kw, run_kw = LEAN_CASES[case]
    obj = dfo.NetworkObjective(net, X, y, **obj_kw)
    kwargs = {"budget": 200, "seed": 3, **run_kw}
    if method == "forward-gradient":
        kwargs.update(FORWARD_CASES.get(case, {}))
    lean = dfo.minimize(obj, theta, method, **kwargs)
    # a callback makes the run loop take the ask/tell path
    full = dfo.minimize(obj, theta, method, callback=lambda r: None, **kwargs)
    _same_run(lean, full)
    if method == "forward-gradient":  # one forward pass per iteration, counted as such
        assert lean.njvp == lean.nfev - 1 == lean.nit and lean.ngev == 0
    if case == "failed steps":
        assert "failed steps" in lean.message
    if case == "target":
        assert lean.status == Status.CONVERGED and lean.nit < 199
    # and the lean loop did run: without a callback, ask/tell is never used
    monkeypatch.setattr(dfo.Optimizer, "tell_evaluated", None)
    _same_run(dfo.minimize(obj, theta, method, **kwargs), lean)


def test_the_lean_loop_keeps_forward_gradients_with_several_directions_on_ask_tell(monkeypatch):
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    res = dfo.minimize(obj, theta, "forward-gradient", budget=60, seed=0, n_directions=3)
    assert res.njvp == res.nfev - 1 == 3 * res.nit
    monkeypatch.setattr(dfo.Optimizer, "tell_evaluated", None)  # the ask/tell loop's
    with pytest.raises(TypeError):
        dfo.minimize(obj, theta, "forward-gradient", budget=60, seed=0, n_directions=3)


def test_the_lean_loop_gives_the_bits_of_the_ask_tell_loop_on_a_function():
    obj = dfo.as_objective(sphere, dim=3, grad=lambda x: x.copy())
    kwargs = {"budget": 100, "seed": 0, "learning_rate": 0.3}
    lean = dfo.minimize(obj, np.arange(3.0), "backprop-sgd", **kwargs)
    full = dfo.minimize(obj, np.arange(3.0), "backprop-sgd", callback=lambda r: None, **kwargs)
    _same_run(lean, full)


def test_the_lean_forward_gradient_gives_the_bits_of_the_ask_tell_loop_on_a_function(
    monkeypatch,
):
    def grad(x):  # not finite beyond 2: the failed steps and their count
        return x.copy() if abs(x[0]) < 2.0 else np.full_like(x, np.nan)

    obj = dfo.as_objective(sphere, dim=3, grad=grad)
    kwargs = {"budget": 100, "seed": 0, "learning_rate": 0.9}
    x0 = np.array([1.5, -1.0, 0.5])
    lean = dfo.minimize(obj, x0, "forward-gradient", **kwargs)
    full = dfo.minimize(obj, x0, "forward-gradient", callback=lambda r: None, **kwargs)
    _same_run(lean, full)
    assert lean.n_nonfinite > 0 and lean.njvp == lean.nit  # the failed ones counted too
    monkeypatch.setattr(dfo.Optimizer, "tell_evaluated", None)  # the lean loop did run
    _same_run(dfo.minimize(obj, x0, "forward-gradient", **kwargs), lean)


def test_the_lean_loop_names_the_iteration_where_the_objective_raised():
    def grad(x):
        if x[0] < 0.5:
            raise RuntimeError("boom")
        return x.copy()

    obj = dfo.as_objective(sphere, dim=2, grad=grad)
    with pytest.raises(RuntimeError, match="boom") as info:
        dfo.minimize(obj, np.ones(2), "backprop-sgd", budget=100, learning_rate=0.1)
    notes = "\n".join(info.value.__notes__)
    assert "iteration 7 of method 'backprop-sgd'" in notes  # 0.9**7 < 0.5 <= 0.9**6


def test_a_float32_network_trains_in_float32_and_follows_the_float64_run(monkeypatch):
    net32, X, y, theta = _data("float32")
    X32 = X.astype(np.float32)  # the same data and start in both runs
    theta = theta.astype(np.float32).astype(np.float64)
    seen = []
    loss_and_grad = dfo.MLP.loss_and_grad

    def spy(self, th, *args, **kwargs):
        value, grad = loss_and_grad(self, th, *args, **kwargs)
        seen.append((th.dtype, grad.dtype))
        return value, grad

    monkeypatch.setattr(dfo.MLP, "loss_and_grad", spy)
    kwargs = {"budget": 300, "seed": 2, "learning_rate": 0.5}
    for callback in (None, lambda r: None):  # the lean loop and the ask/tell loop
        seen.clear()
        obj32 = dfo.NetworkObjective(net32, X32, y, batch_size=16)
        res32 = dfo.minimize(obj32, theta, "backprop-sgd", callback=callback, **kwargs)
        assert seen and set(seen) == {(np.dtype(np.float32), np.dtype(np.float32))}
        assert res32.dtype == "float32" and res32.x.dtype == np.float64
        np.testing.assert_array_equal(res32.x, res32.x.astype(np.float32))  # float32 numbers
    monkeypatch.undo()
    net64 = dfo.MLP(net32.sizes, activation="tanh")
    obj64 = dfo.NetworkObjective(net64, X32.astype(np.float64), y, batch_size=16)
    res64 = dfo.minimize(obj64, theta, "backprop-sgd", **kwargs)
    assert res64.nit == res32.nit == 299
    # 300 steps of float32 rounding (eps 1.2e-7) on parameters of size ~1
    assert np.max(np.abs(res32.x - res64.x)) <= 1e-4 * np.max(np.abs(res64.x))
    assert abs(res32.fun - res64.fun) <= 1e-5 * abs(res64.fun)
    assert np.max(np.abs(res32.x - res64.x)) > 0  # it did run in float32


def test_backprop_sgd_iterates_in_the_dtype_it_is_given():
    opt = dfo.make_optimizer("backprop-sgd", np.ones(3), dtype="float32", step_rule="adam")
    X = opt.ask()
    assert X.dtype == np.float32 and opt.x.dtype == np.float32
    opt.tell(X, [1.5], np.full((1, 3), 0.25))  # float64 gradients: rounded to float32
    assert opt.x.dtype == np.float32 and opt.ask().dtype == np.float32
    assert opt.recommend().dtype == np.float64
    boxed = dfo.make_optimizer("backprop-sgd", np.ones(3), dtype="float32", bounds=(0, 2))
    assert boxed.x.dtype == np.float64  # the box is float64: so is the iterate


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ctrl_c_in_the_lean_loop_keeps_what_was_found_and_resumes_bit_identically(
    dtype, tmp_path, monkeypatch
):
    net, X, y, theta = _data(dtype)
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    kwargs = {"budget": 200, "seed": 4, "learning_rate": 0.5}
    ref = dfo.minimize(obj, theta, "backprop-sgd", **kwargs)  # the lean loop
    calls = _interrupt_at(monkeypatch, "loss_and_grad", 81)
    stopped = dfo.minimize(obj, theta, "backprop-sgd", **kwargs)  # lean, no checkpoint
    assert stopped.status == Status.INTERRUPTED and stopped.nit == stopped.nfev == 80
    np.testing.assert_array_equal(stopped.history["best"], ref.history["best"][:80])
    assert stopped.fun == ref.history["best"][79]  # the best value found, at its point
    # a checkpointed run (the ask/tell loop) stopped the same way resumes to the lean run's bits
    calls["n"] = 0
    path = tmp_path / "run.ckpt"
    dfo.minimize(obj, theta, "backprop-sgd", checkpoint=path, checkpoint_every=7, **kwargs)
    monkeypatch.undo()
    res = dfo.minimize(obj, theta, "backprop-sgd", checkpoint=path, resume=True, **kwargs)
    _same_run(res, ref)


# -- backprop-sgd's common step in one call (BackpropSGD.lean_tell) ---------------------
def _stepped(theta, obj, **options):
    """A backprop-sgd optimizer after its first iteration (``tell_gradient``)."""
    opt = dfo.make_optimizer("backprop-sgd", theta, seed=0, learning_rate=0.1, **options)
    opt.tell_gradient(*obj.value_and_grad(opt.x))
    return opt


def _step_state(opt):
    ledger = opt.ledger
    state = (opt.x, opt.anchor, opt.anchor_value, opt.anchor_before, opt._x_bound, opt.gradient)
    return (
        *state,
        opt.bad_steps,
        ledger.nfev,
        ledger.ngev,
        ledger.nit,
        ledger.best_x,
        ledger.best_f,
        [row[:3] + row[4:] for row in ledger.history],
    )


def test_the_common_step_in_one_call_is_tell_gradients_step():
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y)
    one, general = _stepped(theta, obj), _stepped(theta, obj)
    one.tell_gradient = None  # never called: every step below is the common case
    tell = one.lean_tell()
    for _ in range(5):
        value, grad = obj.value_and_grad(one.x)
        tell(value, grad)
        general.tell_gradient(value, grad)
        for mine, theirs in zip(_step_state(one), _step_state(general), strict=True):
            np.testing.assert_array_equal(mine, theirs)
    assert one.ledger.nit == 6


@pytest.mark.parametrize(
    "case", ["first", "adam", "bounds", "nan value", "inf gradient", "diverged", "float32"]
)
def test_the_step_in_one_call_leaves_every_other_case_to_tell_gradient(case):
    net, X, y, theta = _data()
    obj = dfo.NetworkObjective(net, X, y)
    options = {"adam": {"step_rule": "adam"}, "bounds": {"bounds": (-1.0, 1.0)}}
    if case == "first":
        opt = dfo.make_optimizer("backprop-sgd", theta, seed=0, learning_rate=0.1)
    else:
        opt = _stepped(theta, obj, **options.get(case, {}))
    value, grad = obj.value_and_grad(opt.x)
    if case == "nan value":
        value = float("nan")
    elif case == "inf gradient":
        grad[2] = np.inf
    elif case == "diverged":
        value = opt.first_value + 2 * opt._diverged
    elif case == "float32":
        grad = grad.astype(np.float32)
    calls = []
    opt.tell_gradient = lambda *args: calls.append(args)
    before = [np.copy(v) for v in _step_state(opt)]
    opt.lean_tell()(value, grad)
    assert len(calls) == 1 and calls[0][0] is value and calls[0][1] is grad
    for now, then in zip(_step_state(opt), before, strict=True):
        np.testing.assert_array_equal(now, then)


# -- NetworkObjective's streams give what the lean loop no longer checks -----------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_size", [None, 16])
def test_the_network_streams_give_a_float_and_a_gradient_of_the_nets_type(dtype, batch_size):
    net, X, y, theta = _data(dtype)
    obj = dfo.NetworkObjective(net, X, y, batch_size=batch_size)
    stream = obj.gradient_stream(np.random.default_rng(0), obj.sampler())
    assert stream.checked_dtype == net.dtype
    for point in (theta, theta.astype(np.float64), list(theta)):  # converted when it must be
        value, grad = stream(point)
        assert type(value) is float
        assert type(grad) is np.ndarray and grad.dtype == net.dtype
        assert grad.shape == (net.n_params,)

    class OwnGradient(dfo.NetworkObjective):
        def _value_and_grad(self, x):
            return 1, [0.0] * self.dim

    own = OwnGradient(net, X, y, batch_size=batch_size)
    own_stream = own.gradient_stream(np.random.default_rng(0), own.sampler())
    assert not hasattr(own_stream, "checked_dtype")


def test_a_stream_of_another_type_than_the_iterate_is_checked_and_converted(monkeypatch):
    net, X, y, theta = _data("float32")
    obj = dfo.NetworkObjective(net, X, y, batch_size=16)
    kwargs = {"budget": 60, "seed": 3, "dtype": "float64"}  # a float64 iterate
    lean = dfo.minimize(obj, theta, "backprop-sgd", **kwargs)
    full = dfo.minimize(obj, theta, "backprop-sgd", callback=lambda r: None, **kwargs)
    _same_run(lean, full)
    converted = []

    def to_gradient(grad, dim):
        converted.append(grad.dtype)
        return dfo.objective.to_gradient(grad, dim)

    monkeypatch.setattr(dfo.run.lean, "to_gradient", to_gradient)
    monkeypatch.setattr(dfo.Optimizer, "tell_evaluated", None)  # the lean loop ran
    _same_run(dfo.minimize(obj, theta, "backprop-sgd", **kwargs), lean)
    assert converted == [np.float32] * lean.nit  # each float32 gradient, to the iterate's type
