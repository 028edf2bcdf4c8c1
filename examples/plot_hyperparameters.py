"""
Tuning a network's learning rate and width with CMA-ES
======================================================

Hyperparameter tuning is a black-box problem: the "function" is *train a network
with these settings and report its validation loss*. It has no gradient with
respect to the settings, it is noisy (another initialization or another order of
minibatches gives another loss) and each evaluation is expensive. Here CMA-ES is
the outer loop and backprop SGD the inner one: CMA-ES proposes a learning rate
and a hidden-layer width, backprop trains the network on the digits, and the
validation loss comes back as the value.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import dfo
from dfo import datasets

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
STEPS = 20 if SMOKE else 200  # backprop steps per training run
OUTER_BUDGET = 8 if SMOKE else 60  # training runs CMA-ES may spend
GRID = 2 if SMOKE else 7

digits = datasets.load("digits", seed=0)
# hold out a validation set from the training data; the test set stays untouched
split = datasets.train_test_split(digits.X_train, digits.y_train, test_size=0.25, seed=1)
print("train", split.X_train.shape, "validation", split.X_test.shape, "test", digits.X_test.shape)

# %%
# The objective: one training run
# -------------------------------
# The two hyperparameters live on log scales, ``x = (log10 learning rate, log2 width)``,
# so that CMA-ES's Gaussian steps mean "twice as wide" or "ten times faster". The
# training run is random (initialization, minibatches); the objective takes the
# generator ``dfo`` hands it (``stochastic=True``) and seeds the run from it, so
# the whole tuning is reproducible from one seed.


def train(log10_lr, log2_width, seed):
    width = round(2.0**log2_width)
    net = dfo.MLP([64, width, 10], activation="tanh")
    task = dfo.NetworkObjective(net, split.X_train, split.y_train, batch_size=64)
    theta0 = net.init_params(np.random.default_rng(seed))
    res = dfo.minimize(
        task,
        theta0,
        method="backprop-sgd",
        budget=STEPS + 1,
        seed=seed,
        learning_rate=10.0**log10_lr,
    )
    return net, res.x


tried = []  # every setting the outer loop evaluated, for the plot


def validation_loss(x, rng):
    net, theta = train(x[0], x[1], seed=int(rng.integers(2**31)))
    loss = net.loss(theta, split.X_test, split.y_test)
    tried.append((*x, loss))
    return loss


objective = dfo.as_objective(validation_loss, dim=2, stochastic=True)

# %%
# The outer loop
# --------------
# Bounds keep the learning rate in ``[1e-4, 10]`` and the width in ``[2, 128]``.

res = dfo.minimize(
    objective,
    np.array([-2.0, 3.0]),  # learning rate 0.01, width 8
    method="cma-es",
    budget=OUTER_BUDGET,
    seed=0,
    sigma0=1.0,
    bounds=([-4.0, 1.0], [1.0, 7.0]),
)
best_lr, best_width = 10.0 ** res.x[0], round(2.0 ** res.x[1])
print(
    f"CMA-ES: learning rate {best_lr:.3g}, width {best_width}, validation loss {res.fun:.3f} "
    f"after {res.nfev} training runs ({res.time:.1f} s)"
)

# %%
# The landscape it searched
# -------------------------
# For reference, a grid of training runs (one seed each) over the same box, with
# the settings CMA-ES tried on top. A grid's cost grows exponentially with the
# number of hyperparameters; CMA-ES's does not.

lrs = np.linspace(-4.0, 1.0, GRID)
widths = np.linspace(1.0, 7.0, GRID)
landscape = np.array(
    [[validation_loss(np.array([a, b]), np.random.default_rng(0)) for a in lrs] for b in widths]
)
del tried[-landscape.size :]  # keep only CMA-ES's own evaluations

fig, ax = plt.subplots(figsize=(7, 5))
mesh = ax.pcolormesh(lrs, widths, np.log10(np.minimum(landscape, 10.0)), shading="nearest")
fig.colorbar(mesh, label="log10 validation loss")
pts = np.array(tried)
ax.scatter(pts[:, 0], pts[:, 1], c="w", s=12, edgecolors="k", label="CMA-ES evaluations")
ax.scatter(*res.x, marker="*", s=250, c="r", edgecolors="k", label="CMA-ES result")
ax.set_xlabel("log10 learning rate")
ax.set_ylabel("log2 hidden width")
ax.legend(loc="lower left")
fig.tight_layout()

# %%
# The chosen setting on the test set
# ----------------------------------
# Only now do we touch the test set, training three networks with the chosen
# setting from different seeds.

accuracies = []
for seed in range(3):
    net, theta = train(res.x[0], res.x[1], seed=100 + seed)
    accuracies.append(net.accuracy(theta, digits.X_test, digits.y_test))
print("test accuracy with the tuned setting:", np.round(accuracies, 3))
