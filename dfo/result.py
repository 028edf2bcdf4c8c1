"""The result of a run: a dict with attribute access and scipy's field names."""

from __future__ import annotations

import os
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HISTORY_FIELDS", "Result", "Status"]

#: Columns of :attr:`Result.history`, one row per iteration.
HISTORY_FIELDS = ("nit", "nfev", "ngev", "time", "value", "best")


class Status(IntEnum):
    """Why a run ended (``Result.status``)."""

    CONVERGED = 0  #: the method's own stopping rule was met
    BUDGET = 1  #: the evaluation budget is spent
    MAX_TIME = 2  #: the wall-clock limit was reached
    CALLBACK = 3  #: the callback raised StopIteration
    MAX_ITER = 4  #: the iteration limit was reached
    INTERRUPTED = 5  #: KeyboardInterrupt (Ctrl-C)
    NONFINITE = 6  #: no finite value was found, or the run diverged
    STALLED = 7  #: the gradient estimate was exactly zero several times in a row
    RUNNING = 8  #: the run is in progress (:meth:`dfo.Optimizer.result` before it stops)


_SUCCESS = {Status.CONVERGED, Status.BUDGET, Status.MAX_TIME, Status.CALLBACK, Status.MAX_ITER}


class Result(dict):
    """Outcome of :func:`dfo.minimize`; a dict whose keys are also attributes.

    Attributes
    ----------
    x : ndarray
        The best point found (for stochastic objectives, the method's final
        recommendation, evaluated once more so that ``fun`` belongs to ``x``).
    fun : float
        The objective's value at ``x``.
    nfev : int
        Objective evaluations spent (points the function saw), gradient calls included.
    ngev : int
        Gradient evaluations (each also counted in ``nfev``).
    nit : int
        Iterations (ask/tell rounds).
    n_nonfinite : int
        Evaluations that returned nan or +-inf.
    n_errors : int
        Evaluations that raised and were treated as non-finite (``on_error="worst"``).
    success : bool
        Whether the run ended normally with a finite value.
    status : Status
        Why the run ended.
    message : str
        The same in words.
    history : dict of ndarray
        One entry per iteration for each of ``HISTORY_FIELDS``: ``nit``, ``nfev``,
        ``ngev``, ``time`` (seconds since the start), ``value`` (what the method
        reported for that iteration) and ``best`` (best value so far).
    method : str
        The method's registered name.
    options : dict
        The options the method ran with.
    time : float
        Wall-clock seconds.
    dtype : str
        The float type the objective computed in (``"float64"``, or ``"float32"`` for
        a float32 network); see :attr:`dfo.objective.Objective.dtype`.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]

    def __dir__(self) -> list[str]:
        return list(self.keys())

    def __repr__(self) -> str:
        if not self:
            return "Result()"
        order = [
            "method",
            "success",
            "status",
            "message",
            "fun",
            "x",
            "nfev",
            "ngev",
            "nit",
            "n_nonfinite",
            "n_errors",
            "time",
        ]
        keys = [k for k in order if k in self] + sorted(
            k for k in self if k not in order and k not in ("history", "options")
        )
        width = max(len(k) for k in keys) + 1
        lines = []
        for key in keys:
            value = self[key]
            if isinstance(value, np.ndarray):
                text = np.array2string(value, threshold=8, edgeitems=3, precision=4)
            elif isinstance(value, Status):
                text = f"{value.value} ({value.name})"
            elif isinstance(value, float):
                text = f"{value:.6g}"
            else:
                text = repr(value)
            lines.append(f"{key.rjust(width)}: {text}")
        if "history" in self:
            n = len(self["history"].get("nit", ()))
            lines.append(f"{'history'.rjust(width)}: {n} iterations x {HISTORY_FIELDS}")
        if self.get("options"):
            lines.append(f"{'options'.rjust(width)}: {self['options']!r}")
        return "\n".join(lines)

    __str__ = __repr__

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write this result to ``path`` as JSON; read it back with :func:`dfo.load_result`.

        Arrays are written as lists (with dtype and shape), the status by name,
        nothing is pickled; the layout is described in :mod:`dfo.result_io`.

        Parameters
        ----------
        path : str or path-like
            The file to write. An existing file is replaced only if it is a dfo
            result file: dfo does not overwrite files it did not write.

        Returns
        -------
        Path
            ``path``.

        Raises
        ------
        FileExistsError
            If ``path`` exists and is not a dfo result file.
        """
        from dfo.result_io import save_result

        return save_result(self, path)

    def plot(self, ax: Any = None) -> Any:
        """Draw the best and current value against evaluations; see :func:`dfo.plot_result`.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw into these axes instead of a new figure.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from dfo.result_plot import plot_result

        return plot_result(self, ax=ax)


def is_success(status: Status, fun: float) -> bool:
    """Whether a run that ended with ``status`` and best value ``fun`` succeeded."""
    return status in _SUCCESS and bool(np.isfinite(fun))
