"""Property tests: generated inputs to the public API raise only documented exceptions.

Odd shapes and dtypes, nan, inf, empty arrays, bad option values and objectives that
return garbage go into ``minimize``, ``make_optimizer``, ``as_objective``, ``MLP`` and
``NetworkObjective``. What may come out (see :mod:`dfo.exceptions`): a result, or a
``ValueError`` / ``TypeError`` raised *on purpose by dfo* -- a ``raise`` statement in
dfo with a message, never an error from inside numpy, scipy or pycma -- and no
warning at all. Budgets are small, so a hang would show as a slow test.
"""

from __future__ import annotations

import dis
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import told
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dfo
from dfo.optimizers import method_options
from dfo.result import HISTORY_FIELDS, Result, Status

DFO_DIR = str(Path(dfo.__file__).parent)
RAISES = {"RAISE_VARARGS", "RERAISE"}
METHODS = dfo.methods()
OPTION_NAMES = sorted({name for m in METHODS for name in method_options(m)})
PROPERTY = settings(
    max_examples=80,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def check_documented(exc: BaseException) -> None:
    """Fail unless ``exc`` is a ValueError/TypeError raised on purpose by dfo.

    On purpose means: the innermost frame of the traceback is dfo code executing a
    ``raise`` statement (not a call into numpy, scipy or pycma that raised).
    """
    assert isinstance(exc, ValueError | TypeError), f"undocumented exception {exc!r}"
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    instruction = dis.opname[code.co_code[tb.tb_lasti]]
    assert code.co_filename.startswith(DFO_DIR) and instruction in RAISES, (
        f"internal error escaped: {type(exc).__name__}: {exc} "
        f"(from {code.co_filename}:{tb.tb_lineno} in {code.co_name}, at {instruction})"
    )
    assert len(str(exc)) > 10, f"no message: {exc!r}"


def call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with every warning an error; None if it raised as documented."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            out = fn(*args, **kwargs)
        except Exception as exc:  # checked right here
            check_documented(exc)
            event(f"{getattr(fn, '__name__', fn)}: {type(exc).__name__}")
            return None
    event(f"{getattr(fn, '__name__', fn)}: returned")
    return out


# -- strategies ---------------------------------------------------------------------
odd_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, -1e300, math.nan, math.inf, -math.inf]),
)
dtypes = st.sampled_from(
    [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_, np.complex128]
)


def float_elements(dtype):
    """Finite values, nan and inf that ``dtype`` represents exactly."""
    width = np.dtype(dtype).itemsize * 8
    special = [math.nan, math.inf, -math.inf, 0.0, -0.0]
    if width == 64:
        special += [1e300, -1e300, 1e-300]
    return st.one_of(
        st.floats(-1e4, 1e4, width=width, allow_subnormal=False), st.sampled_from(special)
    )


def odd_arrays(max_dims: int = 3, max_side: int = 4, min_dims: int = 0):
    """Arrays of any common dtype and small shape (empty ones too), nan and inf included."""
    return dtypes.flatmap(
        lambda dt: hnp.arrays(
            dt,
            hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side),
            elements=float_elements(dt) if np.dtype(dt).kind == "f" else None,
        )
    )


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 50),
    odd_floats,
    st.text(max_size=6),
    st.lists(st.floats(allow_nan=True, width=32), max_size=4),
    st.tuples(odd_floats, odd_floats),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.just(object()),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
array_like = st.one_of(odd_arrays(), junk, st.lists(st.lists(odd_floats, max_size=3), max_size=3))


def mostly(valid, bad):
    """Usually ``valid``, sometimes ``bad`` (and ``valid`` when shrinking)."""
    return st.integers(0, 5).flatmap(lambda i: bad if i == 5 else valid)


def good_x0(dim: int):
    return hnp.arrays(np.float64, dim, elements=st.floats(-3, 3))


x0s = mostly(st.integers(1, 4).flatmap(good_x0), array_like)
plausible_values = st.one_of(
    st.floats(0.01, 2.0),
    st.integers(2, 6),
    st.booleans(),
    st.none(),
    st.sampled_from(["sgd", "adam", "momentum", "forward", "central", "auto"]),
    st.tuples(st.floats(-3, -1), st.floats(1, 3)),
)
option_values = mostly(
    plausible_values,
    st.one_of(
        junk,
        st.tuples(st.one_of(st.none(), odd_floats), st.one_of(st.none(), odd_floats)),
        st.fixed_dictionaries(
            {},
            optional={
                "CMA_active": junk,
                "CSA_dampfac": junk,
                "tolstagnation": junk,
                "maxiter": junk,
            },
        ),
    ),
)


