"""A picture of one run: :meth:`dfo.Result.plot`."""

from __future__ import annotations

from typing import Any

import numpy as np

from dfo.result import Result

__all__ = ["plot_result"]


def plot_result(result: Result, ax: Any = None) -> Any:
    """Draw the best and the current value of a run against the evaluations spent.

    Parameters
    ----------
    result : Result
        What :func:`dfo.minimize` returned (or :func:`dfo.load_result` read).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes; by default a new figure is made.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes: x axis "objective evaluations (nfev)", y axis
        "objective value" (logarithmic when every value drawn is positive). The
        best-so-far line is drawn above the per-iteration values.

    Examples
    --------
    >>> import numpy as np, dfo
    >>> res = dfo.minimize(lambda x: float(x @ x), np.ones(2), budget=200, seed=0)
    >>> fig = res.plot()
    >>> fig.axes[0].get_xlabel()
    'objective evaluations (nfev)'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    else:
        fig = ax.figure
    history = result.get("history") or {}
    nfev = np.asarray(history.get("nfev", ()), dtype=float)
    value = np.asarray(history.get("value", ()), dtype=float)
    best = np.asarray(history.get("best", ()), dtype=float)
    ax.plot(nfev, value, ".", ms=3, alpha=0.45, color="tab:blue", label="value per iteration")
    ax.plot(nfev, best, "-", lw=1.8, color="tab:orange", label="best so far", zorder=3)
    drawn = np.concatenate([value, best])
    drawn = drawn[np.isfinite(drawn)]
    if drawn.size and np.all(drawn > 0):
        ax.set_yscale("log")
    ax.set_xlabel("objective evaluations (nfev)")
    ax.set_ylabel("objective value")
    method = result.get("method", "")
    fun = result.get("fun")
    title = f"{method}: f = {fun:.4g}" if isinstance(fun, float) else str(method)
    ax.set_title(f"{title} after {result.get('nfev', len(nfev))} evaluations", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return fig
