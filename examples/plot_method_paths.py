"""
What each method does: their paths on a smooth and a non-smooth valley
======================================================================

Every method of :func:`dfo.methods` starts from the same point on two functions of
two variables and spends the same budget; ``history_x=True`` records the method's
own estimate after every iteration (its iterate, the CMA-ES mean, the best simplex
vertex), and the path through those estimates is drawn on the function's contours.

* left, a **smooth valley** (Rosenbrock's): the gradient exists everywhere and
  points across the curved valley floor;
* right, a **non-smooth valley**, ``|x - 1| + 4 |y - x²|``: the same floor, but
  the function has a kink all along it, where no gradient exists (the gradient
  methods get a subgradient, the sign of each term).

The families differ in what they follow: the gradient steps (backprop, finite
differences, the forward gradient, SPSA's two-point estimate) move along a
measured or estimated slope, which on the kinked floor flips sign from one side
of the kink to the other; the ranking methods (CMA-ES, Nelder–Mead, random
search) only compare values, for which a kink is no obstacle.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

import dfo
from dfo import problems

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
BUDGET = 120 if SMOKE else 600
X0 = np.array([-1.2, 1.0])

# %%
# The two valleys
# ---------------
# Both have their minimum 0 at ``(1, 1)``. Each is an :class:`dfo.Objective` with a
# gradient, so that every method, backprop included, can run on it.

smooth = problems.get("rosenbrock", 2)


def kinked(x):
    return float(abs(x[0] - 1) + 4 * abs(x[1] - x[0] ** 2))


def kinked_subgradient(x):
    s = np.sign(x[1] - x[0] ** 2)
    return np.array([np.sign(x[0] - 1) - 8 * x[0] * s, 4 * s])


nonsmooth = dfo.as_objective(kinked, dim=2, grad=kinked_subgradient)
functions = {"smooth valley (Rosenbrock)": smooth, "non-smooth valley": nonsmooth}

# %%
# Every method, the same budget
# -----------------------------
# The gradient-step methods take Adam steps of 0.05 (plain SGD with one step size
# does poorly in any curved valley), SPSA a first step of 0.5; everything else runs
# with its defaults.
# ``auto`` is left out: it picks one of the others.

methods = [m for m in dfo.methods() if m != "auto"]
options = {m: {"step_rule": "adam", "learning_rate": 0.05} for m in methods}
options["spsa"] = {"initial_step": 0.5}  # its first step's length; Spall's gains after
for m in (
    "cma-es",
    "nelder-mead",
    "random-search",
    "powell",
    "cobyqa",
    "fd-bfgs",
    "backprop-bfgs",
):
    options[m] = {}

paths = {}
for name, f in functions.items():
    for method in methods:
        res = dfo.minimize(
            f, X0, method=method, budget=BUDGET, seed=0, history_x=True, **options[method]
        )
        paths[name, method] = (np.vstack([X0, res.history["x"]]), res)
        print(f"{name:27s} {method:17s} f = {res.fun:9.3g} after {res.nfev} evaluations")

# %%
# The paths
# ---------
# One row per method; the contours are the function's level sets (logarithmic
# spacing), the white cross is the minimum, the black dot the start and the star
# where the method ended.

grid = np.linspace(-2, 2, 201), np.linspace(-1, 3, 201)
XX, YY = np.meshgrid(*grid)
points = np.column_stack([XX.ravel(), YY.ravel()])
levels = np.geomspace(1e-2, 3e3, 16)
fig, axes = plt.subplots(
    len(methods), 2, figsize=(8.5, 2.9 * len(methods)), sharex=True, sharey=True,
    layout="constrained",
)  # fmt: skip
for col, (name, f) in enumerate(functions.items()):
    Z = np.maximum(np.array([f(p) for p in points]).reshape(XX.shape), 1e-3)  # 0 at (1, 1)
    for row, method in enumerate(methods):
        ax = axes[row, col]
        ax.contour(XX, YY, Z, levels=levels, norm=LogNorm(), cmap="viridis", linewidths=0.6,
                   zorder=1)  # fmt: skip
        path, res = paths[name, method]
        ax.plot(path[:, 0], path[:, 1], "-", color="tab:red", lw=1.1, alpha=0.85, zorder=3)
        ax.plot(*path[0], "o", color="black", ms=5, zorder=4)
        ax.plot(*path[-1], "*", color="tab:red", mec="black", ms=11, zorder=5)
        ax.plot(1, 1, "x", color="white", mew=2.5, ms=9, zorder=2)
        ax.set_title(f"{method}: f = {res.fun:.2g} after {res.nfev} evaluations", fontsize=9)
        ax.set_xlim(-2, 2)
        ax.set_ylim(-1, 3)
        if row == 0:
            ax.annotate(name, (0.5, 1.25), xycoords="axes fraction", ha="center",
                        fontsize=11, weight="bold")  # fmt: skip
        if row == len(methods) - 1:
            ax.set_xlabel("x")
        if col == 0:
            ax.set_ylabel("y")
plt.show()

# %%
# What to look for: how straight each path runs down into the valley and along its
# floor, how it behaves at the kink (the right column), and how far each method
# got for the same budget (the titles; finite differences and SPSA spend 3 and 2
# evaluations on each step, backprop one). Random search keeps the best of its
# samples, so its path jumps; Nelder–Mead stops when its simplex has shrunk.
