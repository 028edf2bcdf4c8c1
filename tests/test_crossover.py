"""dfo crossover: slopes and crossings by hand, a tiny sweep's folder and text."""

from __future__ import annotations

import math

import pytest

from dfo.cli.main import build_parser
from dfo.compare import GradientCost
from dfo.compare.crossover import crossover_points, fit_cost_slopes, run_crossover
from dfo.exceptions import InvalidOptionError

COST = GradientCost.given(2.0)


def test_slopes_and_crossings_by_hand():
    # backprop ~ 10 n^0.5, spsa ~ 0.1 n^1.5: equal where n = 100
    cost = {
        "backprop-sgd": {n: 10 * n**0.5 for n in (100, 400, 1600)},
        "spsa": {n: 0.1 * n**1.5 for n in (100, 400, 1600)},
        "cma-es": {100: math.nan, 400: 50.0},  # one point: no line
    }
    slopes = fit_cost_slopes(cost)
    assert slopes["backprop-sgd"][0] == pytest.approx(0.5)
    assert slopes["spsa"][0] == pytest.approx(1.5)
    assert "cma-es" not in slopes
    cross = crossover_points(slopes)
    assert cross["spsa"] == pytest.approx(100.0)
    parallel = crossover_points({"backprop-sgd": (1.0, 0.0), "x": (1.0, 2.0)})
    assert parallel == {"x": None}
    assert crossover_points({"x": (1.0, 0.0)}) == {}


def test_tiny_sweep_keeps_every_width_and_states_the_crossover(tmp_path):
    result = run_crossover(
        widths=(2, 4),
        methods=("backprop-sgd", "spsa"),
        seeds=(0,),
        budget=300,
        target=2.0,
        out=tmp_path,
        gradient_cost=COST,
    )
    assert sorted(result.n_params.values()) == [160, 310]
    for w in (2, 4):
        assert (tmp_path / f"hidden-{w}" / "table.txt").is_file()
    for name in ("crossover.txt", "crossover.csv", "crossover.png"):
        assert (tmp_path / name).is_file()
    text = result.text
    assert "Fitted slopes" in text and "Crossover:" in text
    assert "training cross-entropy <= 2" in text
    assert text.splitlines()[0].endswith("; BLAS threads per run: 1 (openblas)")
    # the table's numbers are each width's cost to that target, from its own table
    for c in result.cost["backprop-sgd"].values():
        assert math.isfinite(c) and f"{c:,.0f}" in text


def test_bad_widths_are_refused_before_any_run(tmp_path):
    with pytest.raises(InvalidOptionError, match="widths"):
        run_crossover(widths=(4,), out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_command_line_parses_the_options():
    parser = build_parser(load_scaling=False)
    args = parser.parse_args(["crossover", "--widths", "4", "8", "--seeds", "1", "-q"])
    assert args.widths == [4, 8] and args.seeds == 1 and args.budget == 20_000 and args.quiet
