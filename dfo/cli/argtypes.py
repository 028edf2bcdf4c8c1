"""Argument types for the command line: parse a string or explain what was expected."""

from __future__ import annotations

import argparse
import math

__all__ = ["nonneg_int", "positive_float", "positive_int", "seconds"]


def _integer(text: str, expected: str, minimum: int) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
    return value


def _number(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (``20_000`` is accepted).

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
