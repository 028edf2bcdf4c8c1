"""``dfo compare --scheduler``: the method x seed runs as tasks on a Dask cluster.

Each run is a task ``run_one(spec)`` submitted to an existing cluster's scheduler;
records come back as runs finish and are written by the compare process, exactly
as with local processes, so the table, the run folder and ``--resume`` are the
same. Every worker needs dfo installed (``pip install 'dfo-toolkit[distributed]'``)
and runs BLAS with one thread per run (:func:`dfo.threads.limit_blas`).

Start a cluster on other machines with Dask's own commands::

    dask scheduler                                   # prints tcp://HOST:8786
    dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1    # on each machine
    dfo compare --scheduler tcp://HOST:8786 --seeds 20
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from dfo.exceptions import InvalidOptionError

__all__ = ["execute_on_cluster"]


def execute_on_cluster(
    specs: Sequence[Any],
    address: str,
    on_record: Callable[[dict[str, Any]], None],
    *,
    timeout: float = 30.0,
) -> int:
    """Run ``specs`` as tasks on the cluster at ``address``; hand on each record.

    Parameters
    ----------
    specs : sequence of RunSpec
    address : str
        The scheduler's address, e.g. ``"tcp://scheduler-host:8786"``.
    on_record : callable
        Called with each run's record, in the order the runs finish.
    timeout : float, default 30
        Seconds to wait for the scheduler to answer.

    Returns
    -------
    int
        The cluster's worker threads (runs at a time), for the table's notes.

    Raises
    ------
    InvalidOptionError
        If Dask's ``distributed`` is not installed or no scheduler answers at
        ``address``.
    """
    from dfo.compare.runner import run_one

    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise InvalidOptionError(
            "--scheduler runs on a Dask cluster and needs Dask's distributed: "
            "pip install 'dfo-toolkit[distributed]'"
        ) from exc
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InvalidOptionError(
            f"no Dask scheduler answered at {address!r} within {timeout:g} s ({exc}); "
            "start one with `dask scheduler` and workers with `dask worker ADDRESS`"
        ) from exc
    with client:
        threads = max(1, sum(client.nthreads().values()))
        batch = uuid.uuid4().hex[:8]
        futures = [
            client.submit(run_one, spec, key=f"dfo-{spec.method}-seed{spec.seed}-{batch}")
            for spec in specs
        ]
        try:
            for future in as_completed(futures, loop=client.loop):
                on_record(future.result())
        except BaseException:
            client.cancel(futures)
            raise
    return threads
