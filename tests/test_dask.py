"""Evaluation on a Dask cluster through ``Client.get_executor()``.

A local cluster of two worker processes (one thread each) stands in for a real
one. A seeded run through it is the serial run bit for bit, and an exception in a
worker reaches the caller with the worker's traceback. Skipped when the
``distributed`` extra is not installed (``pip install -e '.[distributed]'``).
"""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import dfo  # noqa: E402
from dfo import problems  # noqa: E402
from dfo.objective import Objective  # noqa: E402
from dfo.result import HISTORY_FIELDS  # noqa: E402
from dfo.run.evaluation import executor_workers  # noqa: E402

DIM = 4
X0 = np.full(DIM, 0.5)

# the workers cannot import this test module: send its functions and classes by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Failing(Objective):
    """Sphere that raises on points whose first coordinate exceeds ``threshold``."""

    def __init__(self, dim: int, threshold: float) -> None:
        super().__init__(dim)
        self.threshold = threshold

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        if np.any(X[:, 0] > self.threshold):
            raise RuntimeError(f"simulation failed above {self.threshold}")
        return np.sum(X**2, axis=1)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging) if the block takes longer than ``seconds``."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s: the run hangs")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with deadline(120):
        cluster = distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",  # any free port: never collides with another cluster
            silence_logs=40,  # logging.ERROR
        )
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def assert_same_run(a: dfo.Result, b: dfo.Result) -> None:
    np.testing.assert_array_equal(a.x, b.x)
    for key in ("fun", "nfev", "ngev", "nit", "n_nonfinite", "status", "message"):
        assert a[key] == b[key], key
    for field in HISTORY_FIELDS:
        if field != "time":
            np.testing.assert_array_equal(a.history[field], b.history[field], err_msg=field)


def test_cluster_has_two_single_threaded_workers(client: Any) -> None:
    assert sorted(client.nthreads().values()) == [1, 1]
    assert executor_workers(client.get_executor()) == 2


@pytest.mark.parametrize("method", ["cma-es", "spsa", "fd-sgd", "random-search"])
def test_dask_run_is_the_serial_run(client: Any, method: str) -> None:
    objective = problems.Rosenbrock(DIM)
    serial = dfo.minimize(objective, X0, method, 120, seed=11)
    with deadline(120):
        on_cluster = dfo.minimize(
            objective, X0, method, 120, seed=11, executor=client.get_executor()
        )
    assert_same_run(serial, on_cluster)


def test_dask_stochastic_run_is_the_serial_run(client: Any) -> None:
    # a lambda travels to the workers too (Dask pickles with cloudpickle)
    objective = dfo.as_objective(
        lambda x, rng: float(np.sum((x - 1) ** 2) + 0.01 * rng.standard_normal()),
        DIM,
        stochastic=True,
    )
    serial = dfo.minimize(objective, X0, "cma-es", 100, seed=5)
    with deadline(120):
        on_cluster = dfo.minimize(
            objective, X0, "cma-es", 100, seed=5, executor=client.get_executor()
        )
    assert_same_run(serial, on_cluster)


def test_worker_exception_reaches_caller_with_traceback(client: Any) -> None:
    objective = Failing(DIM, threshold=0.0)
    with deadline(120), pytest.raises(RuntimeError, match="simulation failed") as info:
        dfo.minimize(objective, X0, "cma-es", 100, seed=0, executor=client.get_executor())
    frames = "".join(traceback.format_tb(info.value.__traceback__))
    assert "_evaluate_batch" in frames  # the frame in the worker that raised
    assert "cma-es" in " ".join(info.value.__notes__)
    # the cluster keeps working after the failure
    assert client.submit(sum, [1, 2]).result(timeout=60) == 3
