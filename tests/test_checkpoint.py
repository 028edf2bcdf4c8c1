"""Checkpoints: every ask/tell optimizer pickles, and a resumed run is bit-identical.

"Identical" means the same final ``x``, ``fun``, counters, status and message, and the
same history except wall-clock time.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import told
from hypothesis import given, settings
from hypothesis import strategies as st

import dfo
from dfo.exceptions import InvalidOptionError
from dfo.nn.network_objective import MinibatchObjective
from dfo.result import Status

ASK_TELL = dfo.methods()  # every method is ask/tell
# variants whose state is easy to get wrong: probes split over several asks,
# perturbations regenerated from a seed, running averages, step-rule states
VARIANTS = [(m, {}) for m in ASK_TELL] + [
    ("fd-sgd", {"scheme": "central", "max_probes": 3}),
    ("fd-sgd", {"max_probes": 2, "step_rule": "adam"}),
    ("spsa", {"regenerate": True, "n_directions": 2}),
    ("spsa", {"average": True, "step_rule": "momentum"}),
    ("backprop-sgd", {"step_rule": "momentum"}),
    ("cma-es", {"separable": True, "popsize": 5}),
    ("random-search", {"bounds": (-2.0, 2.0)}),
]
IDS = [m + "".join(f"-{k}={v}" for k, v in o.items()) for m, o in VARIANTS]
COMPARED = ("nit", "nfev", "ngev", "value", "best")


def values_and_grads(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rosenbrock-like test function in any dimension, with a few nan values."""
    values = np.sum((X - 0.5) ** 2, axis=1) + 0.3 * np.sum(np.sin(3 * X), axis=1)
    values[X[:, 0] > 1.4] = np.nan
    return values, 2 * (X - 0.5) + 0.9 * np.cos(3 * X)


def ask_tell_run(method, options, stop_at=None, between=False, iterations=30):
    """Run ``iterations`` rounds; at ``stop_at`` pickle the optimizer and go on with
    the copy (``between``: after ask, before tell)."""
    opt = dfo.make_optimizer(method, np.full(4, 1.2), seed=11, budget=3000, **options)
    trace = []
    for i in range(iterations):
        if opt.stop():
            break
        if i == stop_at and not between:
            opt = pickle.loads(pickle.dumps(opt))
        X = opt.ask()
        if i == stop_at and between:
            opt = pickle.loads(pickle.dumps(opt))
            X = opt.ask()
        values, grads = values_and_grads(X)
        opt.tell(X, values, told(opt, grads))
        trace.append((opt.nit, opt.last_value, opt.best_f))
    return opt, np.array(trace)


@pytest.mark.parametrize(("method", "options"), VARIANTS, ids=IDS)
@settings(max_examples=6)
@given(stop_at=st.integers(0, 29), between=st.booleans())
def test_unpickled_optimizer_continues_identically(method, options, stop_at, between):
    ref, ref_trace = ask_tell_run(method, options)
    opt, trace = ask_tell_run(method, options, stop_at, between)
    np.testing.assert_array_equal(opt.recommend(), ref.recommend())
    np.testing.assert_array_equal(opt.best_x, ref.best_x)
    np.testing.assert_array_equal(trace, ref_trace)
    assert opt.nit == ref.nit and opt.n_nonfinite == ref.n_nonfinite


@pytest.mark.parametrize("method", ASK_TELL)
def test_pickled_copy_is_independent_of_the_original(method):
    opt = dfo.make_optimizer(method, np.ones(3), seed=2)
    X = opt.ask()
    copy = pickle.loads(pickle.dumps(opt))
    values, grads = values_and_grads(X)
    opt.tell(X, values, told(opt, grads))
    opt.ask()  # advances the original's generator
    np.testing.assert_array_equal(copy.ask(), X)  # the copy still has its own pending ask
    copy.tell(X, values, told(copy, grads))
    np.testing.assert_array_equal(copy.recommend(), opt.recommend())


# -- minimize(checkpoint=..., resume=True) ----------------------------------------------
def network_objective(batch_size=16):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int)
    net = dfo.MLP([3, 4, 2], activation="tanh")
    obj = dfo.NetworkObjective(net, X, y, batch_size=batch_size)
    return obj, net.init_params(1)


def assert_same_run(res, ref):
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.fun == ref.fun or (np.isnan(res.fun) and np.isnan(ref.fun))
    for key in ("nfev", "ngev", "nit", "n_nonfinite", "n_errors", "status", "message"):
        assert res[key] == ref[key], key
    for key in COMPARED:
        np.testing.assert_array_equal(res.history[key], ref.history[key], err_msg=key)


