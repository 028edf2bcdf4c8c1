"""
Tuning a noisy simulation: a black box with no gradient
=======================================================

A mass on a spring is pushed by random gusts of wind and steered by a PID
controller that reads a noisy position sensor. We want the three controller gains
that keep the mass closest to its target. The only thing we can do is run the
simulation and read its cost: there is no formula to differentiate, and two runs
with the same gains give different costs. This is the home ground of
derivative-free methods.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import dfo

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
BUDGET = 120 if SMOKE else 600
N_CHECK = 5 if SMOKE else 50

# %%
# The simulation
# --------------
# Parameters are the logarithms of the gains ``(Kp, Ki, Kd)``, so that every real
# vector is a valid controller and one step size suits all three. The simulation
# takes a :class:`numpy.random.Generator` for its randomness (the wind and the
# sensor noise): that is how :func:`dfo.as_objective` with ``stochastic=True``
# controls it.

DT, STEPS = 0.02, 300  # 6 seconds of simulated time


def simulate(log_gains, rng, trace=False):
    kp, ki, kd = np.exp(log_gains).tolist()
    wind = rng.normal(0.0, 0.5, STEPS).tolist()  # random force on the mass
    noise = rng.normal(0.0, 0.01, STEPS).tolist()  # sensor noise
    pos = vel = integral = cost = 0.0
    prev_err = 1.0
    path = []
    for t in range(STEPS):
        err = 1.0 - (pos + noise[t])  # the target position is 1
        integral += err * DT
        u = kp * err + ki * integral + kd * (err - prev_err) / DT
        u = max(-20.0, min(20.0, u))  # the motor saturates
        prev_err = err
        acc = u - 0.5 * vel - 2.0 * pos + wind[t]  # mass 1, damping 0.5, spring 2
        vel += acc * DT
        pos += vel * DT
        cost += ((1.0 - pos) ** 2 + 1e-3 * u * u) * DT
        path.append(pos)
    return (cost, np.array(path)) if trace else cost


objective = dfo.as_objective(simulate, dim=3, stochastic=True)
x0 = np.log([1.0, 0.1, 0.1])  # a timid controller to start from

# %%
# Common random numbers
# ---------------------
# Within one iteration every candidate is evaluated on the *same* wind and
# noise (the run loop hands ``simulate`` generators with the same seed), so a
# comparison of two gains measures the gains, not the weather. Across iterations
# the weather changes, so no method can overfit one gust pattern.
#
# Because the cost is random, we judge the final gains on ``N_CHECK`` fresh
# realizations no method saw.


def expected_cost(log_gains, n=N_CHECK):
    return np.mean([simulate(log_gains, np.random.default_rng(10_000 + i)) for i in range(n)])


print(f"start: gains {np.exp(x0).round(3)}, expected cost {expected_cost(x0):.3f}")

runs = {
    "cma-es": {"sigma0": 1.0},
    "random-search": {"sigma": 0.5},
    "spsa": {"c": 0.1},
    "nelder-mead": {"simplex_scale": 0.5},
}
results = {}
for method, options in runs.items():
    res = dfo.minimize(objective, x0, method=method, budget=BUDGET, seed=0, **options)
    results[method] = res
    print(
        f"{method:<14} gains {np.exp(res.x).round(2)!s:<22} nfev {res.nfev:>4}  "
        f"expected cost {expected_cost(res.x):.3f}  ({res.status.name})"
    )

# %%
# Compare the expected costs printed above. Nelder–Mead (given a starting simplex
# of size 0.5 in log-gain; scipy's default would be tiny here because
# ``log(1) = 0``) trusts every single comparison it makes, and it sees a new gust
# pattern on every call: its simplex shrinks around lucky draws. CMA-ES ranks
# whole populations evaluated on common random numbers, and its step size adapts
# to what the noise lets it resolve. SPSA's gradient estimate, from two
# simulations, is noisy too; its gain sequence averages the noise out only
# slowly.
#
# The tuned controller
# --------------------
# The same gusts and sensor noise, with the starting gains and with the gains
# CMA-ES found:

rng_seed = 123
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
time_axis = DT * np.arange(1, STEPS + 1)
for label, gains in [("start", x0), ("cma-es", results["cma-es"].x)]:
    cost, path = simulate(gains, np.random.default_rng(rng_seed), trace=True)
    ax1.plot(time_axis, path, label=f"{label} (cost {cost:.2f})")
ax1.axhline(1.0, color="k", lw=0.8, ls="--")
ax1.set_xlabel("time (s)")
ax1.set_ylabel("position")
ax1.set_title("step response under the same wind")
ax1.legend()
for method, res in results.items():
    ax2.plot(res.history["nfev"], res.history["best"], label=method)
ax2.set_xlabel("simulations run (nfev)")
ax2.set_ylabel("best cost seen (one realization each)")
ax2.set_yscale("log")
ax2.set_title("progress")
ax2.legend()
fig.tight_layout()
