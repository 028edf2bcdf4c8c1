"""Cost to target: how much each method spent to first reach a few quality levels.

A *target* is a level of the training loss (``<=``) or of the held-out metric
(``>=`` for an accuracy), chosen per task (:data:`TASK_TARGETS`; a task without an
entry gets training-loss levels at 1/2, 1/5 and 1/20 of the median starting loss).
For each run, the monitor's curve (the full training loss and the held-out metric of
the method's current estimate at log-spaced evaluation counts, not charged) gives the
first monitoring point at which the target holds; its evaluations, cost in
forward-evaluation equivalents, wall time and iterations are the run's cost to that
target. Because the curve is sampled at log-spaced counts, this is an upper bound,
at most one monitoring step (a factor ``budget ** (1 / n_monitor)``) above the exact
first hit.

Per method and target: the medians over the seeds that reached the target, how
many did, and the ratio of the median cost to the fastest method's.
:func:`runtime_distribution` gives COCO's view of the same data: the fraction of
(target, seed) pairs reached against cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfo.compare.cost import GradientCost, run_cost

__all__ = [
    "TASK_TARGETS",
    "Target",
    "TargetHit",
    "cost_to_target",
    "runtime_distribution",
    "summary",
    "target_table",
    "task_targets",
]

#: task -> (training-loss levels, held-out metric level or None)
TASK_TARGETS: dict[str, tuple[tuple[float, ...], float | None]] = {
    "digits": ((1.0, 0.5, 0.25), 0.90),
    "digits-step": ((1.0, 0.5, 0.25), 0.90),
    "digits-01": ((0.5, 0.3, 0.15), 0.80),
    "spirals": ((0.6, 0.4, 0.2), 0.90),
    "xor": ((0.5, 0.3, 0.15), 0.90),
    "sine": ((0.1, 0.03, 0.01), None),
}


@dataclass(frozen=True)
class Target:
    """One quality level.

    Attributes
    ----------
    key : {"train_loss", "test_metric"}
        Which curve of the records it is read from.
    value : float
    higher : bool
        Whether the target is reached at ``>= value`` (else ``<= value``).
    label : str
        How tables and plots name it ("training cross-entropy <= 0.5").
    """

    key: str
    value: float
    higher: bool
    label: str

    def reached(self, values: Any) -> np.ndarray:
        """Elementwise: whether each of ``values`` (None for not measured) meets the target.

        Parameters
        ----------
        values : sequence of float or None
        """
        v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return v >= self.value if self.higher else v <= self.value


def task_targets(task: Any, start_loss: float = np.nan) -> list[Target]:
    """The targets of ``task``: training-loss levels, then the held-out metric.

    Parameters
    ----------
    task : dfo.compare.tasks.Task
    start_loss : float, optional
        Median starting loss, for tasks without an entry in :data:`TASK_TARGETS`.

    Returns
    -------
    list of Target
    """
    losses, metric = TASK_TARGETS.get(task.name, ((), None))
    if not losses and np.isfinite(start_loss) and start_loss > 0:
        losses = tuple(float(f"{start_loss * f:.2g}") for f in (0.5, 0.2, 0.05))
    out = [Target("train_loss", v, False, f"{task.loss_label} <= {v:g}") for v in losses]
    if metric is not None and task.test_label is not None:
        shown = f"{100 * metric:g}%" if task.test_percent else f"{metric:g}"
        relation = ">=" if task.higher_is_better else "<="
        out.append(
            Target(
                "test_metric",
                metric,
                task.higher_is_better,
                f"{task.test_label} {relation} {shown}",
            )
        )
    return out


def _first_hit(
    record: dict[str, Any], target: Target, ratio: float | None, jvp_ratio: float | None
) -> tuple[float, float, float, float] | None:
    """(evaluations, cost, seconds, iterations) at the first monitoring point on target."""
    curve = record["monitor"]["curve"]
    hit = target.reached(curve[target.key])
    if not hit.any():
        return None
    i = int(np.argmax(hit))
    njvp = curve.get("njvp", [0] * len(hit))
    cost = float(run_cost(curve["nfev"][i], curve["ngev"][i], ratio, njvp[i], jvp_ratio))
    nit = curve.get("nit", [np.nan] * len(hit))[i]
    return float(curve["nfev"][i]), cost, float(curve["time"][i]), float(nit)


@dataclass
class TargetHit:
    """One method's cost to one target, over its seeds.

    Attributes
    ----------
    method : str
    target : Target
    seeds, reached : int
        Runs, and runs that reached the target.
    nfev, cost, time, nit : float
        Medians over the runs that reached it (nan if none did).
    costs : list of float
        Each reaching run's cost (for the runtime distribution).
    ratio : float
        ``cost`` over the smallest ``cost`` of any method for this target (nan if
        this method never reached it).
    derivative_free : bool
        Whether the method used no gradients and no directional derivatives.
    """

    method: str
    target: Target
    seeds: int
    reached: int
    nfev: float
    cost: float
    time: float
    nit: float
    costs: list[float]
    ratio: float = np.nan
    derivative_free: bool = True


def cost_to_target(
    rows: Sequence[Any], targets: Sequence[Target], gradient_cost: GradientCost | None
) -> list[TargetHit]:
    """Every method's cost to every target, with ratios to the fastest.

    Parameters
    ----------
    rows : sequence of dfo.compare.table.MethodRow
        Each holds one method's records.
    targets : sequence of Target
    gradient_cost : GradientCost or None
        Converts gradients and directional derivatives into forward evaluations.

    Returns
    -------
    list of TargetHit
        Target-major, methods in the order of ``rows``.
    """
    ratio = None if gradient_cost is None else gradient_cost.ratio
    jvp_ratio = None if gradient_cost is None else gradient_cost.jvp_ratio
    out = []
    for target in targets:
        hits = []
        for row in rows:
            found = [_first_hit(r, target, ratio, jvp_ratio) for r in row.records]
            ok = np.array([f for f in found if f is not None], dtype=np.float64).reshape(-1, 4)
            med = np.median(ok, axis=0) if ok.size else np.full(4, np.nan)
            free = all(
                int(r.get("ngev", 0)) == 0 and int(r.get("njvp", 0)) == 0 for r in row.records
            )
            nfev, cost, seconds, nit = (float(v) for v in med)
            hits.append(
                TargetHit(
                    row.method,
                    target,
                    len(row.records),
                    ok.shape[0],
                    nfev,
                    cost,
                    seconds,
                    nit,
                    costs=ok[:, 1].tolist(),
                    derivative_free=free,
                )
            )
        best = min((h.cost for h in hits if h.reached), default=np.nan)
        for h in hits:
            h.ratio = h.cost / best if h.reached and best > 0 else np.nan
        out += hits
    return out


def _num(value: float, fmt: str = ",.0f") -> str:
    return "—" if not np.isfinite(value) else format(value, fmt)


def target_table(hits: Sequence[TargetHit]) -> list[str]:
    """The cost-to-target table as text lines: one block per target, one line per method.

    Parameters
    ----------
    hits : sequence of TargetHit
        From :func:`cost_to_target`.
    """
    heads = [
        "target",
        "method",
        "reached",
        "evaluations",
        "cost (fwd-eval)",
        "wall s",
        "iterations",
        "x fastest",
    ]
    data = []
    last = None
    for h in hits:
        data.append(
            [
                h.target.label if h.target is not last else "",
                h.method,
                f"{h.reached}/{h.seeds}",
                _num(h.nfev),
                _num(h.cost),
                _num(h.time, ".2f"),
                _num(h.nit),
                _num(h.ratio, ".1f"),
            ]
        )
        last = h.target
    widths = [max(len(x), *(len(c[i]) for c in data)) for i, x in enumerate(heads)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(heads), line(["-" * w for w in widths]), *(line(c) for c in data)]


def _factor(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def summary(hits: Sequence[TargetHit], gradient_method: str = "backprop-sgd") -> str:
    """One sentence: how much cheaper ``gradient_method`` reached the targets than the
    best derivative-free method, or that it did not reach them.

    Parameters
    ----------
    hits : sequence of TargetHit
    gradient_method : str, default "backprop-sgd"

    Returns
    -------
    str
        Empty when the compare has no such method or no derivative-free one.
    """
    targets = list(dict.fromkeys(h.target for h in hits))
    mine = {h.target: h for h in hits if h.method == gradient_method}
    free = [h for h in hits if h.derivative_free and h.method != gradient_method]
    if not mine or not free:
        return ""
    parts, missed, factors = [], [], []
    free_reached = 0
    for t in targets:
        bp = mine.get(t)
        reached = [h for h in free if h.target is t and h.reached]
        best = min(reached, key=lambda h: h.cost) if reached else None
        free_reached += best is not None
        if bp is None or not bp.reached:
            missed.append(t)
            if best is not None:
                parts.append(
                    f"{t.label}: {gradient_method} never, {best.method} at {best.cost:,.0f}"
                )
            continue
        if best is None:
            parts.append(
                f"{t.label}: {gradient_method} at {bp.cost:,.0f}, no derivative-free method"
            )
            continue
        f = best.cost / bp.cost
        factors.append(f)
        how = f"{_factor(f)}x cheaper" if f >= 1 else f"{_factor(1 / f)}x more expensive"
        parts.append(
            f"{t.label}: {how} ({gradient_method} {bp.cost:,.0f}, {best.method} {best.cost:,.0f})"
        )
    unit = "cost in forward-evaluation equivalents"
    if missed:
        head = f"{gradient_method} did not reach {len(missed)} of the {len(targets)} targets" + (
            " (its gradient carries too little information here)" if free_reached else ""
        )
    elif factors and min(factors) >= 1:
        lo, hi = _factor(min(factors)), _factor(max(factors))
        span = f"{lo}x" if lo == hi else f"{lo}-{hi}x"
        head = (
            f"{gradient_method} reached the targets {span} cheaper ({unit}) than the best "
            "derivative-free method"
        )
    elif factors:
        head = f"{gradient_method} against the best derivative-free method ({unit})"
    else:
        head = f"no derivative-free method reached the targets {gradient_method} reached"
    return f"Cost to target: {head}. " + "; ".join(parts) + "."


def runtime_distribution(
    hits: Sequence[TargetHit],
) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """COCO's empirical runtime distribution per method.

    Parameters
    ----------
    hits : sequence of TargetHit

    Returns
    -------
    dict
        Method -> ``(costs, fraction, pairs)``: the sorted costs at which (target,
        seed) pairs were reached and the fraction of all ``pairs`` reached by then.
    """
    out = {}
    for method in dict.fromkeys(h.method for h in hits):
        mine = [h for h in hits if h.method == method]
        pairs = sum(h.seeds for h in mine)
        costs = np.sort(np.concatenate([np.asarray(h.costs, dtype=np.float64) for h in mine]))
        out[method] = (costs, np.arange(1, costs.size + 1) / max(pairs, 1), pairs)
    return out
