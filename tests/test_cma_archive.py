"""pycma's archive of asked points, dropped where it can only give back the points told.

Without bounds, pycma's genotype of a point is the point itself; its archive (a dict
keyed by a hash of each point's bytes) then only costs time. Dropping it must leave
every run as it was, bit for bit, and must not happen where the archive matters.
"""

from __future__ import annotations

import cma
import numpy as np
import pytest

import dfo
from dfo import problems
from dfo.optimizers import cma_es

CASES = {
    "separable, TPA step size": (300, {}, 400),  # n >= 300: pycma's TPA
    "full covariance, restarts": (8, {"tolfun": 10.0}, 1500),
}


def _run(dim, options, budget):
    f = problems.get("rosenbrock", dim)
    return dfo.minimize(
        f, np.full(dim, 0.5), "cma-es", budget=budget, seed=3, history_x=True, **options
    )


@pytest.mark.parametrize("case", CASES)
def test_the_run_without_the_archive_is_the_run_with_it(case, monkeypatch):
    dim, options, budget = CASES[case]
    fast = _run(dim, options, budget)
    monkeypatch.setattr(cma_es, "_without_archive", lambda es: False)
    kept = _run(dim, options, budget)
    if "restarts" in case:
        assert fast.restarts >= 2
    np.testing.assert_array_equal(fast.history["x"], kept.history["x"])
    np.testing.assert_array_equal(fast.history["value"], kept.history["value"])
    np.testing.assert_array_equal(fast.x, kept.x)
    assert (fast.nfev, fast.nit, fast.restarts) == (kept.nfev, kept.nit, kept.restarts)


def _hashes_per_generation(monkeypatch, bounds=None):
    calls = []
    key = cma.utilities.utils.SolutionDict.key
    monkeypatch.setattr(
        cma.utilities.utils.SolutionDict, "key", lambda self, x: calls.append(1) or key(self, x)
    )
    f = problems.get("sphere", 20)
    opt = dfo.make_optimizer("cma-es", np.ones(20), seed=0, popsize=10, bounds=bounds)
    archived = []
    for _ in range(5):
        X = opt.ask()
        archived.append(len(opt.es.sent_solutions))
        opt.tell(X, f.evaluate_batch(X))
    return len(calls) / 5, max(archived), opt


def test_the_archive_is_dropped_only_without_bounds(monkeypatch):
    without, archived, opt = _hashes_per_generation(monkeypatch)
    assert opt.unarchived and archived == 0
    with_bounds, archived, opt = _hashes_per_generation(monkeypatch, bounds=[(-3.0, 3.0)] * 20)
    assert not opt.unarchived and archived == 10  # the generation asked
    # pycma hashes each point about five times a generation with its archive; without
    # it, only its injected points (its record of them, see the test below)
    assert without <= 1.2 * 10 < 4 * 10 <= with_bounds


def test_the_separable_variant_keeps_numpy_global_random_state():
    before = np.random.get_state()  # noqa: NPY002 - the legacy global state is the point
    res = _run(*CASES["separable, TPA step size"])
    after = np.random.get_state()  # noqa: NPY002
    assert res.nit > 10  # pycma's TPA check draws from the global state after 3 generations
    assert np.array_equal(before[1], after[1]) and before[2:] == after[2:]


def test_the_run_without_the_step_size_check_is_the_run_with_it(monkeypatch):
    # pycma's TPA check only warns (silenced) and draws from numpy's global state
    dim, options, budget = CASES["separable, TPA step size"]
    calls = []
    check = cma.sigma_adaptation.CMAAdaptSigmaTPA.check_consistency
    monkeypatch.setattr(
        cma.sigma_adaptation.CMAAdaptSigmaTPA,
        "check_consistency",
        lambda self, es: calls.append(1) or check(self, es),
    )
    fast = _run(dim, options, budget)
    assert not calls  # switched off
    monkeypatch.setattr(cma_es, "_without_check", lambda es: None)
    kept = _run(dim, options, budget)
    assert len(calls) == kept.nit  # on: once a generation
    np.testing.assert_array_equal(fast.history["x"], kept.history["x"])
    np.testing.assert_array_equal(fast.history["value"], kept.history["value"])
    np.testing.assert_array_equal(fast.x, kept.x)
    assert (fast.nfev, fast.nit) == (kept.nfev, kept.nit)


@pytest.mark.parametrize(
    ("dim", "options"),
    [
        (8, {"tolfun": 10.0}),  # full covariance, restarts
        (8, {"bounds": [(-2.0, 2.0)] * 8, "separable": True}),
        (300, {"cma_options": {"CMA_active": False}}),  # TPA, its check left on: restored
    ],
)
def test_numpy_global_random_state_is_kept(dim, options):
    before = np.random.get_state()  # noqa: NPY002 - the legacy global state is the point
    res = dfo.minimize(
        problems.get("rosenbrock", dim), np.full(dim, 0.5), "cma-es", budget=600, seed=1, **options
    )
    after = np.random.get_state()  # noqa: NPY002
    assert res.nit > 10
    assert np.array_equal(before[1], after[1]) and before[2:] == after[2:]


def test_the_run_with_the_record_of_injected_points_is_pycmas(monkeypatch):
    dim, options, budget = CASES["separable, TPA step size"]
    calls = []
    key = cma.utilities.utils.SolutionDict.key
    monkeypatch.setattr(
        cma.utilities.utils.SolutionDict, "key", lambda self, x: calls.append(1) or key(self, x)
    )
    fast = _run(dim, options, budget)
    fast_hashes = len(calls) / fast.nit
    monkeypatch.setattr(cma_es, "_injected_points", lambda es: False)
    calls.clear()
    kept = _run(dim, options, budget)
    kept_hashes = len(calls) / kept.nit
    np.testing.assert_array_equal(fast.history["x"], kept.history["x"])
    np.testing.assert_array_equal(fast.history["value"], kept.history["value"])
    np.testing.assert_array_equal(fast.x, kept.x)
    assert (fast.nfev, fast.nit) == (kept.nfev, kept.nit)
    # pycma hashes every point of a generation to find its two injected ones; the
    # record hashes only those (each when recorded, found and removed)
    popsize = kept.nfev // kept.nit
    assert fast_hashes <= 8 < popsize <= kept_hashes


def test_the_record_of_injected_points_answers_as_pycmas_solution_dict():
    rng = np.random.default_rng(0)
    ours, theirs = (
        cma_es._InjectedPoints(cma.utilities.utils.SolutionDict()),
        (cma.utilities.utils.SolutionDict()),
    )
    points = [rng.standard_normal(5) for _ in range(6)]
    points.append(points[0].copy())  # the same bytes: pycma stacks it
    twin = points[1].copy()
    twin[3] += 1.0  # the first coordinate of a recorded point, other bytes
    points += [twin, np.array([-0.0, 1, 2, 3, 4]), np.array([0.0, 1, 2, 3, 4])]
    for step in range(200):
        x = points[rng.integers(len(points))]
        if rng.uniform() < 0.4:
            ours[x] = theirs[x] = {"step": step}
        elif rng.uniform() < 0.2 and len(theirs):
            k = next(iter(theirs))  # pycma removes old entries by their hashed key
            assert ours.pop(k) == theirs.pop(k)
        else:
            assert (x in ours) == (x in theirs)
            assert ours.pop(x, None) == theirs.pop(x, None)
        assert len(ours) == len(theirs) and list(ours.items()) == list(theirs.items())
