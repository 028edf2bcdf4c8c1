"""scipy's closed loops recast into ask/tell: same points as scipy, exact budgets, resumes."""

from __future__ import annotations

import gc
import pickle
import threading

import numpy as np
import pytest
import scipy.optimize

import dfo
from dfo import problems
from dfo.numdiff import fd_gradient, fd_probes, fd_steps
from dfo.result import Status

# method -> (scipy's name, options as dfo takes them, the same as scipy takes them)
SCIPY = {
    "nelder-mead": ("Nelder-Mead", {"xatol": 1e-8, "fatol": 1e-8}),
    "powell": ("Powell", {"xtol": 1e-4, "ftol": 1e-4, "maxfev": np.inf}),
    "cobyqa": ("COBYQA", {"maxfev": 2**62}),
}
RECAST = ["backprop-bfgs", "cobyqa", "fd-bfgs", "nelder-mead", "powell"]


def loop_threads() -> list[threading.Thread]:
    """The scipy loop threads still running, once unreachable optimizers are collected.

    An optimizer that an earlier test left in a reference cycle (a traceback kept by
    hypothesis, say) ends its thread when it is collected; this test's optimizers
    are reachable and keep theirs.
    """
    gc.collect()
    return [t for t in threading.enumerate() if t.name == "dfo-scipy-loop"]


class Recorder(dfo.Objective):
    """An objective that records every point it is given (a copy), with f's gradient."""

    has_gradient = True

    def __init__(self, f):
        super().__init__(f.dim)
        self.f, self.points = f, []

    def _evaluate_batch(self, X):
        self.points.extend(np.array(X, copy=True))
        return self.f.evaluate_batch(X)

    def _value_and_grad(self, x):
        self.points.append(np.array(x, copy=True))
        return self.f.value_and_grad(x)


def drive(opt, f, steps=None):
    """The documented ask/tell loop; returns the points told, in order."""
    told = []
    while not opt.stop() and (steps is None or len(told) < steps):
        X = opt.ask()
        if opt.needs_gradient:
            pairs = [f.value_and_grad(x) for x in X]
            opt.tell(X, [v for v, _ in pairs], np.array([g for _, g in pairs]))
        else:
            opt.tell(X, [f(x) for x in X])
        told.extend(X)
    return told


@pytest.mark.parametrize("method", sorted(SCIPY))
@pytest.mark.parametrize("bounded", [False, True])
def test_same_points_as_scipy_run_directly(method, bounded):
    f = problems.get("rosenbrock", 3)
    x0 = np.array([-1.0, 0.5, 2.0])
    bounds = scipy.optimize.Bounds([-1.5, 0.0, 0.9], [1.5, 0.8, 2.5]) if bounded else None
    name, scipy_options = SCIPY[method]
    theirs = Recorder(f)
    ref = scipy.optimize.minimize(
        lambda x: float(theirs(x)), x0, method=name, bounds=bounds, options=scipy_options
    )
    ours = Recorder(f)
    res = dfo.minimize(ours, x0, method=method, budget=len(theirs.points) + 10, bounds=bounds)
    assert ref.success and res.status == Status.CONVERGED
    np.testing.assert_array_equal(np.array(ours.points), np.array(theirs.points))
    assert res.nfev == ref.nfev == len(theirs.points)
    # the best point evaluated (scipy's Powell may return another one with bounds)
    assert res.fun == min(f(x) for x in theirs.points) <= ref.fun


def _scipy_lbfgsb(f, x0, bounds=None, fd=True):
    """scipy's L-BFGS-B run directly on dfo's forward differences (or the exact gradient)."""
    points = []

    def fun_and_grad(x):
        if not fd:
            points.append(x.copy())
            return f.value_and_grad(x)
        step = fd_steps(x)
        X = fd_probes(x, step)
        points.extend(X)
        values = f.evaluate_batch(X)
        return values[0], fd_gradient(values, step)

    options = {"ftol": 0.0, "maxfun": 2**31 - 1, "maxiter": 2**31 - 1}
    ref = scipy.optimize.minimize(
        fun_and_grad, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options
    )
    return ref, points


