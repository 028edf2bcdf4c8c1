"""
Training on the error rate: a loss with no gradient
===================================================

The number we care about for a classifier is its error rate, the fraction of
examples it gets wrong (the 0-1 loss). Nobody trains on it with backpropagation,
for a reason the tool can show: it is piecewise constant in the weights, so its
derivative is exactly zero wherever it exists. Backpropagation and forward mode
both see that zero and never move; a method that only compares values, like
CMA-ES, follows the jumps between the plateaus.

This is ``dfo compare --task digits-01``: the 64-16-10 digits network, trained on
its error rate on minibatches of 128 images, every method under the same budget.
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from dfo.compare import CompareConfig, run_compare
from dfo.compare.plots import band
from dfo.compare.targets import runtime_distribution

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
config = CompareConfig(
    task="digits-01",
    methods=("backprop-sgd", "forward-gradient", "spsa", "cma-es", "random-search"),
    seeds=(0,),
    budget=300 if SMOKE else 5_000,
)
out = tempfile.mkdtemp(prefix="dfo-digits-01-")
result = run_compare(config, out, progress=False)
print(result.table.text.split("\n\nCost unit")[0])

# %%
# The gradient is zero
# --------------------
# At the starting point, backpropagation through the error rate returns zeros
# for every weight: a small change of a weight changes no prediction.

task = result.task
x0 = task.start(0)
value, grad = task.objective.value_and_grad(x0)
print(f"error rate {value:.3f}; largest |gradient| {np.abs(grad).max()}")

# %%
# What each method reached
# ------------------------
# Training error rate of each method's current estimate against the cost spent
# (one seed), and COCO's runtime distribution: the fraction of
# (target, seed) pairs reached by each cost. Backpropagation and the forward
# gradient stay at the start.

fig, (ax, ax_rtd) = plt.subplots(1, 2, figsize=(12, 4.5))
for row in result.table.rows:
    curves = [
        (
            np.maximum(np.asarray(c["nfev"], dtype=float), 1),
            np.asarray(c["train_loss"], dtype=float),
        )
        for c in (r["monitor"]["curve"] for r in row.records)
    ]
    grid, median, _, _ = band(curves)  # the median over seeds on a common grid
    ax.step(grid, median, where="post", lw=2, label=row.method)
ax.set(xscale="log", xlabel="evaluations", ylabel="training error rate")
ax.set_title("the 0-1 loss: only the value-comparing methods move")
ax.legend(fontsize=8)
for method, (costs, fraction, pairs) in runtime_distribution(result.table.hits).items():
    if costs.size:
        ax_rtd.step(np.r_[costs[0], costs], np.r_[0.0, fraction], where="post", lw=2, label=method)
    else:
        ax_rtd.plot([], [], label=f"{method} (none of {pairs})")
ax_rtd.set(xscale="log", ylim=(-0.02, 1.02), xlabel="cost (forward-evaluation equivalents)")
ax_rtd.set_ylabel("fraction of (target, seed) pairs reached")
ax_rtd.set_title("; ".join(t.label for t in result.table.targets), fontsize=8)
ax_rtd.legend(fontsize=8)
fig.tight_layout()
