"""method="auto": the decision table, the facts it measures, the choice it records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dfo
from dfo.optimizers.auto import RULES, Facts, choose, decision_table
from dfo.problems import Noisy, SkewedQuartic, Sphere

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: facts that make each rule of the table the first to apply
FACTS = [
    Facts(dim=5, gradient=True),
    Facts(dim=5, gradient=True, stochastic=True),
    Facts(dim=10, budget=10_000, plateau=True),
    Facts(dim=200, budget=100_000, stochastic=True),
    Facts(dim=10, budget=10_000, noisy=True),
    Facts(dim=5000, budget=10**6),
    Facts(dim=10, budget=10**5, cost=0.5),
    Facts(dim=10, budget=200),
    Facts(dim=10, budget=10**5, cost=1e-6),
]


def test_every_rule_is_reachable_in_order():
    assert len(FACTS) == len(RULES)
    for facts, rule in zip(FACTS, RULES, strict=True):
        first = next(r for r in RULES if r.applies(facts))
        assert first is rule
        method, chosen = choose(facts)
        assert chosen is rule and method in (*rule.methods, "cma-es")
        assert method in dfo.methods()


def test_the_docs_show_the_same_table():
    table = decision_table()
    assert table.count("\n") == len(RULES) + 1  # header, rule line, one row per rule
    for rule in RULES:
        assert rule.situation in table and rule.reason in table
    page = (DOCS / "when-to-use-dfo.md").read_text()
    assert "{dfo-decision-guide}" in page
    assert "| your situation |" not in page  # no hand-written copy beside it


def _floor(x):
    return float(np.floor(np.sum((x - 3.0) ** 2)))


def test_auto_solves_the_piecewise_constant_example():
    res = dfo.minimize(_floor, np.zeros(10), method="auto", budget=2000, seed=0)
    assert res.success and res.fun == 0.0 and res.nfev <= 2000
    assert res.auto["method"] in dfo.methods() and res.auto["reason"]
    assert f"auto chose {res.auto['method']}" in res.message
    # with a larger budget the measurement at x0 sees the plateau
    big = dfo.minimize(_floor, np.zeros(10), method="auto", budget=5000, seed=0)
    assert big.auto["facts"]["plateau"] and big.auto["rule"].startswith("piecewise constant")
    assert big.fun == 0.0 and big.auto["probe_nfev"] > 0


def test_auto_uses_the_gradient_when_there_is_one():
    res = dfo.minimize(Sphere(4), np.ones(4), method="auto", budget=300, seed=0)
    assert res.auto["facts"]["gradient"] and res.ngev > 0
    assert res.auto["method"] in RULES[0].methods and res.fun < 1e-10


def test_auto_measures_noise_it_was_not_told_about():
    base = SkewedQuartic(4)
    rng = np.random.default_rng(0)
    res = dfo.minimize(
        lambda x: base(x) + 0.1 * float(rng.standard_normal()),
        np.ones(4),
        method="auto",
        budget=3000,
        seed=0,
    )
    facts = res.auto["facts"]
    assert facts["noisy"] and 0.1 / 3 < facts["noise_level"] < 0.3
    assert res.auto["rule"].startswith("noisy objective")
    # declared noise is believed without measuring it
    declared = dfo.minimize(Noisy(base, 0.1), np.ones(4), method="auto", budget=3000, seed=0)
    assert declared.auto["facts"]["stochastic"] and declared.auto["facts"]["noisy"] is None


def test_auto_with_a_small_budget_spends_nothing_on_measuring():
    res = dfo.minimize(lambda x: float(x @ x), np.ones(5), method="auto", budget=100, seed=0)
    assert res.auto["probe_nfev"] == 0 and res.auto["facts"]["cost"] is None
    assert res.nfev <= 100


def test_auto_refuses_bad_facts_before_evaluating():
    with pytest.raises(dfo.InvalidOptionError, match="cost"):
        dfo.minimize(lambda x: 0.0, np.ones(2), method="auto", cost=-1.0)


def test_auto_reports_the_chosen_methods_own_fields():
    from dfo.problems import Rastrigin

    f = Rastrigin(2)
    res = dfo.minimize(lambda x: f(x), np.full(2, 3.0), method="auto", budget=5000, seed=0)
    assert res.auto["method"] == "cma-es"
    # multimodal: CMA-ES restarts while budget remains, and the result says how often
    assert res.restarts >= 1 and f"{res.restarts} restarts" in res.message


def test_closing_auto_ends_the_chosen_methods_thread():
    """close() releases what the chosen method holds: scipy's loop thread (COBYQA here)."""
    import threading

    def loop_threads():
        return [t for t in threading.enumerate() if t.name == "dfo-scipy-loop"]

    opt = dfo.make_optimizer("auto", np.ones(3), budget=30)
    X = opt.ask()
    opt.tell(X, [float(x @ x) for x in X])
    X = opt.ask()  # the chosen method's loop waits for these values
    assert opt.describe()["method"] == "cobyqa" and len(loop_threads()) == 1
    opt.close()
    assert not loop_threads()
    # and the optimizer goes on: the loop is rebuilt by replay
    opt.tell(X, [float(x @ x) for x in X])
    assert opt.nfev == 1 + X.shape[0]
    opt.close()


def test_a_given_cost_makes_the_choice_independent_of_the_clock(monkeypatch):
    import types

    import dfo.optimizers.auto as auto_module

    ticks = iter(range(10**6))  # every reading one second after the last
    clock = types.SimpleNamespace(perf_counter=lambda: float(next(ticks)))
    monkeypatch.setattr(auto_module, "time", clock)
    base = SkewedQuartic(4)

    def black_box(x):
        return base(x)

    slow = dfo.minimize(black_box, np.ones(4), method="auto", budget=3000, seed=0)
    assert slow.auto["rule"] == RULES[6].situation  # the clock says: expensive
    given = dfo.minimize(black_box, np.ones(4), method="auto", budget=3000, seed=0, cost=0.0)
    assert given.auto["facts"]["cost"] == 0.0 and given.auto["rule"] != slow.auto["rule"]
