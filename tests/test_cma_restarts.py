"""CMA-ES restarts (IPOP, BIPOP): when they happen, what they cost, what they keep.

The pycma runs are counted independently of dfo's own bookkeeping, by recording every
construction of :class:`cma.CMAEvolutionStrategy`.
"""

from __future__ import annotations

import pickle

import cma
import numpy as np
import pytest

import dfo
from dfo import problems
from dfo.exceptions import InvalidOptionError
from dfo.optimizers.cma_es import CMAES
from dfo.result import Status

ORIGINAL = cma.CMAEvolutionStrategy


@pytest.fixture
def runs(monkeypatch):
    """Every pycma run started, as (x0, sigma0, options)."""
    started: list[tuple[np.ndarray, float, dict]] = []

    class Recording(ORIGINAL):
        def __init__(self, x0, sigma0, inopts=None, options=None):
            started.append((np.array(x0, dtype=float), float(sigma0), dict(inopts or {})))
            super().__init__(x0, sigma0, inopts)

    monkeypatch.setattr(cma, "CMAEvolutionStrategy", Recording)
    return started


class Counter:
    """A shifted sphere that counts its evaluations."""

    def __init__(self, dim: int) -> None:
        self.calls = 0
        self.best = np.inf
        self.shift = np.linspace(-1.0, 1.0, dim)

    def __call__(self, x: np.ndarray) -> float:
        self.calls += 1
        value = float(np.sum((x - self.shift) ** 2))
        self.best = min(self.best, value)
        return value


def test_restarts_happen_while_budget_remains(runs):
    f = Counter(3)
    res = dfo.minimize(f, np.zeros(3), method="cma-es", budget=4000, seed=0)
    # one run converges (pycma's tolfun) in about 600 evaluations: several restarts follow
    assert len(runs) >= 3
    assert res.restarts == len(runs) - 1
    assert f"{res.restarts} restarts (bipop)" in res.message
    assert res.status == Status.BUDGET and res.nfev > 3500
    assert res.fun == f.best < 1e-12


def test_restarts_zero_is_the_first_run_alone(runs):
    ref = dfo.minimize(Counter(3), np.zeros(3), method="cma-es", budget=4000, seed=0)
    runs.clear()
    res = dfo.minimize(Counter(3), np.zeros(3), method="cma-es", budget=4000, seed=0, restarts=0)
    assert len(runs) == 1 and res.restarts == 0
    assert res.status == Status.CONVERGED and res.nfev < 1000  # budget left over
    # the same evaluations as the first run of the default, up to its end
    n = len(res.history["nit"])
    np.testing.assert_array_equal(res.history["value"], ref.history["value"][:n])
    assert ref.history["nfev"][n] > ref.history["nfev"][n - 1]  # the default went on


def test_restarts_cap(runs):
    res = dfo.minimize(Counter(3), np.zeros(3), method="cma-es", budget=10_000, seed=0, restarts=2)
    assert len(runs) == 3 and res.restarts == 2
    assert res.status == Status.CONVERGED and res.nfev < 10_000


def test_without_a_budget_restarts_stop_by_themselves(runs):
    opt = dfo.make_optimizer("cma-es", np.zeros(2), seed=0, tolfun=1e-4)
    f = Counter(2)
    while not opt.stop():
        X = opt.ask()
        opt.tell(X, [f(x) for x in X])
    assert len(runs) == 10  # RESTARTS_WITHOUT_BUDGET restarts after the first run
    assert opt.result().restarts == 9


@pytest.mark.parametrize("regime", ["bipop", "ipop"])
@pytest.mark.parametrize("budget", [7, 50, 777, 3001])
def test_budget_is_never_exceeded(regime, budget):
    f = problems.get("rastrigin", 4)
    calls = []

    def counted(x):
        calls.append(1)
        return f(x)

    res = dfo.minimize(
        counted, np.full(4, 2.0), method="cma-es", budget=budget, seed=1, restart_regime=regime
    )
    assert len(calls) == res.nfev <= budget
    if budget > 50:
        assert res.nfev > budget - 2 * 4 * 16  # restarts use the budget (ipop's 4th: 128)