RESUME_CASES = [(m, o, True) for m, o in VARIANTS] + [(m, {}, False) for m in ASK_TELL]
RESUME_IDS = [f"{i}-minibatch" for i in IDS] + [f"{m}-full-batch" for m in ASK_TELL]


@pytest.mark.parametrize(("method", "options", "stochastic"), RESUME_CASES, ids=RESUME_IDS)
def test_resumed_minimize_is_identical(method, options, stochastic, tmp_path):
    obj, theta0 = network_objective(16 if stochastic else None)
    if "bounds" in options:
        theta0 = np.clip(theta0, -1.9, 1.9)
    kwargs = {"method": method, "budget": 250, "seed": 3, **options}
    ref = dfo.minimize(obj, theta0, **kwargs)
    path = tmp_path / "run.ckpt"
    # three sittings: stop after 3 iterations, then 5 more, then to the end
    first = dfo.minimize(obj, theta0, checkpoint=path, max_iter=3, **kwargs)
    assert first.status == Status.MAX_ITER and first.nit == 3
    second = dfo.minimize(obj, theta0, checkpoint=path, resume=True, max_iter=8, **kwargs)
    assert second.nit == 8
    res = dfo.minimize(obj, theta0, checkpoint=path, resume=True, **kwargs)
    assert res.nit > 8
    assert_same_run(res, ref)


def test_checkpoint_every_n_iterations(tmp_path):
    obj, theta0 = network_objective()
    path = tmp_path / "run.ckpt"
    seen = []

    def callback(intermediate_result):
        state = pickle.loads(path.read_bytes()) if path.exists() else None
        seen.append(None if state is None else state["optimizer"].nit)

    dfo.minimize(
        obj,
        theta0,
        method="spsa",
        budget=60,
        seed=0,
        checkpoint=path,
        checkpoint_every=4,
        callback=callback,
    )
    assert seen[:9] == [None, None, None, 4, 4, 4, 4, 8, 8]


@pytest.mark.parametrize("method", ["spsa", "fd-sgd", "cma-es"])
def test_checkpoint_holds_the_state_not_the_data(method, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 20))  # 800 kB
    y = rng.integers(0, 2, size=5000)
    net = dfo.MLP([20, 2])
    sizes = []
    for batch_size in (10, 2000):  # minibatches of 1.6 kB and 320 kB
        obj = dfo.NetworkObjective(net, X, y, batch_size=batch_size)
        path = tmp_path / f"{batch_size}.ckpt"
        dfo.minimize(obj, np.zeros(net.n_params), method, 200, seed=0, checkpoint=path)
        sizes.append(path.stat().st_size)
    assert abs(sizes[1] - sizes[0]) < 1000  # the realization is drawn again on resume
    assert sizes[0] < 200_000


def test_resume_without_a_checkpoint_file_starts_afresh(tmp_path):
    obj, theta0 = network_objective()
    ref = dfo.minimize(obj, theta0, method="cma-es", budget=200, seed=1)
    res = dfo.minimize(
        obj,
        theta0,
        method="cma-es",
        budget=200,
        seed=1,
        checkpoint=tmp_path / "new.ckpt",
        resume=True,
    )
    assert_same_run(res, ref)


def test_resume_with_a_larger_budget_continues_the_run(tmp_path):
    obj, theta0 = network_objective(None)
    ref = dfo.minimize(obj, theta0, method="cma-es", budget=300, seed=1)
    path = tmp_path / "run.ckpt"
    short = dfo.minimize(obj, theta0, method="cma-es", budget=150, seed=1, checkpoint=path)
    assert short.status == Status.BUDGET
    res = dfo.minimize(
        obj, theta0, method="cma-es", budget=300, seed=1, checkpoint=path, resume=True
    )
    assert_same_run(res, ref)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"seed": 4}, r"seed: checkpoint has 3, minimize was given 4"),
        ({"sigma0": 0.1}, r"options: checkpoint has .*sigma0"),
        ({"method": "random-search"}, r"method: checkpoint has 'cma-es'"),
    ],
)
def test_resume_refuses_a_checkpoint_of_another_run(change, pattern, tmp_path):
    path = tmp_path / "run.ckpt"
    dfo.minimize(lambda x: float(x @ x), np.ones(3), budget=50, seed=3, checkpoint=path)
    kwargs = {"method": "cma-es", "budget": 100, "seed": 3, **change}
    with pytest.raises(InvalidOptionError, match=pattern):
        dfo.minimize(lambda x: float(x @ x), np.ones(3), checkpoint=path, resume=True, **kwargs)
    with pytest.raises(InvalidOptionError, match=r"dim: checkpoint has 3"):
        dfo.minimize(
            lambda x: float(x @ x), np.ones(4), budget=100, seed=3, checkpoint=path, resume=True
        )


