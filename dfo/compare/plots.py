"""PNG plots of a comparison, drawn from the runs' records.

- ``loss_vs_cost.png``: full-training-set loss against cost in forward-evaluation
  equivalents (log-log), one line per method: the median over seeds, with a band
  from the minimum to the maximum.
- ``loss_vs_time.png``: the same against wall time (monitoring excluded).
- ``final_metric.png``: each method's final held-out metric (test accuracy), one
  dot per seed and a bar at the median; the untrained start is a dashed line.
- ``runtime_distribution.png``: COCO's empirical runtime distribution: the fraction
  of (target, seed) pairs each method reached against cost (log scale), for the
  targets of :mod:`dfo.compare.targets`.

Between monitoring points a run's loss is held at its last measured value (the
curves are steps), and a run that stopped early keeps its final value.
Matplotlib is used through its object interface with the Agg canvas, so no
global backend is changed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dfo.compare.cost import run_cost

__all__ = ["band", "figure", "method_color", "write_plots"]

_COLORS = {
    "backprop-sgd": "#1f77b4",
    "fd-sgd": "#ff7f0e",
    "fd-bfgs": "#bcbd22",
    "spsa": "#2ca02c",
    "cma-es": "#d62728",
    "nelder-mead": "#9467bd",
    "random-search": "#7f7f7f",
    "forward-gradient": "#17becf",
}
_EXTRA = ["#8c564b", "#e377c2", "#bcbd22", "#17becf"]


def method_color(method: str, i: int) -> str:
    """The color of ``method`` in every compare plot (the ``i``-th unknown one cycles).

    Parameters
    ----------
    method : str
    i : int
        Position of the method, for methods without a color of their own.
    """
    return _COLORS.get(method, _EXTRA[i % len(_EXTRA)])


def band(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Median, minimum and maximum over curves of step functions on a common grid.

    Parameters
    ----------
    curves : sequence of (x, y)
        One per seed, ``x`` increasing. Each curve is a step function (``y[i]``
        holds from ``x[i]`` to ``x[i+1]``) that keeps its last value after its end
        and is undefined before its start.

    Returns
    -------
    grid, median, lo, hi : ndarray
        ``grid`` is the union of all ``x``; statistics are over the curves defined there.
    """
    if not curves:
        empty = np.empty(0)
        return empty, empty, empty, empty
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    values = np.full((len(curves), grid.size), np.nan)
    for i, (x, y) in enumerate(curves):
        idx = np.searchsorted(x, grid, side="right") - 1
        ok = idx >= 0
        values[i, ok] = np.asarray(y)[idx[ok]]
    defined = ~np.isnan(values)
    med, lo, hi = (np.full(grid.size, np.nan) for _ in range(3))
    for j in np.flatnonzero(defined.any(axis=0)):
        v = values[defined[:, j], j]
        med[j], lo[j], hi[j] = np.median(v), v.min(), v.max()
    return grid, med, lo, hi


def _curves(
    records: Sequence[dict[str, Any]],
    axis: str,
    ratio: float | None,
    key: str,
    jvp_ratio: float | None = None,
):
    out = []
    for r in records:
        c = r["monitor"]["curve"]
        if axis == "cost":
            njvp = c.get("njvp", [0] * len(c["nfev"]))
            x = np.asarray(
                run_cost(c["nfev"], c["ngev"], ratio, njvp, jvp_ratio), dtype=np.float64
            )
        else:
            x = np.asarray(c["time"], dtype=np.float64)
        y = np.array([np.nan if v is None else v for v in c[key]], dtype=np.float64)
        keep = x > 0
        x, y = x[keep], y[keep]
        if x.size:
            order = np.argsort(x, kind="stable")
            out.append((x[order], y[order]))
    return out


