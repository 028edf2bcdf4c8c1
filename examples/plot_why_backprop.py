"""
Why backprop: the cost and the accuracy of a gradient, measured
===============================================================

Finite differences ("tweak each weight, measure the loss") need ``n + 1`` loss
evaluations per gradient, each costing ``O(n)`` for a network with ``n``
parameters: ``O(n^2)`` work. Backpropagation needs one forward and one backward
pass: ``O(n)``. And a finite difference is only as accurate as its step allows.

This example runs the measurements behind ``dfo scaling`` from Python, on a
smaller sweep than the command's default, and plots them. The
:doc:`explanation page </why-backprop>` shows the command's own output.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from dfo import scaling
from dfo.scaling.plots import cost_table, slope_table, step_error_table

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
MAX_PARAMS = 1_000 if SMOKE else 20_000
FIT_FROM = 85 if SMOKE else 3_000

# %%
# The cost of one gradient
# ------------------------
# Networks ``64-h-10`` on a fixed batch of digit images, from 85 parameters up to
# about 20,000. For each size: the time of one loss evaluation, of a forward and a
# central finite-difference gradient (above a few thousand parameters timed on a
# sample of coordinates and scaled up), of an SPSA estimate and of a backprop
# gradient. The header of ``dfo scaling``'s output explains the columns. Times are
# CPU time of this process, which a busy machine disturbs less than wall time.

sizes = scaling.sweep_sizes(MAX_PARAMS, count=3 if SMOKE else 7)
costs = scaling.measure_gradient_costs(sizes, batch=128, repeats=1 if SMOKE else 2, clock="cpu")
print(cost_table(costs))

# %%
# On log-log axes, a cost proportional to ``n^k`` is a line of slope ``k``. The
# slopes are fitted on the sizes where the arithmetic dominates a call's fixed
# overhead:

slopes = scaling.fit_slopes(costs, fit_from=FIT_FROM)
print(slope_table(slopes, clock="cpu"))

labels = {
    "loss": "one evaluation",
    "forward-fd": "forward FD",
    "central-fd": "central FD",
    "spsa": "SPSA",
    "backprop": "backprop",
}
fitted = {(s.method, s.quantity): s.slope for s in slopes}
fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(12, 4.5))
for method, label in labels.items():
    rows = sorted((r for r in costs if r.method == method), key=lambda r: r.n_params)
    n = [r.n_params for r in rows]
    if method != "loss":
        evals = [r.forward_equivalents if method == "backprop" else r.evaluations for r in rows]
        ax_e.loglog(
            n, evals, "o-", label=label + (" (measured cost)" if method == "backprop" else "")
        )
    slope = fitted.get((method, "seconds"), np.nan)
    ax_t.loglog(n, [1e3 * r.seconds for r in rows], "o-", label=f"{label}: slope {slope:.2f}")
ax_e.set(
    xlabel="parameters n",
    ylabel="loss evaluations per gradient",
    title="evaluations: n + 1, 2n, 2, and a small constant",
)
ax_t.set(
    xlabel="parameters n",
    ylabel="milliseconds per gradient",
    title="time: FD grows like n^2, backprop like n",
)
ax_e.legend()
ax_t.legend(fontsize=8)
fig.tight_layout()

# %%
# The accuracy of a finite difference
# -----------------------------------
# The error of a finite-difference gradient against the exact (backprop) one, as
# the step ``h`` shrinks: truncation error falls like ``h`` (forward) or ``h^2``
# (central) until rounding error, about ``eps |f| / h``, takes over. The default
# steps of :func:`dfo.finite_difference` sit near the bottoms of the V's:
# ``sqrt(eps)`` and ``eps^(1/3)``.

steps = np.logspace(-13, 0, 14 if SMOKE else 27)
errors = scaling.fd_step_error_curve(n_params=310, steps=steps, batch=128)
print(step_error_table(errors))

fig, ax = plt.subplots(figsize=(7.5, 4.8))
for dtype, style in (("float64", "-"), ("float32", "--")):
    eps = np.finfo(dtype).eps
    for scheme, color in (("forward", "C0"), ("central", "C1")):
        rows = [r for r in errors if r.dtype == dtype and r.scheme == scheme]
        ax.loglog(
            [r.h for r in rows],
            [r.rel_error for r in rows],
            style,
            color=color,
            label=f"{scheme}, {dtype}",
        )
    ax.axvline(np.sqrt(eps), color="0.6", lw=0.8, ls=style)
    ax.axvline(eps ** (1 / 3), color="0.8", lw=0.8, ls=style)
ax.set(
    xlabel="step h",
    ylabel="relative error of the gradient",
    title="the step-size V (grey lines: sqrt(eps) and eps^(1/3))",
)
ax.legend()
fig.tight_layout()

# %%
# Backpropagation has no step to choose: its gradient is exact up to rounding in
# the last digits, at the cost shown above as "backprop" — a small constant times
# one evaluation, at every size.
