"""
Quickstart: one function, every method
======================================

Minimize the Rosenbrock function in five dimensions with every method of
:func:`dfo.methods` under the same evaluation budget, then compare how far each got
per evaluation spent.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import dfo
from dfo import problems

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
BUDGET = 300 if SMOKE else 3000

# %%
# The objective
# -------------
# :mod:`dfo.problems` holds classic test functions as :class:`dfo.Objective`\ s:
# they evaluate a batch of points at once and know their exact gradient (which only
# ``backprop-sgd`` uses). Rosenbrock's minimum is 0 at ``(1, ..., 1)``.

f = problems.get("rosenbrock", 5)
x0 = np.zeros(f.dim)
print(f, "f(x0) =", f(x0), " minimum", f.minimum, "at", f.minimizer)

# %%
# One run
# -------
# :func:`dfo.minimize` takes the objective (or any plain callable), a starting point,
# a method name and a budget of evaluations. The :class:`dfo.Result` has scipy's
# field names; ``nfev`` never exceeds the budget.

res = dfo.minimize(f, x0, method="cma-es", budget=BUDGET, seed=0)
print(res)

# %%
# Every method, same budget
# -------------------------
# Options are keyword arguments of :func:`dfo.minimize`; the method pages list them
# with their defaults. The gradient-step methods use Adam as their step rule here:
# plain SGD with one learning rate does poorly in Rosenbrock's curved valley.

runs = {
    "cma-es": {},
    "nelder-mead": {},
    "random-search": {},
    "spsa": {"step_rule": "adam"},
    "fd-sgd": {"step_rule": "adam", "learning_rate": 0.02},
    "backprop-sgd": {"step_rule": "adam", "learning_rate": 0.02},
}
results = {}
for method, options in runs.items():
    results[method] = dfo.minimize(f, x0, method=method, budget=BUDGET, seed=0, **options)

print(f"{'method':<14}{'best f':>11}{'nfev':>7}{'ngev':>7}{'nit':>7}{'time s':>8}  status")
for method, r in results.items():
    print(
        f"{method:<14}{r.fun:>11.3g}{r.nfev:>7}{r.ngev:>7}{r.nit:>7}{r.time:>8.3f}"
        f"  {r.status.name}"
    )

# %%
# Best value against evaluations spent
# ------------------------------------
# ``Result.history`` has one row per iteration: evaluations spent so far (``nfev``)
# and the best value so far (``best``). Backprop's gradient is exact and costs one
# evaluation here (and one gradient, counted apart in ``ngev``); finite differences
# pay ``n + 1 = 6`` evaluations for each gradient.

fig, ax = plt.subplots(figsize=(7, 4.5))
for method, r in results.items():
    h = r.history
    ax.semilogy(h["nfev"], np.maximum(h["best"], 1e-16), label=method)
ax.set_xlabel("evaluations spent (nfev)")
ax.set_ylabel("best value so far")
ax.set_title("Rosenbrock, 5 dimensions, one seed")
ax.legend()
fig.tight_layout()

# %%
# Driving the loop yourself: ask and tell
# ---------------------------------------
# Every method but Nelder–Mead (which scipy drives) also has an ask/tell interface,
# for loops you run yourself — for instance when evaluations happen elsewhere.

opt = dfo.make_optimizer("cma-es", x0, seed=0)
while opt.nfev < BUDGET // 2 and not opt.stop():
    X = opt.ask()  # (popsize, 5) candidates
    opt.tell(X, f.evaluate_batch(X))
print(opt.result())
