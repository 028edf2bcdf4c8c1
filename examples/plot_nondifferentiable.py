"""
A network backpropagation cannot train
======================================

Replace the hidden layer's ``tanh`` by a step function (Heaviside: 1 if the input
is positive, else 0) and backpropagation goes blind: the step's derivative is zero
wherever it exists, so no gradient flows back to the first layer. The loss still
changes when the first layer's weights change — in jumps — and methods that only
*measure* the loss can follow those jumps.

Then we go one step further and minimize the number of misclassified points
itself, a piecewise-constant function that has no useful gradient at all.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import dfo
from dfo import datasets

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
BUDGET = 300 if SMOKE else 10_000

data = datasets.load("spirals", seed=0)  # two interleaved spirals, 2-D inputs
net = dfo.MLP([2, 16, 2], activation="step")
objective = dfo.NetworkObjective(
    net, data.X_train, data.y_train, X_test=data.X_test, y_test=data.y_test
)
theta0 = net.init_params(np.random.default_rng(0))
print(net, "with", net.n_params, "parameters;", data.X_train.shape[0], "training points")

# %%
# The gradient backpropagation sees
# ---------------------------------
# The parameter vector holds the first layer's weights and biases first. Their
# gradient is exactly zero; only the output layer gets a signal.

loss, grad = net.loss_and_grad(theta0, data.X_train, data.y_train)
(W1, b1), _ = net.unflatten(theta0)
n_first = W1.size + b1.size
print(
    f"loss {loss:.3f}; largest |gradient| in layer 1: {np.abs(grad[:n_first]).max()}, "
    f"in layer 2: {np.abs(grad[n_first:]).max():.3g}"
)

# %%
# Training with a gradient and without
# ------------------------------------
# The same budget of evaluations for each method. Backprop SGD can only fit the
# output layer on top of random step features; CMA-ES and SPSA move all weights.

runs = {
    "backprop-sgd": {"learning_rate": 0.05, "step_rule": "adam"},
    "cma-es": {"sigma0": 1.0},
    "spsa": {"step_rule": "adam"},
}
results = {}
for method, options in runs.items():
    res = dfo.minimize(objective, theta0, method=method, budget=BUDGET, seed=0, **options)
    results[method] = res
    train_acc = objective.accuracy(res.x, objective.X, objective.y)
    print(
        f"{method:<13} loss {res.fun:.3f}   train accuracy {train_acc:.3f}   "
        f"test accuracy {objective.accuracy(res.x):.3f}   nfev {res.nfev}"
    )

# %%
# Decision regions
# ----------------

grid = np.linspace(-1.1, 1.1, 200)
gx, gy = np.meshgrid(grid, grid)
points = np.column_stack([gx.ravel(), gy.ravel()])
fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharey=True)
for ax, (method, res) in zip(axes, results.items(), strict=True):
    regions = net.predict(res.x, points).reshape(gx.shape)
    ax.contourf(gx, gy, regions, levels=[-0.5, 0.5, 1.5], cmap="coolwarm", alpha=0.35)
    ax.scatter(*data.X_train.T, c=data.y_train, cmap="coolwarm", s=8)
    ax.set_title(f"{method}: test acc. {objective.accuracy(res.x):.2f}")
    ax.set_aspect("equal")
fig.suptitle("step-activation network on the two spirals")
fig.tight_layout()

# %%
# Minimizing the error count itself
# ---------------------------------
# The fraction of misclassified training points is what we care about, but it is
# piecewise constant in the weights: its gradient is zero almost everywhere. As a
# plain (batched) callable it is a perfectly good objective for CMA-ES, which only
# needs to rank candidates. Here with a ``tanh`` network.

smooth_net = dfo.MLP([2, 16, 2], activation="tanh")


def error_rate(thetas):
    """Training error of each row of ``thetas`` (one parameter vector per row)."""
    return np.array([np.mean(smooth_net.predict(t, data.X_train) != data.y_train) for t in thetas])


zero_one = dfo.as_objective(error_rate, dim=smooth_net.n_params, batched=True)
start = smooth_net.init_params(np.random.default_rng(0))
res01 = dfo.minimize(zero_one, start, method="cma-es", budget=BUDGET // 2, seed=0, sigma0=1.0)
test_error = np.mean(smooth_net.predict(res01.x, data.X_test) != data.y_test)
print(f"0-1 loss by CMA-ES: training error {res01.fun:.3f}, test error {test_error:.3f}")

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(res01.history["nfev"], res01.history["best"])
ax.set_xlabel("evaluations (nfev)")
ax.set_ylabel("training error rate (best so far)")
ax.set_title("CMA-ES on the 0-1 loss")
fig.tight_layout()
