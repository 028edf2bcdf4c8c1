"""Callbacks called as scipy (>= 1.11) calls them: by the callback's signature."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from dfo.result import Result

__all__ = ["as_result_callback"]


def as_result_callback(callback: Callable[..., Any]) -> Callable[[Result], Any]:
    """``callback`` as the run loop calls it, with the intermediate :class:`Result`.

    As in :func:`scipy.optimize.minimize` (scipy >= 1.11): a callback with a
    parameter named ``intermediate_result`` receives the intermediate result by that
    name (``x``, ``fun``, ``nfev``, ``nit``, ...; its other parameters, if any, keep
    their defaults); any other callback receives ``xk``, a copy of the best point
    so far (``intermediate_result.x``). Raising ``StopIteration`` ends the run.

    A callback with an integer attribute ``next_nfev`` is called only after the
    iterations at which the evaluations spent reach it (read again after each
    call): a callback that looks at the run at chosen evaluation counts spares
    the run loop an intermediate result per iteration.

    Parameters
    ----------
    callback : callable
        ``callback(intermediate_result)`` or ``callback(xk)``.

    Returns
    -------
    callable
        ``f(result)``, calling ``callback`` the way its signature asks for; its
        ``next_nfev`` is the callback's (0 without one: called every iteration).

    Examples
    --------
    >>> import numpy as np
    >>> seen = []
    >>> def by_result(intermediate_result):
    ...     seen.append(intermediate_result.nit)
    >>> as_result_callback(by_result)(Result(x=np.zeros(2), nit=3))
    >>> as_result_callback(seen.append)(Result(x=np.zeros(2), nit=4))
    >>> seen
    [3, array([0., 0.])]
    >>> as_result_callback(seen.append).next_nfev
    0
    """
    try:
        names = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):  # a callable without a signature: called with xk
        names = set()
    return _ResultCallback(callback, "intermediate_result" in names)


class _ResultCallback:
    """A callback and how to call it (see :func:`as_result_callback`)."""

    __slots__ = ("by_result", "callback")

    def __init__(self, callback: Callable[..., Any], by_result: bool) -> None:
        self.callback = callback
        self.by_result = by_result

    def __call__(self, result: Result) -> Any:
        if self.by_result:
            return self.callback(intermediate_result=result)
        return self.callback(np.copy(result["x"]))

    @property
    def next_nfev(self) -> int:
        """Evaluations the run must have spent before the next call (0: every iteration)."""
        return getattr(self.callback, "next_nfev", 0)
