"""``dfo compare``: several methods x seeds on one task, matched budgets, honest costs.

>>> from dfo.compare import CompareConfig, run_compare
>>> result = run_compare(CompareConfig(task="xor", methods=("spsa",), seeds=(0,), budget=200))
>>> row = result.table.row("spsa")
>>> row.nfev[0] <= 200
True

Modules: :mod:`~dfo.compare.tasks` (what is trained, tuned defaults),
:mod:`~dfo.compare.runner` (runs and the run folder), :mod:`~dfo.compare.cost`
(the measured cost of a gradient), :mod:`~dfo.compare.table`,
:mod:`~dfo.compare.plots` and :mod:`~dfo.compare.records` (the files).
"""

from __future__ import annotations

from dfo.compare.cost import GradientCost, measure_gradient_cost, run_cost
from dfo.compare.runner import (
    CompareConfig,
    CompareResult,
    ResumeMismatchError,
    RunSpec,
    plan_runs,
    run_compare,
    run_one,
)
from dfo.compare.table import MethodRow, Table, build_table
from dfo.compare.tasks import Task, get_task, task_names

__all__ = [
    "CompareConfig",
    "CompareResult",
    "GradientCost",
    "MethodRow",
    "ResumeMismatchError",
    "RunSpec",
    "Table",
    "Task",
    "build_table",
    "get_task",
    "measure_gradient_cost",
    "plan_runs",
    "run_compare",
    "run_cost",
    "run_one",
    "task_names",
]
