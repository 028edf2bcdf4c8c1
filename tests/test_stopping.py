"""target= and tol= for every registered method, and the one table that documents them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dfo
from dfo.exceptions import InvalidOptionError
from dfo.optimizers import get_method, method_options, stopping_table, tol_options
from dfo.result import Status

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _sphere():
    return dfo.as_objective(
        lambda x: float(np.sum((x - 0.5) ** 2)), dim=3, grad=lambda x: 2 * (x - 0.5)
    )


@pytest.mark.parametrize("method", dfo.methods())
def test_target_stops_every_method_with_success(method):
    res = dfo.minimize(_sphere(), np.ones(3), method=method, budget=3000, seed=0, target=1e-2)
    assert res.success and res.status == Status.CONVERGED, res.message
    assert "target" in res.message and res.fun <= 1e-2
    # it stopped at the first iteration that reached the target
    assert res.history["best"][-1] <= 1e-2 < res.history["best"][-2]
    assert res.nfev < 3000


@pytest.mark.parametrize("method", dfo.methods())
def test_tol_sets_the_methods_tolerances_and_stops_it(method):
    cls = get_method(method)
    assert cls.TOL and cls.TOL_MEANING  # every method maps tol
    assert set(cls.TOL) | set(cls.TOL_FIXED) <= set(method_options(method))
    loose = dfo.minimize(_sphere(), np.ones(3), method=method, budget=3000, seed=0, tol=1e-3)
    tight = dfo.minimize(_sphere(), np.ones(3), method=method, budget=3000, seed=0, tol=1e-10)
    for res, tol in ((loose, 1e-3), (tight, 1e-10)):
        assert res.status == Status.CONVERGED and res.success, res.message
        if method != "auto":
            assert all(res.options[name] == tol for name in cls.TOL)
    assert loose.nfev <= tight.nfev and loose.nfev < 3000
    assert tight.fun <= loose.fun
    # an explicit option wins over tol
    name = cls.TOL[0]
    assert tol_options(method, 1e-3, {name: 0.5})[name] == 0.5


def test_tol_is_checked_before_evaluating():
    calls = []
    f = lambda x: calls.append(1) or 0.0  # noqa: E731
    with pytest.raises(InvalidOptionError, match="tol"):
        dfo.minimize(f, np.zeros(2), method="spsa", tol=-1.0)
    assert not calls


def test_the_docs_show_one_stopping_table_for_every_method():
    table = stopping_table()
    for method in dfo.methods():
        assert f"| `{method}` |" in table
    # every row has its four cells: a bar inside a cell is escaped
    rows = table.splitlines()
    assert all(row.replace("\\|", "").count("|") == 5 for row in rows)
    page = (DOCS / "your-objective.md").read_text()
    assert page.count("{dfo-stopping-table}") == 1