def options_for(method):
    """Options of ``method`` (sometimes of another one, or made up) with values."""
    names = sorted(method_options(method)) if method in METHODS else OPTION_NAMES
    keys = mostly(st.sampled_from(names), st.one_of(st.sampled_from(OPTION_NAMES), st.text()))
    return st.dictionaries(keys, option_values, max_size=3)


options = st.sampled_from(METHODS).flatmap(options_for)
methods = mostly(
    st.sampled_from(METHODS), st.one_of(st.text(max_size=10), st.none(), st.integers())
)
# junk, but no float like 1e300 that is a whole number: minimize accepts it as a budget
budgets = mostly(
    st.integers(1, 120),
    st.one_of(
        st.integers(-2, 0),
        junk.filter(lambda v: not (isinstance(v, float) and v.is_integer() and v > 120)),
    ),
)


def outputs(dim: int):
    """What a generated objective returns for one point."""
    return st.one_of(
        odd_floats,
        st.integers(-10, 10),
        st.just("1.0"),
        st.none(),
        odd_arrays(max_dims=2, max_side=3),
        st.just([1.0, 2.0]),
    )


class Generated:
    """An objective: a smooth bowl, or (on a generated fraction of the points) a
    generated value, possibly garbage."""

    def __init__(self, value, every: int) -> None:
        self.value = value
        self.every = every
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        assert np.all(np.isfinite(x)), f"dfo asked for the value at {x}"
        if self.every and self.calls % self.every == 0:
            return self.value
        return float(np.sum(np.tanh(x) ** 2))  # no overflow for any finite x


# -- minimize -------------------------------------------------------------------------
def check_result(res: Result, dim: int, budget: int) -> None:
    assert isinstance(res, Result)
    assert res.x.shape == (dim,) and res.x.dtype == np.float64
    assert np.all(np.isfinite(res.x))
    assert 0 <= res.nfev <= budget and 0 <= res.ngev <= res.nfev
    assert 0 <= res.n_errors <= res.n_nonfinite <= res.nfev
    assert isinstance(res.success, bool) and isinstance(res.status, Status)
    assert not res.success or np.isfinite(res.fun)
    assert isinstance(res.message, str) and res.message
    assert set(res.history) == set(HISTORY_FIELDS)
    assert {len(v) for v in res.history.values()} == {res.nit}


@PROPERTY
@given(
    data=st.data(),
    x0=x0s,
    method=methods,
    budget=budgets,
    seed=mostly(st.one_of(st.none(), st.integers(0, 2**64)), st.one_of(st.integers(-2, -1), junk)),
)
def test_minimize_with_bad_arguments(data, x0, method, budget, seed):
    opts = data.draw(options_for(method), label="options")
    f = Generated(1.0, 0)
    obj = f
    if isinstance(x0, np.ndarray) and x0.ndim == 1 and x0.size and data.draw(st.booleans()):
        obj = dfo.as_objective(f, dim=x0.size, grad=lambda x: 2 * x)
    res = call(dfo.minimize, obj, x0, method, budget, seed=seed, **opts)
    if res is None:
        assert f.calls == 0  # refused before the first evaluation
    else:
        check_result(res, np.size(x0), int(budget))


@PROPERTY
@given(
    data=st.data(),
    dim=st.integers(1, 4),
    method=st.sampled_from(METHODS),
    every=st.integers(0, 4),
    on_error=st.sampled_from(["raise", "worst"]),
    batched=st.booleans(),
)
def test_minimize_with_objectives_that_return_anything(
    data, dim, method, every, on_error, batched
):
    value = data.draw(outputs(dim), label="value")
    f = Generated(value, every)
    if batched:
        obj = dfo.as_objective(
            lambda X: [f(x) for x in X] if every else f(X[0]), dim=dim, batched=True
        )
    else:
        grad_out = data.draw(st.one_of(st.none(), odd_arrays(max_dims=2)), label="grad")
        grad = (lambda x: 2 * x) if grad_out is None else (lambda x: grad_out)
        obj = dfo.as_objective(f, dim=dim, grad=grad)
    x0 = data.draw(good_x0(dim), label="x0")
    res = call(dfo.minimize, obj, x0, method, 60, seed=0, on_error=on_error)
    if res is not None:
        check_result(res, dim, 60)


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(METHODS),
    max_iter=mostly(st.one_of(st.none(), st.integers(1, 5)), st.one_of(st.integers(-1, 0), junk)),
    max_time=mostly(st.one_of(st.none(), st.floats(0.001, 10)), st.one_of(odd_floats, junk)),
    on_error=mostly(st.sampled_from(["raise", "worst"]), junk),
    catch_interrupt=mostly(st.booleans(), junk),
    checkpoint_every=mostly(st.integers(1, 3), st.one_of(st.integers(-1, 0), junk)),
    callback=mostly(st.none(), junk),
)
def test_minimize_run_options(
    method, max_iter, max_time, on_error, catch_interrupt, checkpoint_every, callback
):
    f = Generated(1.0, 0)
    res = call(
        dfo.minimize,
        f,
        np.ones(2),
        method,
        40,
        seed=1,
        max_iter=max_iter,
        max_time=max_time,
        on_error=on_error,
        catch_interrupt=catch_interrupt,
        checkpoint_every=checkpoint_every,
        callback=callback,
    )
    if res is None:
        assert f.calls == 0
    else:
        check_result(res, 2, 40)


