"""BLAS threads under control: one per process by default, and said in every header.

A multi-threaded BLAS on a small shared machine spends its time waiting for cores
(and a timing then measures the scheduler, not the work), while ``dfo compare``
already runs one process per core. Every command therefore runs its BLAS with one
thread per process, set through threadpoolctl (which works whenever numpy was
imported), and prints the number of threads BLAS reports while it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["blas_threads", "describe_blas", "limit_blas"]


def blas_threads() -> list[tuple[str, int]]:
    """``(library, threads)`` of every BLAS loaded in this process, as threadpoolctl sees it.

    Returns
    -------
    list of (str, int)
        For example ``[("openblas", 1)]``; empty when no BLAS is loaded.
    """
    import numpy  # noqa: F401 - loads numpy's BLAS, so that there is one to report
    from threadpoolctl import threadpool_info

    return [
        (str(info.get("internal_api", "blas")), int(info["num_threads"]))
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]


def describe_blas() -> str:
    """The BLAS threads of this process in words, e.g. ``"1 (openblas)"``.

    Returns
    -------
    str
    """
    found = list(dict.fromkeys(blas_threads()))  # numpy and scipy may each load one
    if not found:
        return "no BLAS loaded"
    return ", ".join(f"{threads} ({library})" for library, threads in found)


@contextlib.contextmanager
def limit_blas(threads: int = 1) -> Iterator[str]:
    """Run the block with BLAS limited to ``threads`` threads; yield what BLAS then reports.

    Parameters
    ----------
    threads : int, default 1

    Yields
    ------
    str
        :func:`describe_blas` inside the limit: the threads actually in use.

    Examples
    --------
    >>> with limit_blas(1) as used:
    ...     used.split()[0]
    '1'
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield describe_blas()
