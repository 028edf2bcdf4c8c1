"""Cost to target in dfo compare: first hits, medians, ratios, the summary, the RTD plot.

The synthetic records below have hand-computed answers; the compare runs check that
the table shows them and that every hit is the first monitoring point on target.
"""

from __future__ import annotations

import numpy as np
import pytest

from dfo.compare import CompareConfig, GradientCost, run_compare
from dfo.compare.table import MethodRow
from dfo.compare.targets import (
    Target,
    cost_to_target,
    runtime_distribution,
    summary,
    task_targets,
)
from dfo.compare.tasks import get_task

COST = GradientCost(2.0, 1e-5, 2e-5, 1, 1, None, "given", 3.0)
LOSS_1 = Target("train_loss", 1.0, False, "loss <= 1")
ACC_90 = Target("test_metric", 0.9, True, "accuracy >= 90%")


def _record(method, seed, nfev, ngev, loss, metric, njvp=None):
    n = len(nfev)
    return {
        "method": method,
        "seed": seed,
        "nfev": nfev[-1],
        "ngev": ngev[-1],
        "njvp": 0 if njvp is None else njvp[-1],
        "nit": n,
        "budget": 500,
        "status": "budget",
        "monitor": {
            "points": n,
            "evaluations": 2 * n,
            "seconds": 0.0,
            "curve": {
                "nfev": nfev,
                "ngev": ngev,
                "nit": list(range(n)),
                "time": [0.1 * i for i in range(n)],
                "train_loss": loss,
                "test_metric": metric,
                "njvp": [0] * n if njvp is None else njvp,
            },
        },
    }


def _rows():
    bp = [
        _record("bp", 0, [1, 10, 100], [1, 10, 100], [2.0, 0.9, 0.5], [0.1, 0.5, 0.95]),
        _record("bp", 1, [1, 10, 100], [1, 10, 100], [2.0, 1.5, 0.8], [0.1, 0.5, 0.8]),
    ]
    free = [
        _record("dfo", 0, [1, 50, 500], [0, 0, 0], [2.0, 1.0, 0.7], [0.1, 0.91, 0.92]),
        _record("dfo", 1, [1, 50, 500], [0, 0, 0], [2.0, 1.2, 0.9], [0.1, 0.3, 0.9]),
    ]
    fg = [
        _record("fg", 0, [1, 40, 400], [0, 0, 0], [2.0, 0.95, 0.6], [None, 0.5, 0.6], [1, 40, 400])
    ]
    return [
        MethodRow.from_records(m, rs, 2.0, 3.0)
        for m, rs in (("bp", bp), ("dfo", free), ("fg", fg))
    ]


def test_first_hits_medians_and_ratios_by_hand():
    hits = {(h.method, h.target.label): h for h in cost_to_target(_rows(), [LOSS_1, ACC_90], COST)}
    bp = hits["bp", "loss <= 1"]
    # seed 0 at the second point (10 evaluations, all gradients: cost 20), seed 1 at the third
    assert (bp.reached, bp.seeds) == (2, 2)
    assert bp.costs == [20.0, 200.0] and bp.cost == 110.0 and bp.nfev == 55.0
    assert bp.nit == 1.5 and bp.time == pytest.approx(0.15)
    assert not bp.derivative_free
    free = hits["dfo", "loss <= 1"]
    assert free.costs == [50.0, 500.0] and free.derivative_free
    assert free.ratio == pytest.approx(275 / 110)
    fg = hits["fg", "loss <= 1"]  # 40 evaluations, all with a JVP at 3 units
    assert fg.costs == [120.0] and fg.ratio == pytest.approx(120 / 110) and not fg.derivative_free
    acc = hits["bp", "accuracy >= 90%"]  # only seed 0 reaches 90%
    assert (acc.reached, acc.cost, acc.ratio) == (1, 200.0, 1.0)
    assert hits["dfo", "accuracy >= 90%"].costs == [50.0, 500.0]
    assert hits["fg", "accuracy >= 90%"].reached == 0
    assert np.isnan(hits["fg", "accuracy >= 90%"].ratio)


def test_summary_states_the_factor_or_the_miss():
    hits = cost_to_target(_rows(), [LOSS_1, ACC_90], COST)
    text = summary(hits, "bp")
    # loss: dfo 275 / bp 110 = 2.5x, accuracy: 275 / 200 = 1.4x
    assert "bp reached the targets 1.4-2.5x cheaper" in text
    assert "2.5x cheaper (bp 110, dfo 275)" in text and "1.4x cheaper (bp 200, dfo 275)" in text
    never = cost_to_target(_rows(), [Target("train_loss", 0.6, False, "loss <= 0.6")], COST)
    assert "dfo" not in {h.method for h in never if h.reached}
    assert "no derivative-free method" in summary(never, "bp")
    missed = cost_to_target(_rows(), [Target("train_loss", 0.7, False, "loss <= 0.7")], COST)
    bp = next(h for h in missed if h.method == "bp")
    assert bp.reached == 1  # seed 0 only
    # fg (forward mode) never reaches 91% accuracy, dfo does (seed 0, at 50)
    miss_all = cost_to_target(_rows(), [Target("test_metric", 0.91, True, "acc >= 91%")], COST)
    assert "fg did not reach 1 of the 1 targets" in summary(miss_all, "fg")
    assert "fg never, dfo at 50" in summary(miss_all, "fg")


def test_runtime_distribution_counts_pairs():
    hits = cost_to_target(_rows(), [LOSS_1, ACC_90], COST)
    rtd = runtime_distribution(hits)
    costs, fraction, pairs = rtd["bp"]
    assert pairs == 4 and costs.tolist() == [20.0, 200.0, 200.0]
    assert fraction.tolist() == [0.25, 0.5, 0.75]
    assert rtd["fg"][2] == 2 and rtd["fg"][0].tolist() == [120.0]


def test_task_targets_are_shown_per_task():
    labels = [t.label for t in task_targets(get_task("digits"))]
    assert labels == [
        "training cross-entropy <= 1",
        "training cross-entropy <= 0.5",
        "training cross-entropy <= 0.25",
        "test accuracy >= 90%",
    ]
    sphere = task_targets(get_task("sphere", dim=3), start_loss=8.0)
    assert [t.value for t in sphere] == [4.0, 1.6, 0.4]


def test_compare_prints_cost_to_target_iterations_and_writes_the_rtd_plot(tmp_path):
    config = CompareConfig(
        task="xor", methods=("backprop-sgd", "forward-gradient", "spsa"), seeds=(0, 1), budget=400
    )
    result = run_compare(config, tmp_path, gradient_cost=COST, plots=True)
    text = result.table.text
    assert "iterations" in text and "Cost to target" in text and "x fastest" in text
    assert (tmp_path / "runtime_distribution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for h in result.table.hits:  # each hit is the first monitoring point on target
        for r in (r for r in result.records if r["method"] == h.method):
            curve = r["monitor"]["curve"]
            ok = h.target.reached(curve[h.target.key])
            if ok.any():
                i = int(np.argmax(ok))
                assert not ok[:i].any()
                assert curve["nfev"][i] in [c / 1 for c in curve["nfev"]]  # a monitored count
    fg = result.table.row("forward-gradient")
    assert fg.ngev[0] == 0
    assert all(r["njvp"] == r["nit"] > 0 for r in fg.records)  # one JVP per iteration
    # the forward gradient's cost counts its JVPs at 3 units
    costs = [r["nfev"] - r["njvp"] + 3.0 * r["njvp"] for r in fg.records]
    assert fg.cost[0] == pytest.approx(np.median(costs))