def test_ipop_doubles_the_population(runs):
    res = dfo.minimize(
        Counter(3), np.zeros(3), method="cma-es", budget=6000, seed=2, popsize=5,
        restart_regime="ipop",
    )  # fmt: skip
    sizes = [opts.get("popsize", 5) for _, _, opts in runs]
    assert len(sizes) >= 4 and sizes == [5 * 2**k for k in range(len(sizes))]
    assert all(sigma == 0.5 for _, sigma, _ in runs)  # sigma0 for every run
    assert f"population sizes {sizes}" in res.message


def test_bipop_interlaces_large_and_small_populations(runs):
    opt = dfo.make_optimizer("cma-es", np.zeros(3), seed=3, budget=8000, popsize=6, tolfun=1e-4)
    f = Counter(3)
    while not opt.stop() and opt.nfev < 7500:
        X = opt.ask()
        opt.tell(X, [f(x) for x in X])
    regimes = [r["regime"] for r in opt.runs]
    assert regimes[:2] == ["first", "large"] and "small" in regimes
    large = [
        opts["popsize"]
        for (_, _, opts), r in zip(runs[1:], opt.runs[1:], strict=False)
        if r["regime"] == "large"
    ]
    assert large == [6 * 2 ** (k + 1) for k in range(len(large))]  # doubling, as IPOP
    spent = {"small": 0, "large": 0}
    for (_, sigma, opts), run in zip(runs[1:], opt.runs[1:], strict=False):
        # the regime that had spent less went next (the first run counts as small)
        previous = opt.runs[: opt.runs.index(run)]
        small = sum(r["evals"] for r in previous if r["regime"] != "large")
        large_evals = sum(r["evals"] for r in previous if r["regime"] == "large")
        assert run["regime"] == ("small" if small < large_evals else "large")
        if run["regime"] == "small":
            assert 0.005 <= sigma <= 0.5 and 6 <= opts["popsize"] <= max(large)
            # about half the latest large run's evaluations
            assert run["evals"] <= 0.5 * previous_large(previous)["evals"] + opts["popsize"]
        spent["small" if run["regime"] == "small" else "large"] += run["evals"]
    assert spent["small"] > 0 and spent["large"] > 0


def previous_large(runs):
    return next(r for r in reversed(runs) if r["regime"] == "large")


def test_restarts_start_in_the_initial_region(runs):
    kw = {"method": "cma-es", "budget": 2000, "seed": 4, "tolfun": 1e-4}
    dfo.minimize(Counter(4), np.full(4, 1.0), sigma0=0.25, **kw)
    assert len(runs) >= 3
    np.testing.assert_array_equal(runs[0][0], 1.0)
    starts = np.array([x for x, _, _ in runs[1:]])
    assert np.all(np.abs(starts - 1.0) <= 0.5)  # x0 +- 2 sigma0
    assert len({tuple(x) for x in starts}) == len(starts)  # drawn anew each time
    runs.clear()
    dfo.minimize(Counter(4), np.full(4, 1.0), bounds=(0, 3), **kw)
    starts = np.array([x for x, _, _ in runs[1:]])
    assert runs[0][1] == pytest.approx(0.6)  # 0.2 x the width of the bounds
    assert np.all((starts >= 0.0) & (starts <= 2.2))  # within the bounds and x0 + 2 sigma0


def test_result_is_the_best_over_all_runs():
    f = problems.get("rastrigin", 3)
    values = []

    def seen(x):
        values.append(f(x))
        return values[-1]

    res = dfo.minimize(seen, np.full(3, 3.0), method="cma-es", budget=3000, seed=5)
    assert res.restarts >= 2
    assert res.fun == min(values) and f(res.x) == res.fun


def test_default_sigma0_follows_finite_bounds():
    def sigma(**kw):
        return dfo.make_optimizer("cma-es", np.zeros(3), seed=0, **kw).options()["sigma0"]

    assert sigma() == 0.5
    assert sigma(bounds=(-5, 5)) == 2.0
    assert sigma(bounds=([-5, -1, -5], [5, 1, 5])) == pytest.approx(0.4)  # narrowest
    assert sigma(bounds=(-5, None)) == 0.5
    assert sigma(bounds=(-5, 5), sigma0=1.5) == 1.5