@pytest.mark.parametrize("method", ["fd-bfgs", "backprop-bfgs"])
def test_bfgs_takes_scipys_steps_on_dfos_gradients(method):
    f = problems.get("rosenbrock", 4)
    x0 = np.array([-1.0, 0.5, 2.0, 0.3])
    ref, theirs = _scipy_lbfgsb(f, x0, fd=method == "fd-bfgs")
    ours = []
    obj = dfo.as_objective(
        lambda x: ours.append(x.copy()) or f(x), dim=4, grad=lambda x: f.value_and_grad(x)[1]
    )
    fd = {"scheme": "forward", "maxcor": 10} if method == "fd-bfgs" else {}  # scipy's
    res = dfo.minimize(obj, x0, method=method, budget=len(theirs) + 50, restarts=False, **fd)
    assert ref.success and res.status == Status.CONVERGED
    np.testing.assert_array_equal(np.array(ours), np.array(theirs))
    assert res.nfev == len(theirs)
    assert res.fun == min(f(x) for x in theirs) <= ref.fun  # a probe may be lower


@pytest.mark.parametrize("method", RECAST)
@pytest.mark.parametrize("budget", [1, 2, 3, 4, 17])
def test_budget_is_exact_and_stop_names_it(method, budget):
    f = Recorder(problems.get("rosenbrock", 3))
    opt = dfo.make_optimizer(method, np.ones(3) * 2, budget=budget)
    drive(opt, f)
    assert len(f.points) == opt.nfev <= budget
    assert "budget" in opt.stop()
    f = Recorder(f.f)
    res = dfo.minimize(f, np.ones(3) * 2, method=method, budget=budget)
    assert len(f.points) == res.nfev <= budget and res.status == Status.BUDGET
    assert not loop_threads()


@pytest.mark.parametrize("method", RECAST)
def test_pickled_optimizer_replays_and_goes_on_identically(method):
    f = problems.get("rosenbrock", 4)
    x0 = np.full(4, 0.5)
    whole = drive(dfo.make_optimizer(method, x0, budget=120), f)
    opt = dfo.make_optimizer(method, x0, budget=120)
    first = drive(opt, f, steps=37)
    restored = pickle.loads(pickle.dumps(opt))
    opt.close()
    rest = drive(restored, f)
    np.testing.assert_array_equal(np.array(first + rest), np.array(whole))
    assert not loop_threads()


@pytest.mark.parametrize("method", RECAST)
def test_larger_budget_continues_after_stopping_at_the_budget(method):
    f = problems.get("rosenbrock", 3)
    whole = drive(dfo.make_optimizer(method, np.zeros(3), budget=80), f)
    opt = dfo.make_optimizer(method, np.zeros(3), budget=30)
    first = drive(opt, f)
    assert "budget" in opt.stop() and not loop_threads()
    opt.budget = 80
    rest = drive(opt, f)
    np.testing.assert_array_equal(np.array(first + rest), np.array(whole))


@pytest.mark.parametrize("method", RECAST)
def test_abandoned_optimizer_ends_its_thread(method):
    opt = dfo.make_optimizer(method, np.zeros(3), budget=100)
    drive(opt, problems.get("rosenbrock", 3), steps=5)
    opt.ask()
    assert len(loop_threads()) == 1
    thread = loop_threads()[0]
    del opt
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


def test_minimize_ends_the_thread_on_max_iter_and_callback_stop():
    f = problems.get("sphere", 3)
    res = dfo.minimize(f, np.ones(3), method="nelder-mead", budget=100, max_iter=7)
    assert res.status == Status.MAX_ITER and res.nfev == 7

    def callback(r):
        raise StopIteration

    res = dfo.minimize(f, np.ones(3), method="nelder-mead", budget=100, callback=callback)
    assert res.status == Status.CALLBACK
    assert not loop_threads()


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    f = problems.get("rosenbrock", 3)
    x0 = np.array([-1.0, 0.5, 2.0])
    whole = dfo.minimize(f, x0, method="nelder-mead", budget=300)
    path = tmp_path / "nm.ckpt"
    part = dfo.minimize(f, x0, method="nelder-mead", budget=300, max_iter=100, checkpoint=path)
    assert part.status == Status.MAX_ITER
    resumed = dfo.minimize(f, x0, method="nelder-mead", budget=300, checkpoint=path, resume=True)
    assert resumed.nfev == whole.nfev and resumed.fun == whole.fun
    np.testing.assert_array_equal(resumed.x, whole.x)
    np.testing.assert_array_equal(resumed.history["best"], whole.history["best"])


