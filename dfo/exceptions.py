"""Exceptions raised by dfo for bad input.

Every exception dfo raises on purpose for a caller's mistake is a subclass of
:class:`ValueError` or :class:`TypeError`, so ``except (ValueError, TypeError)``
catches them all; the subclasses below let callers be more specific.

What can escape the public API (:func:`dfo.minimize`, :func:`dfo.make_optimizer`,
:func:`dfo.as_objective`, :class:`dfo.NetworkObjective`, :class:`dfo.MLP`):

- :class:`ValueError`, :class:`TypeError` and the subclasses below, for bad input:
  a wrong shape, dtype or non-finite value in ``x0`` or data, a bad budget, an
  unknown method or option (with the closest valid names), an option value out of
  range, labels that do not fit the network. :func:`dfo.minimize` checks all of
  its arguments before the objective is called once.
- :class:`ObjectiveOutputError` when the objective returns something other than
  real numbers of the documented shape (a vector for one point, a string, a batch
  of the wrong length); it is raised at the first such evaluation.
- Exceptions raised by the user's objective, unchanged in type, with a note
  (:pep:`678`) naming the method, the iteration and the point; with
  ``on_error="worst"`` they count as non-finite values instead.
- Nothing else: not a numpy, scipy or pycma error, and no warning from non-finite
  arithmetic. Non-finite values are data, not errors (see :class:`dfo.Result`),
  and ``KeyboardInterrupt`` ends a run with the result so far.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")

__all__ = [
    "AskTellError",
    "AskTellShapeError",
    "GradientNotAvailableError",
    "InvalidOptionError",
    "NotAskTellError",
    "NotPicklableError",
    "ObjectiveOutputError",
    "ObjectiveOutputTypeError",
    "OptionTypeError",
    "OutputPathError",
    "RunFolderError",
    "ShapeError",
    "lookup",
    "suggest",
]


class ShapeError(ValueError):
    """An array has the wrong shape (or size) for what it is used for."""


class InvalidOptionError(ValueError):
    """An option name is unknown, or its value is out of range."""


class OptionTypeError(InvalidOptionError, TypeError):
    """An option or argument has the wrong type (a string for a number, 1 for a flag).

    Both an :class:`InvalidOptionError` and a :class:`TypeError`.
    """


class AskTellError(ValueError, RuntimeError):
    """``ask``/``tell`` used out of order or with what was not asked.

    Raised by :meth:`dfo.Optimizer.tell` for a ``tell`` without a pending ``ask``
    (before the first one, or twice for one ask), for points other than those the
    last ``ask`` returned, for a number of values or gradients that does not match
    them, and for a ``tell`` that would exceed the budget. The optimizer is left as
    it was: ask again (the same points) or tell again correctly. Both a
    :class:`ValueError` and a :class:`RuntimeError`.
    """


class AskTellShapeError(AskTellError, ShapeError):
    """An :class:`AskTellError` about the number or shape of the told points or values.

    Also a :class:`ShapeError`.
    """


class ObjectiveOutputError(ValueError):
    """An objective returned something other than the documented float(s)."""


class ObjectiveOutputTypeError(ObjectiveOutputError, TypeError):
    """An objective returned something that is not a real number (a string, None).

    Both an :class:`ObjectiveOutputError` and a :class:`TypeError`.
    """


class GradientNotAvailableError(TypeError):
    """A method that needs gradients was given an objective without them."""


class NotAskTellError(TypeError):
    """Deprecated: nothing raises it any more.

    Every method is ask/tell (scipy's loops are recast, see
    :mod:`dfo.optimizers.recast`); the name stays importable for code that
    catches it.
    """


class OutputPathError(ValueError):
    """A path dfo was asked to write cannot be written there (a directory, a missing
    or unwritable folder, a folder that is not a dfo run folder)."""


class RunFolderError(ValueError):
    """A run folder is in use by another process, or one of its files is damaged.

    The message names the file and, for a damaged file, the field or line.
    """


class NotPicklableError(TypeError):
    """The objective cannot be sent to a process pool's workers (it does not pickle)."""


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


def lookup(name: object, table: Mapping[str, T], what: str) -> T:
    """The entry of ``table`` named ``name``, or a clear error.

    Parameters
    ----------
    name : str
        The name that was given.
    table : mapping of str to anything
        The valid names and what they stand for.
    what : str
        What is being named, for the messages ("loss", "activation", ...).

    Returns
    -------
    The entry ``table[name]``.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    InvalidOptionError
        If ``name`` is not in ``table``; the message lists the valid names and
        suggests the closest.

    Examples
    --------
    >>> lookup("mse", {"mse": 1, "cross_entropy": 2}, "loss")
    1
    """
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string; got {type(name).__name__}")
    try:
        return table[name]
    except KeyError:
        valid = list(table)
        raise InvalidOptionError(
            f"unknown {what} {name!r}; expected one of {valid}." + suggest(name, valid)
        ) from None
