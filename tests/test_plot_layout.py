"""The figures as a reader sees them: no line hidden under another, no label on the data."""

from __future__ import annotations

import copy
import itertools

import matplotlib.figure
import numpy as np
import pytest

from dfo.compare import CompareConfig, GradientCost, run_compare
from dfo.compare import plots as compare_plots
from dfo.scaling.accuracy import StepErrorRecord
from dfo.scaling.plots import plot_step_error


@pytest.fixture
def saved(monkeypatch):
    """The figures the plotting functions save, kept for inspection."""
    figures = []
    original = matplotlib.figure.Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    return figures


def test_identical_curves_are_marked_and_the_start_line_lies_beneath(saved, tmp_path):
    config = CompareConfig(task="xor", methods=("spsa", "random-search"), seeds=(0,), budget=150)
    result = run_compare(config, None, gradient_cost=GradientCost.given(2.0), plots=False)
    table = copy.deepcopy(result.table)
    table.rows[1].records = table.rows[0].records  # random-search's curve = spsa's
    compare_plots._loss_plot(table, "cost", tmp_path / "loss.png")
    (fig,) = saved
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    first = next(k for k in lines if k.startswith("spsa"))
    twin = next(k for k in lines if k.startswith("random-search"))
    assert twin.endswith("same curve as spsa")
    np.testing.assert_array_equal(lines[twin].get_ydata(), lines[first].get_ydata())
    assert lines[twin].get_linestyle() == "--" and lines[twin].get_marker() == "o"
    assert lines[twin].get_zorder() > lines[first].get_zorder()
    start = next(v for k, v in lines.items() if k.startswith("start point"))
    assert all(
        start.get_zorder() < line.get_zorder() for line in lines.values() if line is not start
    )


def _step_records():
    records = []
    for dtype, eps in (("float64", 2.2e-16), ("float32", 1.2e-7)):
        for scheme, order in (("forward", 1), ("central", 2)):
            for h in np.logspace(-13, 0, 27):
                error = eps / h + h**order  # the V: rounding plus truncation
                records.append(
                    StepErrorRecord(dtype, scheme, float(h), float(min(error, 1.0)), 85)
                )
    return records


def test_step_error_labels_stand_clear_of_the_data(saved, tmp_path):
    plot_step_error(_step_records(), tmp_path / "fd.png")
    (fig,) = saved
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    data_box = ax.get_window_extent(renderer)
    labels = [
        t for other in ax.child_axes for t in other.get_xticklabels() if t.get_text().strip()
    ]
    assert [t.get_text() for t in labels] == [
        "√eps\nfloat64", "eps^(1/3)\nfloat64", "√eps\nfloat32", "eps^(1/3)\nfloat32",
    ]  # fmt: skip
    boxes = [t.get_window_extent(renderer) for t in labels]
    title = ax.title.get_window_extent(renderer)
    for box in boxes:
        assert box.y0 >= data_box.y1  # above the plotting area, not on the curves
        assert box.y1 <= title.y0  # below the title
    for a, b in itertools.pairwise(boxes):
        assert a.x1 <= b.x0  # side by side, not on each other
    # nothing written inside the plotting area but the legend
    inside = [t for t in ax.texts if t.get_window_extent(renderer).overlaps(data_box)]
    assert inside == []