def test_replay_that_takes_another_path_is_refused():
    f = problems.get("sphere", 2)
    opt = dfo.make_optimizer("nelder-mead", np.ones(2), budget=50)
    drive(opt, f, steps=10)
    restored = pickle.loads(pickle.dumps(opt))
    opt.close()
    restored.x0 = restored.x0 + 1.0  # scipy's loop now starts elsewhere
    with pytest.raises(RuntimeError, match="replay"):
        restored.stop()


def test_a_checkpoint_of_the_earlier_digest_still_resumes():
    # pickles of earlier versions hold the digest of _chain_legacy: the replay uses it
    from dfo.optimizers import recast

    f = problems.get("rosenbrock", 3)
    whole = drive(dfo.make_optimizer("nelder-mead", np.zeros(3), budget=90), f)
    opt = dfo.make_optimizer("nelder-mead", np.zeros(3), budget=90)
    first = drive(opt, f, steps=40)
    assert len(opt._digest) == recast._DIGEST_SIZE
    legacy = b""
    for x in first:
        legacy = recast._chain_legacy(legacy, x[None, :])
    assert len(legacy) == recast._LEGACY_SIZE
    opt._digest = legacy
    restored = pickle.loads(pickle.dumps(opt))
    opt.close()
    rest = drive(restored, f)
    np.testing.assert_array_equal(np.array(first + rest), np.array(whole))
    assert len(restored._digest) == recast._LEGACY_SIZE  # extended by its own chain
    stray = pickle.loads(pickle.dumps(restored))
    stray._digest = recast._chain(b"", np.zeros((1, 3)))[: recast._LEGACY_SIZE]
    stray.budget = 120
    with pytest.raises(RuntimeError, match="replay"):
        drive(stray, f)


_BLAS_SCRIPT = """
import json, threading
import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_info
from dfo.optimizers.nelder_mead import NelderMead

def blas():
    return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

def set_blas(n):  # from a thread that ends: no thread keeps control of OpenBLAS
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    t = threading.Thread(target=lambda: [lib.set_num_threads(n) for lib in libs])
    t.start()
    t.join()

class Watched(NelderMead):
    def settings(self):
        return {**super().settings(), "seen": seen}

    @staticmethod
    def loop(request, x0, settings):
        for _ in range(3):
            settings["seen"].append(blas())
            request(x0[None, :])
        settings["seen"].append(blas())
        return {"converged": "done"}

out = {}
for caller in (2, 1):
    set_blas(caller)
    seen, objective = [], []
    opt = Watched(np.zeros(2), budget=10)
    while not opt.stop():
        X = opt.ask()
        objective.append(blas())
        opt.tell(X, [1.0] * len(X))
    out[caller] = {"caller": blas(), "loop": seen, "objective": objective, "after": blas()}
print(json.dumps(out))
"""


def test_scipys_loop_runs_blas_on_one_thread_and_the_objective_on_the_callers():
    # in a fresh process: no thread holds threadpoolctl's control of OpenBLAS
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", _BLAS_SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    out = json.loads(proc.stdout)
    for caller in ("2", "1"):
        seen = out[caller]
        assert seen["caller"] == [int(caller)]
        assert seen["loop"] == [[1]] * 4
        assert seen["objective"] == [[int(caller)]] * 3 and seen["after"] == [int(caller)]


def test_errors_of_scipys_loop_reach_the_caller():
    opt = dfo.make_optimizer("nelder-mead", np.ones(2), budget=50)
    opt.xatol = "not a number"  # scipy itself raises on it, at its first comparison
    with pytest.raises(TypeError):
        drive(opt, problems.get("sphere", 2))
    assert not loop_threads()