def figure(width: float = 8.0, height: float = 5.2) -> Any:
    """A matplotlib Figure on the Agg canvas (no pyplot state), constrained layout.

    Parameters
    ----------
    width, height : float
        Inches.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _loss_plot(table: Any, axis: str, path: Path) -> None:
    ratio = None if table.gradient_cost is None else table.gradient_cost.ratio
    jvp_ratio = None if table.gradient_cost is None else table.gradient_cost.jvp_ratio
    fig = figure()
    ax = fig.add_subplot()
    all_y = []
    drawn: list[tuple[str, np.ndarray, np.ndarray]] = []
    for i, row in enumerate(table.rows):
        curves = _curves(row.records, axis, ratio, "train_loss", jvp_ratio)
        grid, med, lo, hi = band(curves)
        if not grid.size:
            continue
        color = method_color(row.method, i)
        n = len(curves)
        # a curve identical to one already drawn would hide it: dashed, with markers
        twin = next(
            (m for m, g, v in drawn if np.array_equal(g, grid) and np.array_equal(v, med)), None
        )
        drawn.append((row.method, grid, med))
        ax.step(
            grid,
            med,
            where="post",
            zorder=3 + (twin is not None),
            color=color,
            lw=2,
            ls="--" if twin else "-",
            marker="o" if twin else None,
            markevery=max(1, grid.size // 12),
            ms=4,
            label=f"{row.method} ({n} seed{'s' * (n > 1)})"
            + (f", same curve as {twin}" if twin else ""),
        )
        if n > 1:
            ax.fill_between(grid, lo, hi, step="post", color=color, alpha=0.18, lw=0)
        all_y.append(np.concatenate([lo, hi]))
    start = table.start.train_loss[0]
    if np.isfinite(start):
        ax.axhline(
            start, color="black", ls=":", lw=1.2, zorder=1, label="start point (median over seeds)"
        )
        all_y.append(np.array([start]))
    ys = np.concatenate(all_y) if all_y else np.array([1.0])
    ys = ys[np.isfinite(ys)]
    ax.set_xscale("log")
    log_y = ys.size > 0 and np.all(ys > 0)
    if log_y:
        ax.set_yscale("log")
    if axis == "cost":
        unit = "1 evaluation = 1"
        if ratio is not None:
            unit += f", 1 gradient = {ratio:.2f}, measured"
        ax.set_xlabel(f"cost in forward-evaluation equivalents ({unit}); log scale")
        what = "cost"
    else:
        ax.set_xlabel("wall time per run (seconds, monitoring excluded); log scale")
        what = "wall time"
    scale = "; log scale" if log_y else ""
    ax.set_ylabel(f"{table.loss_label} on the full training set{scale}")
    n_seeds = len(table.seeds)
    ax.set_title(
        f"{table.task_name}: training loss against {what}\n"
        f"line = median over {n_seeds} seed{'s' * (n_seeds > 1)}, band = min to max; "
        "loss of each method's current estimate",
        fontsize=11,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    fig.savefig(path)


def _metric_plot(table: Any, path: Path) -> None:
    fig = figure(8.0, 5.0)
    ax = fig.add_subplot()
    has_metric = table.test_label is not None
    key = "test_metric" if has_metric else "train_loss"
    scale = 100.0 if (has_metric and table.test_percent) else 1.0
    names = [row.method for row in table.rows]
    for i, row in enumerate(table.rows):
        vals = np.array(
            [np.nan if r.get(key) is None else r[key] for r in row.records], dtype=np.float64
        )
        vals = vals * scale
        color = method_color(row.method, i)
        med = float(np.nanmedian(vals)) if np.isfinite(vals).any() else np.nan
        if np.isfinite(med):
            ax.bar(i, med, width=0.6, color=color, alpha=0.35, edgecolor=color)
            label = f"{med:.1f}" if scale == 100.0 else f"{med:.3g}"
            ax.annotate(
                label,
                (i, float(np.nanmax(vals))),
                textcoords="offset points",
                xytext=(0, 4),
                ha="center",
                fontsize=9,
            )
        jitter = np.linspace(-0.12, 0.12, vals.size) if vals.size > 1 else np.zeros(1)
        ax.plot(i + jitter, vals, "o", color=color, ms=6, mec="black", mew=0.6)
    start = table.start.test_metric[0] if has_metric else table.start.train_loss[0]
    if np.isfinite(start):
        ax.axhline(
            start * scale,
            color="black",
            ls="--",
            lw=1.2,
            zorder=1,
            label="start point (untrained)",
        )
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], ls="", marker="o", color="gray", mec="black", mew=0.6, label="one seed"),
        Patch(facecolor="gray", alpha=0.35, edgecolor="gray", label="median over seeds"),
    ]
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_xlabel("method")
    if has_metric:
        unit = " (%)" if scale == 100.0 else ""
        ax.set_ylabel(f"final {table.test_label}{unit}, held-out data")
        if scale == 100.0:
            ax.set_ylim(0, 105)
        title = f"final {table.test_label}"
    else:
        ax.set_ylabel(f"final {table.loss_label}")
        ends = [v for row in table.rows for v in (row.train_loss[1], row.train_loss[2])]
        if all(np.isfinite(v) and v > 0 for v in ends) and ends:
            ax.set_yscale("log")
            ax.set_ylabel(f"final {table.loss_label}, log scale")
        title = f"final {table.loss_label}"
    n_seeds = len(table.seeds)
    ax.set_title(
        f"{table.task_name}: {title} per method ({n_seeds} seed{'s' * (n_seeds > 1)})",
        fontsize=11,
    )
    ax.grid(True, axis="y", alpha=0.3)
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    fig.savefig(path)


def _runtime_plot(table: Any, path: Path) -> None:
    from dfo.compare.targets import runtime_distribution

    fig = figure()
    ax = fig.add_subplot()
    rtd = runtime_distribution(table.hits)
    drawn = [m for m, (costs, _, _) in rtd.items() if costs.size]
    top = 0.0
    for i, (method, (costs, fraction, pairs)) in enumerate(rtd.items()):
        if not costs.size:
            ax.plot([], [], color=method_color(method, i), lw=2, label=f"{method} (0 of {pairs})")
            continue
        xs = np.concatenate([[costs[0]], costs, [costs[-1] * 10]])
        ys = np.concatenate([[0.0], fraction, [fraction[-1]]])
        # earlier methods wider and beneath: where two curves coincide, both stay visible
        ax.step(
            xs,
            ys,
            where="post",
            lw=1.8 + 1.1 * (len(drawn) - 1 - drawn.index(method)),
            zorder=2 + i,
            color=method_color(method, i),
            label=f"{method} ({costs.size} of {pairs})",
        )
        top = max(top, float(costs[-1]))
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("cost in forward-evaluation equivalents (log scale)")
    ax.set_ylabel("fraction of (target, seed) pairs reached")
    labels = "\n".join(textwrap.wrap("; ".join(t.label for t in table.targets), 90))
    ax.set_title(
        f"{table.task_name}: runtime distribution over {len(table.targets)} targets x "
        f"{len(table.seeds)} seeds (COCO style)\n{labels}",
        fontsize=10,
    )
    ax.grid(True, which="major", alpha=0.3)
    # beside the axes: a legend inside would sit on the curves that rise early
    fig.legend(loc="outside lower center", ncols=4, fontsize=9, frameon=False)
    fig.savefig(path)


def write_plots(table: Any, folder: str | Path) -> list[Path]:
    """Write the four PNG plots of ``table`` into ``folder``; return their paths.

    Parameters
    ----------
    table : dfo.compare.table.Table
        A comparison table (its rows hold the runs' records).
    folder : path
        An existing folder.

    Returns
    -------
    list of Path
        ``loss_vs_cost.png``, ``loss_vs_time.png``, ``final_metric.png`` and
        ``runtime_distribution.png``.
    """
    return [write_plot(table, name, folder) for name in PLOTS]


def write_plot(table: Any, name: str, folder: str | Path) -> Path:
    """Write the plot ``name`` (one of :data:`PLOTS`) of ``table`` into ``folder``.

    Parameters
    ----------
    table : dfo.compare.table.Table
    name : str
        ``"loss_vs_cost.png"``, ``"loss_vs_time.png"``, ``"final_metric.png"`` or
        ``"runtime_distribution.png"``.
    folder : path
        An existing folder.

    Returns
    -------
    Path
    """
    path = Path(folder) / name
    if name == "final_metric.png":
        _metric_plot(table, path)
    elif name == "runtime_distribution.png":
        _runtime_plot(table, path)
    else:
        _loss_plot(table, PLOTS[name], path)
    return path


def warm_up() -> None:
    """Import what drawing needs (matplotlib), so that a later plot starts at once."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401
    from matplotlib.lines import Line2D  # noqa: F401
    from matplotlib.patches import Patch  # noqa: F401


#: the plots of a compare, by file name (the loss plots by their x axis)
PLOTS = {
    "loss_vs_cost.png": "cost",
    "loss_vs_time.png": "time",
    "final_metric.png": "metric",
    "runtime_distribution.png": "runtime",
}
