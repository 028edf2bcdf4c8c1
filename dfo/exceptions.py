"""Exceptions raised by dfo for bad input.

Every exception dfo raises on purpose for a caller's mistake is a subclass of
:class:`ValueError` or :class:`TypeError`, so ``except (ValueError, TypeError)``
catches them all; the subclasses below let callers be more specific.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "GradientNotAvailableError",
    "InvalidOptionError",
    "NotAskTellError",
    "ObjectiveOutputError",
    "ShapeError",
    "suggest",
]


class ShapeError(ValueError):
    """An array has the wrong shape (or size) for what it is used for."""


class InvalidOptionError(ValueError):
    """An option name is unknown, or its value is out of range."""


class ObjectiveOutputError(ValueError):
    """An objective returned something other than the documented float(s)."""


class GradientNotAvailableError(TypeError):
    """A method that needs gradients was given an objective without them."""


class NotAskTellError(TypeError):
    """The method runs its own closed loop and has no ask/tell interface."""


def suggest(name: str, valid: Iterable[str]) -> str:
    """Return a ``" Did you mean ...?"`` hint naming the closest valid names.

    Parameters
    ----------
    name : str
        The name that was given.
    valid : iterable of str
        The names that would have been accepted.

    Returns
    -------
    str
        An empty string when nothing is close, else a sentence with a leading space.

    Examples
    --------
    >>> suggest("spsaa", ["spsa", "cma-es"])
    " Did you mean 'spsa'?"
    """
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