def test_two_cobyqa_optimizers_interleaved_each_take_their_own_path():
    """scipy runs one COBYQA at a time (a lock): the other one is halted and replayed."""
    f = problems.get("rosenbrock", 3)
    alone = [
        drive(dfo.make_optimizer("cobyqa", x0, budget=40), f) for x0 in (np.zeros(3), -np.ones(3))
    ]
    a = dfo.make_optimizer("cobyqa", np.zeros(3), budget=40)
    b = dfo.make_optimizer("cobyqa", -np.ones(3), budget=40)
    seen = {id(a): [], id(b): []}
    while not (a.stop() and b.stop()):
        for opt in (a, b):
            if not opt.stop():
                X = opt.ask()
                opt.tell(X, [f(x) for x in X])
                seen[id(opt)].extend(X)
    np.testing.assert_array_equal(np.array(seen[id(a)]), np.array(alone[0]))
    np.testing.assert_array_equal(np.array(seen[id(b)]), np.array(alone[1]))


# -- fd-bfgs ------------------------------------------------------------------------------
class Batches(dfo.Objective):
    """A stochastic objective: each realization adds its own offset; batches are recorded."""

    is_stochastic = True

    def __init__(self, dim, offset=0.0, log=None):
        super().__init__(dim)
        self.offset, self.log = offset, [] if log is None else log

    def realization(self, rng):
        return Batches(self.dim, float(rng.normal()), self.log)

    def _evaluate_batch(self, X):
        self.log.append((self.offset, X.shape[0]))
        return np.sum((X - 1.0) ** 2, axis=1) + self.offset


def test_fd_bfgs_asks_all_probes_of_a_gradient_as_one_batch_on_one_realization():
    obj = Batches(5)
    res = dfo.minimize(obj, np.zeros(5), method="fd-bfgs", budget=60, seed=0)
    batches = [entry for entry in obj.log if entry[1] > 1]  # not a final re-measurement
    assert len(batches) >= 2 and all(k == 6 for _, k in batches)  # n + 1 rows each
    assert len({offset for offset, _ in batches}) == len(batches)  # a realization each
    # common random numbers: the offset cancels in every difference, the gradient is exact
    assert res.nfev == 6 * len(batches) + len(obj.log) - len(batches)
    assert np.max(np.abs(res.x - 1.0)) < 1e-6


def test_fd_bfgs_runs_the_same_under_an_executor():
    from concurrent.futures import ThreadPoolExecutor

    f = problems.get("rosenbrock", 6)
    serial = dfo.minimize(f, np.zeros(6), method="fd-bfgs", budget=700)
    with ThreadPoolExecutor(2) as pool:
        parallel = dfo.minimize(f, np.zeros(6), method="fd-bfgs", budget=700, executor=pool)
    assert parallel.nfev == serial.nfev and parallel.fun == serial.fun
    np.testing.assert_array_equal(parallel.x, serial.x)


def _guarded_rosenbrock():
    """A narrow box, Rosenbrock, and the same function raising outside the box."""
    lower, upper = np.array([-1.0, 0.2, 0.5]), np.array([0.5, 2.0, 0.5 + 1e-9])
    f = problems.get("rosenbrock", 3)

    def g(x):
        if np.any(x < lower) or np.any(x > upper):
            raise AssertionError(f"{x} is outside the box")
        return f(x)

    return lower, upper, f, g


@pytest.mark.parametrize("method", RECAST)
def test_no_point_outside_the_bounds_is_evaluated(method):
    lower, upper, f, g = _guarded_rosenbrock()
    obj = dfo.as_objective(g, dim=3, grad=lambda x: f.value_and_grad(x)[1])
    x0 = upper.copy()  # at the upper bound: forward differences must step backwards
    res = dfo.minimize(obj, x0, method=method, budget=300, bounds=(lower, upper))
    assert res.nfev <= 300 and np.all((lower <= res.x) & (res.x <= upper))