@pytest.mark.parametrize("content", [b"", b"not a pickle", pickle.dumps([1, 2, 3])])
def test_resume_refuses_a_file_that_is_not_a_checkpoint(content, tmp_path):
    path = tmp_path / "run.ckpt"
    path.write_bytes(content)
    calls = []
    with pytest.raises(ValueError, match=r"not a .*dfo checkpoint"):
        dfo.minimize(lambda x: calls.append(x) or 0.0, np.ones(2), checkpoint=path, resume=True)
    assert not calls


@pytest.mark.parametrize("method", ["fd-sgd", "cma-es", "spsa", "nelder-mead", "fd-bfgs"])
def test_interrupted_run_resumes_identically(method, tmp_path, monkeypatch):
    """Ctrl-C in the middle of an iteration (for fd-sgd: in a later probe block of a
    finite-difference gradient on one minibatch) rolls that iteration back."""
    obj, theta0 = network_objective()
    kwargs = {"method": method, "budget": 300, "seed": 5}
    if method == "fd-sgd":
        kwargs["max_probes"] = 7  # 18 parameters: three asks per gradient
    ref = dfo.minimize(obj, theta0, **kwargs)

    fast = MinibatchObjective._evaluate_batch
    seen = {"n": 0}

    def interrupting(self, T):
        seen["n"] += T.shape[0]
        if seen["n"] > 100:
            raise KeyboardInterrupt
        return fast(self, T)

    monkeypatch.setattr(MinibatchObjective, "_evaluate_batch", interrupting)
    path = tmp_path / "run.ckpt"
    stopped = dfo.minimize(obj, theta0, checkpoint=path, **kwargs)
    monkeypatch.undo()
    assert stopped.status == Status.INTERRUPTED
    assert stopped.nfev == stopped.history["nfev"][-1] <= 100
    res = dfo.minimize(obj, theta0, checkpoint=path, resume=True, **kwargs)
    assert_same_run(res, ref)


# -- a process killed mid-run ------------------------------------------------------
SCRIPT = """
import os, signal, sys, time
import numpy as np
import dfo
from dfo.nn.network_objective import MinibatchObjective

method, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int)
net = dfo.MLP([3, 4, 2], activation="tanh")
obj = dfo.NetworkObjective(net, X, y, batch_size=16)

def callback(intermediate_result):
    res = intermediate_result
    if mode == "kill" and res.nit == 23:
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "sigint" and res.nit == 3:
        print("running", flush=True)

if mode == "sigint":  # slow enough to be interrupted anywhere in the loop
    fast = MinibatchObjective._evaluate_batch
    def slow(self, T):
        time.sleep(0.005)
        return fast(self, T)
    MinibatchObjective._evaluate_batch = slow

options = {"max_probes": 7} if method == "fd-sgd" else {}
res = dfo.minimize(obj, net.init_params(1), method=method, budget=2000, seed=7,
                   checkpoint=path, checkpoint_every=5, callback=callback, **options)
print(res.status.name, res.nit, flush=True)
"""


def run_script(tmp_path, method, mode):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    path = tmp_path / f"{method}.ckpt"
    proc = subprocess.Popen(
        [sys.executable, str(script), method, str(path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, path


@pytest.mark.parametrize(
    "method", ["spsa", "fd-sgd", "nelder-mead", "fd-bfgs", "cobyqa", "backprop-sgd"]
)
def test_killed_process_resumes_from_its_last_checkpoint(method, tmp_path):
    proc, path = run_script(tmp_path, method, "kill")
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = pickle.loads(path.read_bytes())
    assert state["optimizer"].nit == 20  # the last multiple of checkpoint_every
    obj, theta0 = network_objective()
    kwargs = {"method": method, "budget": 2000, "seed": 7}
    if method == "fd-sgd":
        kwargs["max_probes"] = 7
    ref = dfo.minimize(obj, theta0, **kwargs)
    res = dfo.minimize(obj, theta0, checkpoint=path, resume=True, **kwargs)
    assert_same_run(res, ref)


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process")
def test_ctrl_c_to_a_process_resumes_identically(tmp_path):
    proc, path = run_script(tmp_path, "fd-sgd", "sigint")
    assert proc.stdout.readline().strip() == "running"
    time.sleep(0.3)  # somewhere in the loop: evaluating, asking or telling
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    status, nit = out.split()
    assert status == "INTERRUPTED" and int(nit) > 3
    obj, theta0 = network_objective()
    kwargs = {"method": "fd-sgd", "budget": 2000, "seed": 7, "max_probes": 7}
    ref = dfo.minimize(obj, theta0, **kwargs)
    res = dfo.minimize(obj, theta0, checkpoint=path, resume=True, **kwargs)
    assert_same_run(res, ref)
