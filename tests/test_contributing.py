"""The method CONTRIBUTING.md walks through, taken from the file itself, registered and
run through minimize, a checkpoint and the contract tests every method joins."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import test_contract as contract

import dfo
from dfo import problems
from dfo.optimizers import _REGISTRY, method_options
from dfo.result import Status

NAME = "compass-search"
GUIDE = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"


@pytest.fixture(scope="module")
def toy():
    """Register the guide's method (its code block, as written) for this module's tests."""
    text = GUIDE.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (code,) = [b for b in blocks if f'@register("{NAME}")' in b]
    # a module of its own, as dfo/optimizers/compass.py would be (pickle finds it)
    module = types.ModuleType("dfo_contributing_example")
    sys.modules[module.__name__] = module
    exec(compile(code, str(GUIDE), "exec"), module.__dict__)
    try:
        yield module.CompassSearch
    finally:
        _REGISTRY.pop(NAME, None)
        del sys.modules[module.__name__]


def test_the_guide_method_is_registered_with_its_declared_options(toy):
    assert NAME in dfo.methods()
    assert method_options(NAME) == {"step": 0.5, "tol": 1e-8}
    with pytest.raises(dfo.InvalidOptionError, match="step must be a positive number"):
        dfo.make_optimizer(NAME, np.zeros(2), step=-1.0)
    with pytest.raises(dfo.InvalidOptionError, match="Did you mean 'step'"):
        dfo.make_optimizer(NAME, np.zeros(2), stpe=1.0)


def test_the_guide_method_minimizes(toy):
    f = problems.get("sphere", 3)
    res = dfo.minimize(f, np.full(3, 0.7), method=NAME, budget=2000, seed=0)
    assert res.success and res.status == Status.CONVERGED and res.fun < 1e-12
    assert res.nfev <= 2000 and res.method == NAME
    assert res.message.startswith("converged: the step fell below tol=1e-08")


def test_the_guide_method_resumes_bit_identically(toy, tmp_path):
    f = problems.get("rosenbrock", 3)
    kwargs = {"method": NAME, "budget": 400, "seed": 1, "step": 0.3}
    ref = dfo.minimize(f, np.zeros(3), **kwargs)
    path = tmp_path / "run.ckpt"
    first = dfo.minimize(f, np.zeros(3), checkpoint=path, max_iter=7, **kwargs)
    assert first.nit == 7
    res = dfo.minimize(f, np.zeros(3), checkpoint=path, resume=True, **kwargs)
    np.testing.assert_array_equal(res.x, ref.x)
    assert (res.fun, res.nfev, res.nit, res.message) == (ref.fun, ref.nfev, ref.nit, ref.message)
    np.testing.assert_array_equal(res.history["best"], ref.history["best"])


@pytest.mark.parametrize("budget", contract.BUDGETS)
def test_the_guide_method_ends_by_itself_within_the_budget(toy, budget):
    contract.test_documented_loop_ends_by_itself_within_the_budget(NAME, budget)


def test_the_guide_method_keeps_the_contract(toy):
    contract.test_result_mid_run_says_in_progress(NAME)
    contract.test_misuse_raises_ask_tell_error_and_changes_nothing(NAME)
    contract.test_tell_beyond_the_budget_is_refused(NAME)
    contract.test_ask_returns_copies_and_x0_is_untouched(NAME)
    contract.test_an_objective_that_overwrites_its_input_changes_nothing(NAME)
