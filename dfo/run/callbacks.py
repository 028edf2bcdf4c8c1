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

    Parameters
    ----------
    callback : callable
        ``callback(intermediate_result)`` or ``callback(xk)``.

    Returns
    -------
    callable
        ``f(result)``, calling ``callback`` the way its signature asks for.

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
    """
    try:
        names = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):  # a callable without a signature: called with xk
        names = set()
    if "intermediate_result" in names:
        return lambda result: callback(intermediate_result=result)
    return lambda result: callback(np.copy(result["x"]))