def test_resume_across_a_restart_is_bit_identical(tmp_path):
    f = Counter(3)
    # the generator minimize gives the method for seed=6
    opt = dfo.make_optimizer("cma-es", np.zeros(3), seed=np.random.SeedSequence(6).spawn(2)[0])
    while opt.run_over is None:  # the evaluations of the first run
        X = opt.ask()
        opt.tell(X, [f(x) for x in X])
    first = opt.nfev
    ref = dfo.minimize(Counter(3), np.zeros(3), method="cma-es", budget=3000, seed=6)
    path = tmp_path / "run.ckpt"
    # the short run ends with the restart asked for but not evaluated (one evaluation
    # stays for the final mean)
    short = dfo.minimize(
        Counter(3), np.zeros(3), method="cma-es", budget=first + 2, seed=6, checkpoint=path
    )
    assert short.status == Status.BUDGET and short.restarts == 0
    res = dfo.minimize(
        Counter(3), np.zeros(3), method="cma-es", budget=3000, seed=6, checkpoint=path, resume=True
    )
    assert res.restarts == ref.restarts >= 2
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.fun == ref.fun and res.nfev == ref.nfev and res.message == ref.message
    for key in ("nit", "nfev", "value", "best"):
        np.testing.assert_array_equal(res.history[key], ref.history[key])


def test_pickled_optimizer_continues_identically_across_restarts():
    f = problems.get("rastrigin", 2)

    def run(pickle_at):
        opt = dfo.make_optimizer("cma-es", np.full(2, 2.0), seed=7, budget=5000, tolfun=1e-3)
        trace = []
        for i in range(150):
            if opt.stop():
                break
            if i == pickle_at:
                opt = pickle.loads(pickle.dumps(opt))
            X = opt.ask()
            opt.tell(X, [f(x) for x in X])
            trace.append((opt.nfev, opt.last_value, opt.best_f, len(opt.runs)))
        return opt, trace

    ref, ref_trace = run(None)
    assert ref_trace[-1][3] >= 2  # restarts happened
    for at in (ref.runs[0]["evals"] // ref.runs[0]["popsize"], 120):
        opt, trace = run(at)
        assert trace == ref_trace
        np.testing.assert_array_equal(opt.recommend(), ref.recommend())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"restarts": -1}, "restarts must be None"),
        ({"restarts": 1.5}, "restarts must be None"),
        ({"restarts": True}, "restarts must be None"),
        ({"restart_regime": "bipoop"}, "Did you mean 'bipop'"),
        ({"restart_regime": None}, r"restart_regime must be 'bipop' or 'ipop'"),
        ({"sigma0": -1.0}, "sigma0 must be None or a positive number"),
    ],
)
def test_bad_restart_options_are_refused_before_any_evaluation(options, match):
    calls = []
    with pytest.raises(InvalidOptionError, match=match):
        dfo.minimize(lambda x: calls.append(1) or 0.0, np.zeros(2), method="cma-es", **options)
    assert calls == []


def two_basins(x: np.ndarray) -> float:
    """A global basin at (2, 2) (value 0) beside a local one at (-2, -2) (value 1)."""
    return float(min(np.sum((x - 2.0) ** 2), 1.0 + np.sum((x + 2.0) ** 2)))


def test_a_run_in_a_basin_above_the_best_found_is_ended_early(monkeypatch):
    def runs_of(**kw):
        opt = dfo.make_optimizer(
            "cma-es", np.zeros(2), budget=6000, seed=8, sigma0=1.5, restart_regime="ipop"
        )
        while not opt.stop():
            X = opt.ask()
            opt.tell(X, [two_basins(x) for x in X])
        return opt.runs

    runs = runs_of()
    assert "dominated" not in runs[0]["stop"]  # nothing to compare the first run with
    ended = [k for k, r in enumerate(runs) if "dominated" in r["stop"]]
    assert ended and len(ended) < len(runs)
    for k in ended:  # ended in the local basin, above the best of the runs before it
        assert 0.5 < runs[k]["best"] < 2 and min(r["best"] for r in runs[:k]) < 1e-9
    # without the rule, the same run goes on until pycma stops it, twice as long
    monkeypatch.setattr(CMAES, "DOMINATED_RATIO", 0.0)
    alone = runs_of()
    k = ended[0]
    assert alone[:k] == runs[:k] and "dominated" not in alone[k]["stop"]
    assert alone[k]["best"] < runs[k]["best"] and runs[k]["evals"] < 0.5 * alone[k]["evals"]
