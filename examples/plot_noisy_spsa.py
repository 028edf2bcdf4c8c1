"""
A noisy objective: SPSA, its perturbation size and its averaging
================================================================

Every measurement of the objective carries independent Gaussian noise. This is the
setting SPSA was designed for (Spall, 1992): we minimize Spall's skewed quartic in
10 dimensions, observed through noise of standard deviation 0.1, and score each run
by the *noise-free* loss at the point it returns.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import dfo
from dfo import problems

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
BUDGET = 200 if SMOKE else 4000
SEEDS = range(2) if SMOKE else range(6)

true_loss = problems.SkewedQuartic(10)
noisy = problems.Noisy(true_loss, sigma=0.1)  # each point gets its own noise draw
x0 = np.ones(10)
print(f"noise-free loss at x0: {true_loss(x0):.3f}; minimum {true_loss.minimum} at 0")

# %%
# Why tweaking each weight fails here
# -----------------------------------
# A forward difference divides a difference of two noisy values by the step ``h``.
# With the default ``h = sqrt(eps) ≈ 1.5e-8`` the noise (0.1) becomes a "gradient"
# of size ``0.1 / 1.5e-8``, millions of times larger than the true one. A larger
# step tames the noise but biases the estimate, and each gradient still costs
# ``n + 1`` measurements.

for h in (None, 0.3):
    res = dfo.minimize(noisy, x0, method="fd-sgd", budget=BUDGET, seed=0, learning_rate=0.1, h=h)
    print(f"fd-sgd, h={h}: noise-free loss {true_loss(res.x):.4g} ({res.status.name})")

# %%
# SPSA variants
# -------------
# SPSA perturbs all ten coordinates at once along a random ±1 direction and needs two
# measurements per gradient estimate. Its perturbation ``c`` should be about the
# noise's standard deviation, not a rounding-error-sized step. Two ways to average
# the noise out:
#
# * ``n_directions=q``: average ``q`` two-point estimates per step (``2q``
#   measurements per iteration);
# * ``average=True``: report the average of the iterates of the second half of the
#   run (Polyak–Ruppert averaging), at no extra measurement.
#
# A callback (scipy's convention: its parameter ``intermediate_result`` receives the
# intermediate result) records the noise-free loss of the method's current recommendation after
# every iteration; those extra evaluations are ours, not the method's, and are not
# charged to its budget.

variants = {
    "c=0.01 (default)": {},
    "c=0.1": {"c": 0.1},
    "c=0.1, 4 directions": {"c": 0.1, "n_directions": 4},
    "c=0.1, averaged iterates": {"c": 0.1, "average": True},
}

final = {name: [] for name in variants}
curves = {}
for name, options in variants.items():
    for seed in SEEDS:
        trace_nfev, trace_loss = [], []

        def record(intermediate_result, trace_nfev=trace_nfev, trace_loss=trace_loss):
            trace_nfev.append(intermediate_result.nfev)
            trace_loss.append(true_loss(intermediate_result.recommendation))

        res = dfo.minimize(
            noisy, x0, method="spsa", budget=BUDGET, seed=seed, callback=record, **options
        )
        final[name].append(true_loss(res.x))
        if seed == 0:
            curves[name] = (trace_nfev, trace_loss)

print(f"noise-free loss at the returned point, {len(SEEDS)} seeds, budget {BUDGET}:")
for name, values in final.items():
    print(f"  {name:<26} median {np.median(values):.4f}   worst {np.max(values):.4f}")

# %%
# Progress and spread
# -------------------
# Left: the noise-free loss of the recommendation against measurements spent, for
# seed 0. With averaged iterates the recommendation becomes the running average of
# the iterates once averaging starts, half-way through the run, and then drifts
# smoothly.
# Right: the spread over seeds of the final noise-free loss.

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
for name, (n, loss) in curves.items():
    ax1.semilogy(n, loss, label=name)
ax1.set_xlabel("noisy measurements spent (nfev)")
ax1.set_ylabel("noise-free loss of the recommendation")
ax1.set_title("seed 0")
ax1.legend(fontsize=8)
for row, values in enumerate(final.values()):
    ax2.scatter(values, np.full(len(values), row), alpha=0.7)
ax2.set_yticks(range(len(final)), list(final))
ax2.set_xscale("log")
ax2.set_xlabel("noise-free loss at the returned point")
ax2.set_title(f"{len(SEEDS)} seeds")
fig.tight_layout()
