"""
Where each method breaks: dimension
===================================

Derivative-free methods pay for not knowing the gradient with evaluations, and the
bill grows with the number of parameters ``n``. This example measures two limits
that the :doc:`decision guide </when-to-use-dfo>` relies on:

1. Nelder–Mead's simplex stalls once ``n`` reaches a few tens, even on a convex
   quadratic;
2. full CMA-ES's own work per evaluation grows with ``n`` (it learns an ``n x n``
   covariance), which is why the separable variant takes over in large dimension.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import dfo
from dfo import problems

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
DIMS = [4, 8] if SMOKE else [4, 8, 16, 32, 64]
PER_DIM = 50 if SMOKE else 400  # evaluations per parameter

# %%
# Same problem, growing dimension
# -------------------------------
# An ellipsoid (a convex quadratic with condition number 1000), started at
# ``(1, ..., 1)``, with a budget of ``400 n`` evaluations. We report the value
# reached relative to the starting value.

methods = {
    "nelder-mead (standard)": ("nelder-mead", {"adaptive": False}),
    "nelder-mead (Gao-Han adaptive)": ("nelder-mead", {"adaptive": True}),
    "cma-es": ("cma-es", {}),
    "spsa (adam steps)": ("spsa", {"step_rule": "adam"}),
}
reached = {label: [] for label in methods}
for n in DIMS:
    f = problems.Ellipsoid(n, condition=1e3)
    x0 = np.ones(n)
    for label, (method, options) in methods.items():
        res = dfo.minimize(f, x0, method=method, budget=PER_DIM * n, seed=0, **options)
        reached[label].append(res.fun / f(x0))

print("value reached / starting value, budget 400 n:" if not SMOKE else "smoke run:")
print(f"{'n':>4}" + "".join(f"{label:>33}" for label in methods))
for i, n in enumerate(DIMS):
    print(f"{n:>4}" + "".join(f"{reached[label][i]:>33.1e}" for label in methods))

fig, ax = plt.subplots(figsize=(7, 4.5))
for label, values in reached.items():
    ax.loglog(DIMS, np.maximum(values, 1e-22), "o-", label=label)
ax.set_xlabel("number of parameters n")
ax.set_ylabel("value reached / starting value")
ax.set_title(f"ellipsoid, condition 1e3, budget {PER_DIM} n evaluations")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# With the standard coefficients Nelder–Mead's simplex degenerates first; Gao and
# Han's dimension-dependent coefficients push the limit further, but not away.
# CMA-ES keeps converging; SPSA makes steady but slow first-order progress.
#
# The price of a full covariance
# ------------------------------
# CMA-ES itself does work for every candidate it samples: it updates an ``n x n``
# covariance matrix and now and then its eigendecomposition. On a trivial
# objective (the sphere, whose evaluation costs next to nothing) the wall time per
# evaluation is CMA-ES's own overhead. The separable variant keeps only the
# diagonal.

SIZES = [50, 100] if SMOKE else [100, 200, 400, 800, 1600]
GENERATIONS = 5 if SMOKE else 30
overhead = {False: [], True: []}
for n in SIZES:
    for separable in (False, True):
        res = dfo.minimize(
            problems.Sphere(n),
            np.ones(n),
            method="cma-es",
            budget=10**7,
            max_iter=GENERATIONS,
            seed=0,
            separable=separable,
        )
        overhead[separable].append(res.time / res.nfev)

print("CMA-ES wall time per evaluation on the sphere (its own overhead):")
for i, n in enumerate(SIZES):
    print(
        f"  n = {n:>5}: full {1e6 * overhead[False][i]:>8.1f} us   "
        f"separable {1e6 * overhead[True][i]:>6.1f} us   "
        f"covariance matrix {8 * n * n / 2**20:>6.1f} MiB"
    )

fig, ax = plt.subplots(figsize=(7, 4.5))
ax.loglog(SIZES, 1e6 * np.array(overhead[False]), "o-", label="full covariance")
ax.loglog(SIZES, 1e6 * np.array(overhead[True]), "s-", label="separable (diagonal)")
ax.set_xlabel("number of parameters n")
ax.set_ylabel("microseconds per evaluation")
ax.set_title(f"CMA-ES overhead, {GENERATIONS} generations")
ax.legend()
fig.tight_layout()

# %%
# The full variant's cost per sample grows with ``n`` (towards ``n^2`` once the
# eigendecomposition dominates), and so does its memory: at a few thousand
# parameters the covariance alone is hundreds of megabytes and it learns at a rate
# of order ``1/n^2``. ``separable="auto"`` (the default) switches to the diagonal
# variant above 100 parameters. For a network with many thousands of weights, a
# gradient is the answer when there is one.
