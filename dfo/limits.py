"""Sizes a run may allocate, checked before the first evaluation.

An option such as ``popsize=10**12`` would make a method ask for a batch of points
no machine can hold; :func:`check_rows` refuses it with the sizes in the message,
instead of a MemoryError (or the kernel's out-of-memory killer) later.
"""

from __future__ import annotations

import os

from dfo.exceptions import InvalidOptionError

__all__ = ["check_rows", "memory_bytes"]


def memory_bytes() -> int:
    """The machine's physical memory in bytes (2**40 when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        return 2**40


def check_rows(
    name: str, value: int, dim: int, *, per: int = 1, budget: int | None = None
) -> None:
    """Refuse an option that makes one ask hold more points than fit in memory or budget.

    Parameters
    ----------
    name : str
        The option, for the message.
    value : int
        Its value.
    dim : int
        Variables per point.
    per : int, default 1
        Points one ask holds per unit of ``value`` (2 for SPSA's ``n_directions``).
    budget : int, optional
        The run's budget; when given, an ask beyond it is refused too (not one
        iteration could be evaluated).

    Raises
    ------
    InvalidOptionError
        Naming the option, what it asks for and what is available.

    Examples
    --------
    >>> check_rows("popsize", 10**12, 3)
    Traceback (most recent call last):
    ...
    dfo.exceptions.InvalidOptionError: popsize=1000000000000 asks for 1,000,000,000,000 ...
    """
    rows = per * value
    nbytes = 8 * rows * dim
    memory = memory_bytes()
    if nbytes > memory:
        raise InvalidOptionError(
            f"{name}={value} asks for {rows:,} points of {dim} variables at a time "
            f"({nbytes / 2**30:.3g} GiB), more than this machine's memory "
            f"({memory / 2**30:.3g} GiB); expected at most {memory // (8 * dim * per):,}"
        )
    if budget is not None and rows > budget:
        raise InvalidOptionError(
            f"{name}={value} needs {rows:,} evaluations per iteration, more than the "
            f"budget of {budget:,}: not one iteration could run"
        )