def test_fd_bfgs_solves_an_ill_conditioned_ellipsoid_that_fd_sgd_does_not():
    f = problems.get("ellipsoid", 10)  # condition number 1e6
    x0 = np.linspace(-3.0, 3.0, 10)
    bfgs = dfo.minimize(f, x0, method="fd-bfgs", budget=10_000)
    sgd = dfo.minimize(f, x0, method="fd-sgd", budget=10_000)
    assert bfgs.fun < 1e-6 < 1.0 < sgd.fun


# -- fd-bfgs's difference schemes -------------------------------------------------------
def _quadratic(n=4, seed=0):
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n, n))
    A, b = Q @ Q.T + n * np.eye(n), rng.standard_normal(n)
    return (lambda x: 0.5 * x @ A @ x + b @ x), (lambda x: A @ x + b)


def test_central_differences_inside_the_box_match_the_analytic_gradient():
    from dfo.optimizers.bfgs import bounded_fd_gradient

    f, grad = _quadratic()
    lower, upper = np.array([-1.0, -1.0, 0.3, -2.0]), np.array([1.0, 0.5, 0.3 + 1e-7, 2.0])
    x = np.array([0.2, 0.5, 0.3, -2.0])  # inside, at an upper bound, a narrow box, a lower bound
    seen = []

    def request(X):
        assert np.all((lower <= X) & (X <= upper)), "a probe left the box"
        seen.append(X.shape[0])
        return np.array([f(row) for row in X]), None

    value, central = bounded_fd_gradient(request, x, None, lower, upper, scheme="central")
    _, forward = bounded_fd_gradient(request, x, None, lower, upper)
    assert seen == [9, 5] and value == f(x)
    scale = np.abs(grad(x)).max()
    # exact on a quadratic up to rounding (central and one-sided second order), where the
    # forward difference is off by h * A_ii / 2
    assert np.abs(central - grad(x)).max() < 1e-8 * scale
    assert np.abs(forward - grad(x)).max() > 1e-8 * scale
    # a smooth non-quadratic: within eps**(2/3) of the exact gradient
    rosen = problems.get("rosenbrock", 4)
    x = np.array([-1.0, 0.5, 2.0, 0.3])
    request = lambda X: (rosen.evaluate_batch(X), None)  # noqa: E731
    _, g = bounded_fd_gradient(
        request, x, None, -np.inf * np.ones(4), np.inf * np.ones(4), None, "central"
    )
    exact = rosen.value_and_grad(x)[1]
    assert np.linalg.norm(g - exact) < 1e-9 * np.linalg.norm(exact)


def _oscillating_ellipsoid(seed=2, d=10):
    """bbob's f10: a rotated ellipsoid (condition 1e6) through the T_osz oscillation."""
    rng = np.random.default_rng(seed)
    xo, R = rng.uniform(-4, 4, d), np.linalg.qr(rng.standard_normal((d, d)))[0]
    D = 10 ** (6 * np.arange(d) / (d - 1))

    def tosz(u):
        v = np.log(np.where(u != 0, np.abs(u), 1.0))
        c1, c2 = np.where(u > 0, 10.0, 5.5), np.where(u > 0, 7.9, 3.1)
        return np.sign(u) * np.exp(v + 0.049 * (np.sin(c1 * v) + np.sin(c2 * v)))

    return dfo.as_objective(lambda x: 100.0 + float(D @ tosz(R @ (x - xo)) ** 2), dim=d)


def test_fd_bfgs_auto_refines_its_differences_to_1e8_where_forward_and_central_stall():
    f = _oscillating_ellipsoid()
    runs = {
        scheme: dfo.minimize(
            f, np.zeros(10), method="fd-bfgs", budget=10_000, scheme=scheme, target=100 + 1e-8
        )
        for scheme in ("auto", "forward", "central")
    }
    assert runs["auto"].success and runs["auto"].fun - 100 <= 1e-8
    assert runs["forward"].fun - 100 > 1e-7 and runs["central"].fun - 100 > 1e-4


