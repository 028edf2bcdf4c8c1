"""Shared helpers of the benchmark scripts: timing side by side, BLAS facts, tables.

Every benchmark compares two things *in one process*, alternating them within each
repeat so that both see the same machine load, and reports the median over the
repeats. Ratios are what the scripts print and check; absolute times are shown for
reference only.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "apply_threads",
    "blas_threads",
    "calls_for",
    "describe_machine",
    "parser",
    "print_table",
    "side_by_side",
    "verdict",
]


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark understands."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="repeats per measurement")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads, set through threadpoolctl (default 1: a ratio measures work, "
        "not how many cores BLAS found free; the header prints what BLAS reports)",
    )
    return p


def apply_threads(threads: int | None) -> Any:
    """Limit numpy's BLAS to ``threads`` threads (None: leave it); returns the limiter.

    The limit holds until the limiter's ``restore_original_limits()``: every script
    calls this first (``--threads``, default 1), before :func:`describe_machine`.
    """
    if threads is None:
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def side_by_side(
    fns: dict[str, Callable[[], Any]],
    *,
    repeats: int,
    number: int | dict[str, int] = 1,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each function, timed alternately in each repeat.

    Each repeat times ``number`` calls (per function, if a dict) of every function
    in turn, so that a burst of load on the machine hits all of them alike; the
    median over ``repeats`` is kept. ``clock=time.thread_time`` measures the CPU
    time of the calling thread (single-threaded work on a busy machine: the time
    spent waiting for a core is not counted).
    """
    counts = number if isinstance(number, dict) else dict.fromkeys(fns, number)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            n = counts[name]
            t0 = clock()
            for _ in range(n):
                fn()
            samples[name].append((clock() - t0) / n)
    return {name: statistics.median(values) for name, values in samples.items()}


def calls_for(fn: Callable[[], Any], seconds: float = 0.02) -> int:
    """How many calls of ``fn`` take about ``seconds`` (at least 1)."""
    fn()
    t0 = time.perf_counter()
    fn()
    return max(1, round(seconds / max(time.perf_counter() - t0, 1e-7)))


def blas_threads() -> tuple[int | None, str]:
    """Threads and kernel of numpy's BLAS, from threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None, "unknown (install threadpoolctl to see it)"
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            kernel = f"{info.get('internal_api')} {info.get('version')}"
            if info.get("architecture"):
                kernel += f", {info['architecture']} kernel"
            return int(info["num_threads"]), kernel
    return None, "no BLAS found"


def describe_machine() -> str:
    """One line about the machine and numpy's BLAS, printed at the top of each run."""
    import numpy as np

    threads, kernel = blas_threads()
    env = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    note = f"; {', '.join(env)} set" if env else ""
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (
        f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cores"
        f"{load}; BLAS: {kernel}, {threads} threads{note}"
    )


def verdict(value: float, target: float, *, at_least: bool) -> str:
    """``"ok"`` when ``value`` meets the target (``>=`` or ``<=``), else ``"MISSED"``."""
    met = value >= target if at_least else value <= target
    return "ok" if met else "MISSED"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows as a plain aligned table."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for j, row in enumerate(cells):
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return f"{value:.2e}"
    return str(value)