# -- make_optimizer and ask/tell ---------------------------------------------------------
ASK_TELL = METHODS  # every method is ask/tell


@PROPERTY
@given(data=st.data(), method=st.sampled_from(ASK_TELL), dim=st.integers(1, 4))
def test_ask_tell_with_bad_values(data, method, dim):
    opts = data.draw(mostly(st.just({}), options_for(method)), label="options")
    opt = call(dfo.make_optimizer, method, np.ones(dim), seed=0, budget=500, **opts)
    if opt is None:
        return
    for _ in range(4):
        if call(opt.stop):  # the run is over (scipy's methods then have nothing to ask)
            break
        X = call(opt.ask)
        assert X is not None and X.ndim == 2 and X.shape[1] == dim
        assert np.all(np.isfinite(X))
        values = data.draw(
            mostly(hnp.arrays(np.float64, X.shape[0], elements=odd_floats), array_like)
        )
        grads = data.draw(st.one_of(st.none(), array_like, st.just(2 * X)))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                opt.tell(X, values, grads)
            except Exception as exc:
                check_documented(exc)
                # a refused tell leaves the optimizer as it was: tell the same points again
                np.testing.assert_array_equal(opt.ask(), X)
                zeros = np.zeros_like(X)
                opt.tell(X, zeros[:, 0], told(opt, zeros))
        assert np.all(np.isfinite(opt.recommend()))


@PROPERTY
@given(
    data=st.data(),
    method=methods,
    x0=x0s,
    seed=mostly(st.integers(0, 10), junk),
    budget=mostly(st.one_of(st.none(), st.integers(1, 100)), junk),
)
def test_make_optimizer_with_bad_arguments(data, method, x0, seed, budget):
    opts = data.draw(options_for(method), label="options")
    opt = call(dfo.make_optimizer, method, x0, seed=seed, budget=budget, **opts)
    if opt is not None:
        X = call(opt.ask)
        assert X is not None and np.all(np.isfinite(X))


# -- as_objective -------------------------------------------------------------------------
@PROPERTY
@given(
    dim=mostly(st.just(3), st.one_of(st.integers(-1, 4), junk)),
    batched=st.booleans(),
    out=st.one_of(outputs(3), array_like),
    point=mostly(
        st.one_of(good_x0(3), st.integers(0, 3).flatmap(lambda k: good_x0((k, 3)))), array_like
    ),
)
def test_as_objective_with_bad_arguments(dim, batched, out, point):
    obj = call(dfo.as_objective, lambda x: out, dim, batched=batched)
    if obj is None:
        return
    value = call(obj, point)
    assert value is None or isinstance(value, float)
    values = call(obj.evaluate_batch, point)
    assert values is None or (values.dtype == np.float64 and values.ndim == 1)


@settings(max_examples=20)
@given(fun=junk, grad=junk)
def test_as_objective_refuses_non_callables(fun, grad):
    assert call(dfo.as_objective, fun, 2) is None
    assert call(dfo.as_objective, lambda x: 0.0, 2, grad=grad) is None or grad is None


# -- MLP ----------------------------------------------------------------------------------
activations = mostly(
    st.sampled_from(["tanh", "relu", "sigmoid", "identity", "step"]),
    st.one_of(st.text(max_size=6), junk),
)
sizes = mostly(
    st.lists(st.integers(1, 4), min_size=2, max_size=4),
    st.one_of(st.lists(st.one_of(st.integers(-1, 4), junk), max_size=4), junk),
)