def test_fd_bfgs_auto_blames_a_stall_on_the_forward_differences_only_where_their_bias_does_it():
    from dfo.optimizers.bfgs import _Differences, bounded_fd_gradient

    D = np.array([1e8, 1.0, 1e4])  # curvature 2e8: forward bias h * 1e8 ~ 1.5 in x_0
    f = lambda x: float(D @ x**2)  # noqa: E731
    request = lambda X: (np.array([f(row) for row in X]), None)  # noqa: E731
    box = (np.full(3, -np.inf), np.full(3, np.inf))
    for x_k, blamed in ((np.zeros(3), True), (np.array([1e-3, 0.0, 0.0]), False)):
        diffs = _Differences("auto", None, None, request, box)
        value, g = bounded_fd_gradient(request, x_k, None, *box)
        diffs.seen(x_k, value, g)  # a run's first point: L-BFGS-B's iterate
        d = -1e-4 * g / np.linalg.norm(g)  # descent by the forward difference
        assert g @ d < 0
        diffs.seen(x_k + d, f(x_k + d), g)
        # at the minimum the true slope along d is 0 (the forward bias made d); at
        # x_0 = 1e-3 it is the gradient 2e5's, which a bias of 1.5 does not explain
        assert diffs.error_explains(x_k) is blamed


def test_fd_bfgs_auto_is_no_worse_than_forward_where_its_stalls_are_the_functions():
    # d=20, budget 500 * d: L-BFGS-B's line searches stall on the oscillation far from
    # the optimum, where forward differences are exact enough; central ones there
    # (2n+1 evaluations a gradient) ended 10 times above forward's value
    f = _oscillating_ellipsoid(seed=0, d=20)
    runs = {
        scheme: dfo.minimize(f, np.zeros(20), method="fd-bfgs", budget=10_000, scheme=scheme)
        for scheme in ("auto", "forward")
    }
    assert runs["auto"].nfev <= 10_000
    assert runs["auto"].fun - 100 <= 1.5 * (runs["forward"].fun - 100)


def test_fd_bfgs_resumes_identically_across_a_refinement():
    f = _oscillating_ellipsoid()
    straight, resumed = [], []
    a = dfo.make_optimizer("fd-bfgs", np.zeros(10), budget=4000)
    b = dfo.make_optimizer("fd-bfgs", np.zeros(10), budget=4000)
    for opt, log in ((a, straight), (b, resumed)):
        while not opt.stop():
            X = opt.ask()
            log.append(X.shape[0])
            opt.tell(X, [f(x) for x in X])
            if opt is b and opt.nfev >= 2500 and log[-1] == 21:  # central by now: pickle
                b.close()
                opt = b = pickle.loads(pickle.dumps(b))
                log.append("resumed")
    assert "resumed" in resumed and 11 in straight and 21 in straight
    assert [k for k in resumed if k != "resumed"] == straight
    assert a.best_f == b.best_f and a.nfev == b.nfev <= 4000


@pytest.mark.parametrize("scheme", ["forward", "central", "auto"])
def test_fd_bfgs_budget_is_exact_and_bounds_are_honoured_in_every_scheme(scheme):
    lower, upper, _, g = _guarded_rosenbrock()
    for budget in (1, 7, 8, 300):
        res = dfo.minimize(
            g, upper, method="fd-bfgs", budget=budget, bounds=(lower, upper), scheme=scheme
        )
        assert res.nfev <= budget and np.all((lower <= res.x) & (res.x <= upper))


class Scaled(Batches):
    """Each realization scales the sphere and shifts its centre (a noisy gradient too)."""

    def realization(self, rng):
        return Scaled(self.dim, float(rng.normal()), self.log)

    def _evaluate_batch(self, X):
        self.log.append((self.offset, X.shape[0]))
        return (1.0 + 0.3 * self.offset) ** 2 * np.sum((X - 1.0 - 0.1 * self.offset) ** 2, axis=1)


def test_fd_bfgs_auto_keeps_forward_differences_on_a_stochastic_objective():
    obj = Scaled(5)
    res = dfo.minimize(obj, np.zeros(5), method="fd-bfgs", budget=2000, seed=0)
    sizes = {k for _, k in obj.log}
    assert res.nfev > 500 and sizes <= {1, 6}, sizes  # never the 11 rows of a central one
    # (noise-free, auto does refine: test_fd_bfgs_resumes_identically_across_a_refinement)
