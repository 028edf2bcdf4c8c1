"""Argument types for the command line: parse a string or explain what was expected."""

from __future__ import annotations

import argparse
import math
from decimal import Decimal, InvalidOperation

__all__ = ["nonneg_int", "positive_float", "positive_int", "seconds"]

#: largest integer an option takes (counts, budgets, seeds fit in 64 bits)
_LARGEST = 2**63 - 1


def _integer(text: str, expected: str, minimum: int) -> int:
    """An integer written as digits (``20_000``) or as an integral number (``1e4``, ``2.0e3``)."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
    if not number.is_finite() or number != number.to_integral_value() or number < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
    if number > _LARGEST:
        raise argparse.ArgumentTypeError(f"expected {expected} below 2**63; got {text!r}")
    return int(number)


def _number(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (``20_000`` and ``2e4`` are accepted; ``2.5`` is not).

    Parameters
    ----------
    text : str
        The argument as typed on the command line.

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a positive integer; the message quotes it.
    """
    return _integer(text, "a positive integer", 1)


def nonneg_int(text: str) -> int:
    """An integer >= 0.

    Parameters
    ----------
    text : str
        The argument as typed on the command line.

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not an integer >= 0; the message quotes it.
    """
    return _integer(text, "an integer >= 0", 0)


def positive_float(text: str) -> float:
    """A finite number > 0.

    Parameters
    ----------
    text : str
        The argument as typed on the command line.

    Returns
    -------
    float

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a finite positive number; the message quotes it.
    """
    return _number(text, "a positive number")


def seconds(text: str) -> float:
    """A finite, positive number of seconds.

    Parameters
    ----------
    text : str
        The argument as typed on the command line.

    Returns
    -------
    float

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a finite positive number; the message quotes it.
    """
    return _number(text, "a positive number of seconds")