@PROPERTY
@given(sizes=sizes, activation=activations, output=activations)
def test_mlp_with_bad_construction(sizes, activation, output):
    net = call(dfo.MLP, sizes, activation, output_activation=output)
    if net is not None:
        assert net.n_params == sum(
            a * b + b for a, b in zip(net.sizes[:-1], net.sizes[1:], strict=True)
        )


@PROPERTY
@given(
    data=st.data(),
    sizes=st.lists(st.integers(1, 4), min_size=2, max_size=3),
    activation=st.sampled_from(["tanh", "relu", "sigmoid", "identity", "step"]),
    loss=mostly(st.sampled_from(["cross_entropy", "mse"]), junk),
)
def test_mlp_with_bad_data(data, sizes, activation, loss):
    net = dfo.MLP(sizes, activation)
    good_theta = hnp.arrays(np.float64, net.n_params, elements=odd_floats)
    theta = data.draw(mostly(good_theta, array_like), label="theta")
    finite = st.floats(-1e3, 1e3)
    X = data.draw(
        mostly(
            hnp.arrays(np.float64, (3, net.n_in), elements=finite),
            st.one_of(hnp.arrays(np.float64, (3, net.n_in), elements=odd_floats), array_like),
        ),
        label="X",
    )
    y = data.draw(
        mostly(
            st.one_of(
                hnp.arrays(np.int64, 3, elements=st.integers(0, net.n_out - 1)),
                hnp.arrays(np.float64, (3, net.n_out), elements=finite),
            ),
            st.one_of(hnp.arrays(np.int64, 3, elements=st.integers(-1, net.n_out)), array_like),
        ),
        label="y",
    )
    out = call(net.forward, theta, X)
    assert out is None or out.shape == (np.shape(X)[0], net.n_out)
    value = call(net.loss, theta, X, y, loss)
    assert value is None or isinstance(value, float)
    pair = call(net.loss_and_grad, theta, X, y, loss)
    assert pair is None or pair[1].shape == (net.n_params,)
    Thetas = data.draw(
        st.one_of(odd_arrays(), st.builds(np.stack, st.lists(good_theta, min_size=1, max_size=3)))
    )
    values = call(net.population_loss, Thetas, X, y, loss)
    assert values is None or values.shape == (np.shape(Thetas)[0],)
    call(net.predict, theta, X)
    call(net.accuracy, theta, X, y)


# -- NetworkObjective --------------------------------------------------------------------
@PROPERTY
@given(
    data=st.data(),
    loss=mostly(st.sampled_from(["cross_entropy", "mse"]), junk),
    batch_size=mostly(
        st.one_of(st.none(), st.integers(1, 6)), st.one_of(st.integers(-1, 8), junk)
    ),
    n_out=st.integers(1, 3),
)
def test_network_objective_with_bad_data(data, loss, batch_size, n_out):
    net = dfo.MLP([2, 3, n_out])
    finite = st.floats(-1e3, 1e3)
    X = data.draw(
        mostly(
            hnp.arrays(np.float64, (6, 2), elements=finite),
            st.one_of(hnp.arrays(np.float64, (6, 2), elements=odd_floats), array_like),
        ),
        label="X",
    )
    y = data.draw(
        mostly(
            st.one_of(
                hnp.arrays(np.int64, 6, elements=st.integers(0, n_out - 1)),
                hnp.arrays(np.float64, (6, n_out), elements=finite),
            ),
            st.one_of(
                hnp.arrays(np.int64, 6, elements=st.integers(-1, n_out)),
                hnp.arrays(np.float64, (6, n_out), elements=odd_floats),
                array_like,
            ),
        ),
        label="y",
    )
    obj = call(dfo.NetworkObjective, net, X, y, loss=loss, batch_size=batch_size)
    if obj is None:
        return
    theta = data.draw(hnp.arrays(np.float64, net.n_params, elements=odd_floats), label="theta")
    call(obj, theta)
    call(obj.value_and_grad, theta)
    res = call(dfo.minimize, obj, np.zeros(net.n_params), "spsa", 30, seed=0)
    if res is not None:
        check_result(res, net.n_params, 30)


def test_check_documented_catches_internal_errors():
    """The checker itself: a numpy error passed through is not 'documented'."""
    with pytest.raises(AssertionError, match="internal error"):
        try:
            np.asarray(["a"], dtype=float)
        except ValueError as exc:
            check_documented(exc)
    with pytest.raises(AssertionError, match="undocumented"):
        check_documented(RuntimeError("boom"))
