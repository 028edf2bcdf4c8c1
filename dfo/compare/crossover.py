"""The gap as networks grow: cost to a fixed target against the number of parameters.

:func:`run_crossover` runs the same compare (:func:`dfo.compare.run_compare`) on the
digits task at several hidden widths, each in its own run folder
(``OUT/hidden-H/``, with its table, records and plots), and reads each method's
median cost to one fixed target (:mod:`dfo.compare.targets`) off every width's
table. Against ``n`` on log-log axes, each method's cost is fitted by a line
(:func:`fit_cost_slopes`); where a derivative-free method's line crosses
backprop's, it reaches the target as cheaply (:func:`crossover_points`).

Examples
--------
>>> from dfo.compare.crossover import fit_cost_slopes
>>> fit_cost_slopes({"m": {310: 100.0, 1210: 400.0, 4810: 1600.0}})["m"][0]  # ~ n^1
1.01...
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfo.compare.cost import GradientCost
from dfo.compare.runner import CompareConfig, run_compare
from dfo.compare.targets import Target, task_targets
from dfo.exceptions import InvalidOptionError

__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_WIDTHS",
    "CrossoverResult",
    "crossover_points",
    "fit_cost_slopes",
    "run_crossover",
]

DEFAULT_WIDTHS = (4, 16, 64, 256)
"""Hidden widths of the default sweep: 310, 1,210, 4,810 and 19,210 parameters."""

DEFAULT_METHODS = ("backprop-sgd", "forward-gradient", "spsa", "cma-es", "fd-sgd")
"""Methods of the default sweep (Nelder-Mead and random search do not reach the target)."""


@dataclass
class CrossoverResult:
    """What :func:`run_crossover` measured.

    Attributes
    ----------
    target : Target
    widths : list of int
    n_params : dict
        Width -> parameters.
    cost, reached : dict
        Method -> {n: median cost to the target over the seeds that reached it},
        and method -> {n: "k/seeds"}.
    slopes : dict
        Method -> (slope, intercept) of log(cost) on log(n) (methods that reached
        the target at two sizes or more).
    crossings : dict
        Derivative-free method -> the ``n`` where its fitted line meets backprop's
        (None if the lines are parallel or it has no line).
    text : str
        The table, slopes and the crossover statement, as printed.
    out : Path or None
    blas_threads : str
        The BLAS threads the runs reported (their records' ``blas_threads``).
    """

    target: Target
    widths: list[int]
    n_params: dict[int, int]
    cost: dict[str, dict[int, float]]
    reached: dict[str, dict[int, str]]
    slopes: dict[str, tuple[float, float]] = field(default_factory=dict)
    crossings: dict[str, float | None] = field(default_factory=dict)
    text: str = ""
    out: Path | None = None
    blas_threads: str = ""


def fit_cost_slopes(cost: dict[str, dict[int, float]]) -> dict[str, tuple[float, float]]:
    """Least-squares ``(slope, intercept)`` of ``log(cost)`` on ``log(n)`` per method.

    Parameters
    ----------
    cost : dict
        Method -> {n: cost}; non-finite costs (target not reached) are left out.

    Returns
    -------
    dict
        Method -> (slope, intercept), for methods with at least two finite costs.
    """
    out = {}
    for method, by_n in cost.items():
        pts = sorted((n, c) for n, c in by_n.items() if np.isfinite(c) and c > 0)
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            slope, intercept = np.polyfit(x, y, 1)
            out[method] = (float(slope), float(intercept))
    return out


def crossover_points(
    slopes: dict[str, tuple[float, float]], reference: str = "backprop-sgd"
) -> dict[str, float | None]:
    """Where each method's fitted line meets ``reference``'s: ``n = exp((b_r - b) / (s - s_r))``.

    Parameters
    ----------
    slopes : dict
        From :func:`fit_cost_slopes`.
    reference : str, default "backprop-sgd"

    Returns
    -------
    dict
        Method -> n at the crossing (None for parallel lines); empty without a
        reference line.
    """
    if reference not in slopes:
        return {}
    s_r, b_r = slopes[reference]
    out: dict[str, float | None] = {}
    for method, (s, b) in slopes.items():
        if method == reference:
            continue
        out[method] = None if abs(s - s_r) < 1e-12 else float(math.exp((b_r - b) / (s - s_r)))
    return out


def _pick_target(task: Any, target: float | None) -> Target:
    targets = [t for t in task_targets(task) if t.key == "train_loss"]
    if target is not None:
        return Target("train_loss", float(target), False, f"{task.loss_label} <= {target:g}")
    if not targets:
        raise InvalidOptionError(f"task {task.name!r} has no training-loss target; give one")
    return targets[len(targets) // 2]  # the middle level


def run_crossover(
    *,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    methods: Sequence[str] = DEFAULT_METHODS,
    seeds: Sequence[int] = (0, 1),
    budget: int = 20_000,
    target: float | None = None,
    task: str = "digits",
    out: str | Path | None = None,
    jobs: int = 1,
    progress: bool = False,
    plots: bool = True,
    gradient_cost: GradientCost | None = None,
) -> CrossoverResult:
    """Run the compare at each width and read the cost to one target off each table.

    Parameters
    ----------
    widths : sequence of int
        Hidden widths of the ``64-H-10`` digits network.
    methods : sequence of str
    seeds : sequence of int
    budget : int, default 20000
        Evaluations per run, every width.
    target : float, optional
        Training-loss level; default the task's middle loss target (digits: 0.5).
    task : {"digits", "digits-step"}
        A task with the ``hidden`` option.
    out : path, optional
        Folder of the sweep: one compare run folder per width, ``crossover.csv``,
        ``crossover.txt`` and ``crossover.png``.
    jobs : int, default 1
        Runs at a time, in separate processes.
    progress, plots : bool
        Progress bars; the per-width and crossover plots.
    gradient_cost : GradientCost, optional
        Instead of measuring the cost of a gradient at each width.

    Returns
    -------
    CrossoverResult

    Raises
    ------
    InvalidOptionError
        For bad widths, or a task without a ``hidden`` option (before any run).
    """
    widths = sorted({int(w) for w in widths})
    if not widths or widths[0] < 1 or len(widths) < 2:
        raise InvalidOptionError(f"widths must be at least two positive integers; got {widths}")
    folder = None if out is None else Path(out)
    configs = {
        w: CompareConfig(
            task=task,
            task_options={"hidden": w},
            methods=tuple(methods),
            seeds=tuple(seeds),
            budget=budget,
        )
        for w in widths
    }
    from dfo.compare.runner import plan_runs

    plans = {w: plan_runs(c)[0] for w, c in configs.items()}  # checks every setting first
    chosen = _pick_target(plans[widths[0]], target)
    cost: dict[str, dict[int, float]] = {m: {} for m in methods}
    reached: dict[str, dict[int, str]] = {m: {} for m in methods}
    n_params = {}
    free = {}
    threads: set[str] = set()
    for w in widths:
        sub = None if folder is None else folder / f"hidden-{w}"
        res = run_compare(
            configs[w], sub, jobs=jobs, progress=progress, plots=plots, gradient_cost=gradient_cost
        )
        n = res.task.dim
        n_params[w] = n
        threads |= {str(r["blas_threads"]) for r in res.records if "blas_threads" in r}
        from dfo.compare.targets import cost_to_target

        for h in cost_to_target(res.table.rows, [chosen], res.gradient_cost):
            cost[h.method][n] = h.cost
            reached[h.method][n] = f"{h.reached}/{h.seeds}"
            free[h.method] = h.derivative_free
    slopes = fit_cost_slopes(cost)
    crossings = crossover_points(slopes)
    result = CrossoverResult(
        chosen,
        widths,
        n_params,
        cost,
        reached,
        slopes,
        crossings,
        out=folder,
        blas_threads=" / ".join(sorted(threads)),
    )
    result.text = _render(result, free, budget, seeds)
    if folder is not None:
        (folder / "crossover.txt").write_text(result.text + "\n", encoding="utf-8")
        (folder / "crossover.csv").write_text(_csv(result), encoding="utf-8")
        if plots:
            _plot(result, folder / "crossover.png", budget)
    return result


def _statement(result: CrossoverResult, free: dict[str, bool]) -> str:
    ns = sorted(result.n_params.values())
    bp = result.cost.get("backprop-sgd", {})
    lines = []
    for method, by_n in result.cost.items():
        if not free.get(method, False):
            continue
        cheaper = [
            n for n in ns if np.isfinite(by_n.get(n, np.nan)) and by_n[n] <= bp.get(n, np.inf)
        ]
        if cheaper:
            lines.append(f"{method} reached it as cheaply as backprop at n = {cheaper}")
            continue
        cross = result.crossings.get(method)
        if method not in result.slopes:
            lines.append(
                f"{method} reached it at fewer than two sizes, never as cheaply as backprop"
            )
        elif cross is None:
            lines.append(f"{method}'s cost grows as fast as backprop's: no crossing")
        elif cross < 1:
            lines.append(
                f"{method}'s line stays above backprop's for every network size (the fitted "
                f"lines would meet below n = 1); the ratio grows like n^"
                f"{result.slopes[method][0] - result.slopes['backprop-sgd'][0]:.2f}"
            )
        elif cross < ns[0]:
            lines.append(
                f"{method}'s line meets backprop's only at n ≈ {cross:,.0f}, below the smallest "
                f"network ({ns[0]:,}); above it the gap grows like n^"
                f"{result.slopes[method][0] - result.slopes['backprop-sgd'][0]:.2f}"
            )
        elif cross > ns[-1]:
            lines.append(
                f"{method}'s line meets backprop's at n ≈ {cross:,.0f}, beyond the largest "
                f"network ({ns[-1]:,}), an extrapolation"
            )
        else:
            lines.append(f"{method}'s line meets backprop's at n ≈ {cross:,.0f}")
    if not lines:
        return "Crossover: no derivative-free method reached the target."
    return "Crossover: " + "; ".join(lines) + "."


def _render(
    result: CrossoverResult, free: dict[str, bool], budget: int, seeds: Sequence[int]
) -> str:
    ns = [result.n_params[w] for w in result.widths]
    methods = list(result.cost)
    head = ["hidden", "n", *methods]
    rows = []
    for w, n in zip(result.widths, ns, strict=True):
        cells = [str(w), f"{n:,}"]
        for m in methods:
            c = result.cost[m].get(n, np.nan)
            cells.append(
                f"{c:,.0f} ({result.reached[m].get(n, '?')})"
                if np.isfinite(c)
                else f"— ({result.reached[m].get(n, '?')})"
            )
        rows.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.rjust(wd) for c, wd in zip(cells, widths, strict=True))  # noqa: E731
    slope_line = "Fitted slopes of log(cost) on log(n): " + ", ".join(
        f"{m} {s:.2f}" for m, (s, _) in result.slopes.items()
    )
    lines = [
        f"Cost to target ({result.target.label}) against the number of parameters n: median "
        f"cost in forward-evaluation equivalents over the seeds that reached it (reached/"
        f"{len(seeds)}); budget {budget:,} evaluations per run; — = not reached"
        + (f"; BLAS threads per run: {result.blas_threads}" if result.blas_threads else ""),
        "",
        fmt(head),
        fmt(["-" * w for w in widths]),
        *(fmt(r) for r in rows),
        "",
        slope_line + ".",
        _statement(result, free),
        "Every width's full table is in its run folder (hidden-H/table.txt).",
    ]
    return "\n".join(lines)


def _csv(result: CrossoverResult) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["hidden", "n_params", "method", "median_cost", "reached", "slope"])
    for w in result.widths:
        n = result.n_params[w]
        for m, by_n in result.cost.items():
            c = by_n.get(n, np.nan)
            writer.writerow(
                [
                    w,
                    n,
                    m,
                    "" if not np.isfinite(c) else repr(c),
                    result.reached[m].get(n, ""),
                    repr(result.slopes[m][0]) if m in result.slopes else "",
                ]
            )
    return buf.getvalue()


def _plot(result: CrossoverResult, path: Path, budget: int) -> None:
    from dfo.compare.plots import figure, method_color

    fig = figure()
    ax = fig.add_subplot()
    ns = np.array(sorted(result.n_params.values()), dtype=float)
    for i, (method, by_n) in enumerate(result.cost.items()):
        color = method_color(method, i)
        pts = sorted((n, c) for n, c in by_n.items() if np.isfinite(c))
        missed = [n for n in ns if not np.isfinite(by_n.get(int(n), np.nan))]
        label = method
        if method in result.slopes:
            s, b = result.slopes[method]
            ax.plot(ns, np.exp(b) * ns**s, "--", color=color, lw=1)
            label += f" (slope {s:.2f})"
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, lw=2, label=label)
        if missed:  # above the budget line, one row per method so none hides another
            ax.plot(
                missed,
                [budget * 1.25 * 1.15**i] * len(missed),
                "^",
                color=color,
                ms=9,
                mfc="none",
                label=None if pts else f"{method} (not reached)",
            )
    ax.axhline(budget, color="0.5", ls=":", lw=1, label=f"budget ({budget:,} evaluations)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="parameters n (64-H-10 network)",
        ylabel="cost to target, forward-evaluation equivalents",
    )
    ax.set_title(
        f"Cost to reach {result.target.label} as the network widens\n"
        "open triangles: not reached within the budget",
        fontsize=11,
    )
    ax.grid(True, which="major", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    fig.savefig(path)
