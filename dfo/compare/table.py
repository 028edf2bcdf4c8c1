"""The comparison table, computed from the finished runs' records only.

One row per method: final full-training-set loss and held-out metric (median
and min-max over seeds), evaluations, gradient evaluations, iterations, cost in
forward-evaluation equivalents, wall time and why the runs stopped; a first row
shows the untrained starting point. Below it, the cost to target
(:mod:`dfo.compare.targets`): what each method spent to first reach a few levels
of the training loss and the held-out metric, and a summary line. Notes under the
tables say how cost was measured, what monitoring cost (not charged), which
budgets differ and which methods made no progress.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dfo.compare.cost import GradientCost, run_cost
from dfo.compare.targets import (
    Target,
    TargetHit,
    cost_to_target,
    summary,
    target_table,
    task_targets,
)

__all__ = ["MethodRow", "Table", "build_table"]

#: a method whose median training loss fell by less than this fraction made "no progress"
NO_PROGRESS = 0.1


def _values(records: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    return np.array(
        [np.nan if r.get(key) is None else float(r[key]) for r in records], dtype=np.float64
    )


def _stats(values: np.ndarray) -> tuple[float, float, float]:
    if values.size == 0 or np.all(np.isnan(values)):
        return (np.nan, np.nan, np.nan)
    return (float(np.median(values)), float(np.min(values)), float(np.max(values)))


@dataclass
class MethodRow:
    """Summary of one method's runs (medians, minima and maxima over seeds).

    Build it with :meth:`from_records`. Each statistic is a ``(median, min, max)``
    triple computed from ``records``.

    Parameters
    ----------
    method : str
    records : list of dict
        The method's finished runs.
    seeds : list of int
    train_loss, test_metric, nfev, ngev, cost, time : (float, float, float)
        Median, minimum and maximum over the records (nan when absent).
    budget : int
    status : dict
        Why the runs stopped -> how many.
    monitor_points, monitor_evaluations : int
    monitor_seconds : float
        Monitoring totals over the records.
    nit, njvp : (float, float, float)
        Iterations and directional derivatives (forward mode), median, min and max.
    """

    method: str
    records: list[dict[str, Any]]
    seeds: list[int]
    train_loss: tuple[float, float, float]
    test_metric: tuple[float, float, float]
    nfev: tuple[float, float, float]
    ngev: tuple[float, float, float]
    cost: tuple[float, float, float]
    time: tuple[float, float, float]
    budget: int
    status: dict[str, int] = field(default_factory=dict)
    monitor_points: int = 0
    monitor_evaluations: int = 0
    monitor_seconds: float = 0.0
    nit: tuple[float, float, float] = (np.nan, np.nan, np.nan)
    njvp: tuple[float, float, float] = (np.nan, np.nan, np.nan)

    @classmethod
    def from_records(
        cls,
        method: str,
        records: Sequence[dict[str, Any]],
        ratio: float | None,
        jvp_ratio: float | None = None,
    ) -> MethodRow:
        records = list(records)
        nfev, ngev = _values(records, "nfev"), _values(records, "ngev")
        njvp = np.array([float(r.get("njvp", 0)) for r in records], dtype=np.float64)
        return cls(
            method=method,
            records=records,
            seeds=[int(r["seed"]) for r in records],
            train_loss=_stats(_values(records, "train_loss")),
            test_metric=_stats(_values(records, "test_metric")),
            nfev=_stats(nfev),
            ngev=_stats(ngev),
            cost=_stats(run_cost(nfev, ngev, ratio, njvp, jvp_ratio)),
            time=_stats(_values(records, "time")),
            budget=max((int(r["budget"]) for r in records), default=0),
            status=dict(Counter(str(r["status"]) for r in records)),
            monitor_points=sum(int(r["monitor"]["points"]) for r in records),
            monitor_evaluations=sum(int(r["monitor"]["evaluations"]) for r in records),
            monitor_seconds=sum(float(r["monitor"]["seconds"]) for r in records),
            nit=_stats(_values(records, "nit")),
            njvp=_stats(njvp),
        )


@dataclass
class Table:
    """A rendered comparison: rows, start row, text and CSV.

    Attributes
    ----------
    task_name, description, loss_label, test_label : str
    test_percent, higher_is_better : bool
    rows : list of MethodRow
        One per method with at least one finished run, in the compare's order.
    start : MethodRow
        The starting points (one per seed), before any evaluation.
    missing : list of (method, seed)
        Planned runs without a record (an interrupted compare).
    gradient_cost : GradientCost or None
    seeds : list of int
        The planned seeds.
    method_notes : dict
        Method -> why its budget differs (from the task).
    targets : list of Target
        The task's targets (:func:`dfo.compare.targets.task_targets`).
    hits : list of TargetHit
        Each method's cost to each target.
    blas_threads : str
        The BLAS threads the runs reported (their records' ``blas_threads``).
    text : str
        The table as printed.
    csv : str
        One row per method (and the start), raw numbers (metrics as fractions).
    """

    task_name: str
    description: str
    loss_label: str
    test_label: str | None
    test_percent: bool
    higher_is_better: bool
    rows: list[MethodRow]
    start: MethodRow
    missing: list[tuple[str, int]]
    gradient_cost: GradientCost | None
    seeds: list[int]
    method_notes: dict[str, str] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    hits: list[TargetHit] = field(default_factory=list)
    blas_threads: str = ""
    text: str = ""
    csv: str = ""

    def row(self, method: str) -> MethodRow:
        """The row of ``method`` (KeyError if it has no finished run)."""
        for row in self.rows:
            if row.method == method:
                return row
        raise KeyError(method)


# -- formatting ----------------------------------------------------------------------------


def _g(value: float) -> str:
    if not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.3g}"


def _pct(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{100 * value:.1f}"


def _int(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{round(value):,}"


def _spread(stats: tuple[float, float, float], fmt: Any, single: bool) -> str:
    med, lo, hi = stats
    if not np.isfinite(med) and np.isnan(med):
        return "—"
    if single or fmt(lo) == fmt(hi):
        return fmt(med)
    return f"{fmt(med)} [{fmt(lo)}–{fmt(hi)}]"


def _status(status: dict[str, int]) -> str:
    return ", ".join(
        f"{name.replace('_', ' ')}" + (f" x{n}" if n > 1 else "") for name, n in status.items()
    )


def _options_text(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "library defaults"


def _render(table: Table, specs: Sequence[Any], jobs: int) -> str:
    single = len(table.seeds) == 1
    metric_fmt = _pct if table.test_percent else _g
    test_head = None
    if table.test_label is not None:
        test_head = table.test_label + (" %" if table.test_percent else "")
    heads = ["method", table.loss_label]
    if test_head:
        heads.append(test_head)
    heads += [
        "evaluations",
        "gradients",
        "iterations",
        "cost (fwd-eval equiv.)",
        "wall time s",
        "stopped by",
    ]
    lines_data = []
    for row in [table.start, *table.rows]:
        is_start = row is table.start
        cells = [row.method, _spread(row.train_loss, _g, single)]
        if test_head:
            cells.append(_spread(row.test_metric, metric_fmt, single))
        if is_start:
            cells += ["0", "0", "0", "0", "—", "—"]
        else:
            grads = row.ngev if not row.njvp[0] > 0 else row.njvp
            cells += [
                _spread(row.nfev, _int, single),
                _spread(grads, _int, single) + (" JVP" if grads is row.njvp else ""),
                _spread(row.nit, _int, single),
                _spread(row.cost, _int, single),
                _spread(row.time, lambda v: f"{v:.2f}", single),
                _status(row.status),
            ]
        lines_data.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines_data)) for i, h in enumerate(heads)]

    def fmt_line(cells: Sequence[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:-1], widths[1:-1], strict=True)]
        out.append(cells[-1].ljust(widths[-1]))
        return "  ".join(out).rstrip()

    seeds = ", ".join(str(s) for s in table.seeds)
    budgets = sorted({s.budget for s in specs}, reverse=True)
    agg = "median [min–max] over seeds" if not single else "one seed"
    lines = [
        f"dfo compare — task {table.task_name}: {table.description}",
        f"{len(table.seeds)} seed{'s' if not single else ''} ({seeds}); budget "
        f"{budgets[0]:,} evaluations per run; {agg}"
        + (f"; BLAS threads per run: {table.blas_threads}" if table.blas_threads else ""),
        "",
        fmt_line(heads),
        fmt_line(["-" * w for w in widths]),
    ]
    lines += [fmt_line(c) for c in lines_data]
    lines.append("")
    if table.hits:
        lines.append(
            "Cost to target: the first monitoring point at which each method's current "
            "estimate met the target (an upper bound within one log-spaced monitoring step); "
            "medians over the seeds that reached it; x fastest = median cost / the fastest "
            "method's."
        )
        lines += target_table(table.hits)
        line = summary(table.hits)
        if line:
            lines += ["", line]
        lines.append("")
    lines += _notes(table, specs, jobs)
    return "\n".join(lines)


def _notes(table: Table, specs: Sequence[Any], jobs: int) -> list[str]:
    notes = []
    gc = table.gradient_cost
    unit = "one forward evaluation of the objective at one point" + (
        f" on one minibatch of {gc.batch_size}" if gc is not None and gc.batch_size else ""
    )
    if gc is not None and gc.source == "given":
        notes.append(
            f"Cost unit: {unit}; {gc.describe()}. "
            f"cost = (evaluations - gradients) + {gc.ratio:.2f} x gradients."
        )
    elif gc is not None:
        notes.append(
            f"Cost unit: {unit}. Measured: {gc.describe()}. "
            f"cost = (evaluations - gradients) + {gc.ratio:.2f} x gradients"
            + (
                f" (a JVP, forward mode, counts {gc.jvp_ratio:.2f})"
                if gc.jvp_ratio is not None
                else ""
            )
            + ". Wall times "
            "and this ratio are measured and vary between compares (a resumed compare "
            "reuses the stored ratio); every other number is determined by the seeds."
        )
    else:
        notes.append(f"Cost unit: {unit} (the objective has no gradient): cost = evaluations.")
    where = "in parallel processes, " + str(jobs) + " at a time" if jobs > 1 else "one at a time"
    notes.append(f"Wall time: seconds per run, monitoring excluded; runs {where}.")
    rows = table.rows
    points = sum(r.monitor_points for r in rows)
    evals = sum(r.monitor_evaluations for r in rows)
    seconds = sum(r.monitor_seconds for r in rows)
    what = "full-training-set loss" + (f" and {table.test_label}" if table.test_label else "")
    notes.append(
        f"Monitoring, not charged to the methods: {what} of each method's current "
        f"recommendation at log-spaced evaluation counts: {points:,} points, "
        f"{evals:,} evaluations, {seconds:.1f} s over all runs."
    )
    budgets: dict[str, int] = {}
    for spec in specs:
        budgets.setdefault(spec.method, spec.budget)
    top = max(budgets.values())
    for method, budget in budgets.items():
        if budget != top:
            reason = table.method_notes.get(method) or "set by the user"
            notes.append(f"Budget: {method} had {budget:,} evaluations per run: {reason}.")
    notes += _best_note(table)
    start_loss = table.start.train_loss[0]
    for row in rows:
        loss = row.train_loss[0]
        if np.isfinite(start_loss) and not loss <= start_loss - NO_PROGRESS * abs(start_loss):
            text = (
                f"No progress: {row.method}'s median {table.loss_label} went from "
                f"{_g(start_loss)} to {_g(loss)}"
            )
            if table.test_label is not None:
                fmt = _pct if table.test_percent else _g
                unit = "%" if table.test_percent else ""
                text += (
                    f", its {table.test_label} from {fmt(table.start.test_metric[0])}{unit} "
                    f"to {fmt(row.test_metric[0])}{unit}"
                )
            notes.append(text + ".")
    for row in rows:
        bad = [r for r in row.records if r["status"] not in ("budget", "max_time")]
        for r in bad[:1]:
            notes.append(f"{row.method} seed {r['seed']} stopped early: {r['message']}.")
    if table.missing:
        notes.append(
            f"Incomplete: {len(table.missing)} planned runs have no record yet "
            "(resume with --resume)."
        )
    opts: dict[str, Any] = {}
    for spec in specs:
        opts.setdefault(spec.method, spec.options)
    notes.append(
        "Options: " + "; ".join(f"{m}: {_options_text(o)}" for m, o in opts.items()) + "."
    )
    return notes


def _best_note(table: Table) -> list[str]:
    """Best derivative-free method (no gradient evaluations) against the gradient ones."""
    if table.test_label is None:
        key, label, fmt, higher = "train_loss", table.loss_label, _g, False
    else:
        key, label, higher = "test_metric", table.test_label, table.higher_is_better
        fmt = _pct if table.test_percent else _g
    unit = "%" if key == "test_metric" and table.test_percent else ""

    def median(row: MethodRow) -> float:
        return (row.test_metric if key == "test_metric" else row.train_loss)[0]

    def uses_derivatives(row: MethodRow) -> bool:
        return row.ngev[0] > 0 or row.njvp[0] > 0

    free = [r for r in table.rows if not uses_derivatives(r) and np.isfinite(median(r))]
    grad = [r for r in table.rows if uses_derivatives(r) and np.isfinite(median(r))]
    if not free or not grad:
        return []
    pick = max if higher else min
    best = pick(free, key=median)
    text = f"Best derivative-free method: {best.method}, median {label} {fmt(median(best))}{unit}"
    for row in grad:
        diff = median(best) - median(row)
        if unit == "%":
            text += f"; {row.method}: {fmt(median(row))}% ({100 * diff:+.1f} points)"
        else:
            text += f"; {row.method}: {fmt(median(row))}"
    return [text + "."]


def _csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    metric = (table.test_label or "test_metric").replace(" ", "_")
    loss = table.loss_label.replace(" ", "_").replace("-", "_")
    stats = ("median", "min", "max")
    head = ["method", "runs", "seeds", "budget"]
    head += [f"{loss}_{s}" for s in stats]
    head += [f"{metric}_{s}" for s in stats]
    for name in ("nfev", "ngev", "cost", "time_s"):
        head += [f"{name}_{s}" for s in stats]
    head += [
        "status",
        "monitor_points",
        "monitor_evaluations",
        "monitor_seconds",
        "gradient_cost_ratio",
    ]
    writer.writerow(head)
    ratio = "" if table.gradient_cost is None else repr(table.gradient_cost.ratio)
    for row in [table.start, *table.rows]:
        line = [row.method, len(row.records), " ".join(map(str, row.seeds)), row.budget]
        for triple in (row.train_loss, row.test_metric, row.nfev, row.ngev, row.cost, row.time):
            line += ["" if np.isnan(v) else repr(v) for v in triple]
        line += [
            " ".join(f"{k}:{v}" for k, v in row.status.items()),
            row.monitor_points,
            row.monitor_evaluations,
            repr(row.monitor_seconds),
            ratio,
        ]
        writer.writerow(line)
    return buf.getvalue()


def _start_row(records: Sequence[dict[str, Any]]) -> MethodRow:
    by_seed: dict[int, dict[str, Any]] = {}
    for r in records:
        by_seed.setdefault(int(r["seed"]), r)
    starts = [
        {
            "seed": seed,
            "train_loss": r["start_train_loss"],
            "test_metric": r["start_test_metric"],
            "nfev": 0,
            "ngev": 0,
            "time": 0.0,
            "budget": 0,
            "status": "start",
            "monitor": {"points": 0, "evaluations": 0, "seconds": 0.0},
        }
        for seed, r in sorted(by_seed.items())
    ]
    row = MethodRow.from_records("start (x0)", starts, None)
    row.status = {}
    return row


def _task_notes(task: Any, specs: Sequence[Any]) -> dict[str, str]:
    """The task's notes on methods whose budget is the task's cap (not the user's)."""
    top = max(s.budget for s in specs)
    budgets = {s.method: s.budget for s in specs}
    return {
        method: note
        for method, note in task.notes.items()
        if method in budgets and budgets[method] == task.method_budget(method, top)
    }


def build_table(
    task: Any,
    specs: Sequence[Any],
    records: Sequence[dict[str, Any]],
    gradient_cost: GradientCost | None,
    *,
    jobs: int = 1,
) -> Table:
    """Summarize ``records`` (one per finished run) into a :class:`Table`.

    Parameters
    ----------
    task : Task
        For labels and notes.
    specs : sequence of RunSpec
        The planned runs (their order is the table's order).
    records : sequence of dict
        Finished runs' records, as :func:`dfo.compare.runner.run_one` makes them.
    gradient_cost : GradientCost or None
    jobs : int
        Processes the runs used (for the note on wall time).
    """
    ratio = None if gradient_cost is None else gradient_cost.ratio
    jvp_ratio = None if gradient_cost is None else gradient_cost.jvp_ratio
    methods = list(dict.fromkeys(s.method for s in specs))
    seeds = list(dict.fromkeys(s.seed for s in specs))
    have = {(r["method"], r["seed"]) for r in records}
    rows = []
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        if mine:
            rows.append(MethodRow.from_records(method, mine, ratio, jvp_ratio))
    table = Table(
        task_name=task.name,
        description=task.description,
        loss_label=task.loss_label,
        test_label=task.test_label,
        test_percent=task.test_percent,
        higher_is_better=task.higher_is_better,
        rows=rows,
        start=_start_row(records),
        missing=[s.key for s in specs if s.key not in have],
        gradient_cost=gradient_cost,
        seeds=seeds,
        method_notes=_task_notes(task, specs),
        blas_threads=" / ".join(
            sorted({str(r["blas_threads"]) for r in records if "blas_threads" in r})
        ),
    )
    table.targets = task_targets(task, table.start.train_loss[0])
    table.hits = cost_to_target(rows, table.targets, gradient_cost)
    table.text = _render(table, specs, jobs)
    table.csv = _csv(table)
    return table
