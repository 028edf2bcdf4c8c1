"""Evaluation through a concurrent.futures executor: same results as serial, clear failures.

A process pool evaluates the batches of every method; a seeded run must be bit for
bit the run without the executor. A worker's exception reaches the caller with the
worker's traceback, and a crashed worker ends the run with an error instead of a hang
(every such test runs under a deadline).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import numpy as np
import pytest

import dfo
from dfo import problems
from dfo.exceptions import NotPicklableError
from dfo.objective import Objective, as_objective
from dfo.result import HISTORY_FIELDS
from dfo.run.evaluation import Evaluator, executor_workers, map_batches

DIM = 4
X0 = np.full(DIM, 0.5)


# -- picklable objectives (module level, so that worker processes can load them) --------
class Failing(Objective):
    """Sphere that raises on points whose first coordinate exceeds ``threshold``."""

    def __init__(self, dim: int, threshold: float) -> None:
        super().__init__(dim)
        self.threshold = threshold

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        if np.any(X[:, 0] > self.threshold):
            raise RuntimeError(f"simulation failed above {self.threshold}")
        return np.sum(X**2, axis=1)


class CrashInWorker(Objective):
    """Kills the worker process that evaluates it (a segfault stand-in)."""

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        if multiprocessing.parent_process() is not None:
            os._exit(3)
        return np.sum(X**2, axis=1)


class RowEcho(Objective):
    """Value of a row = its first coordinate; records the size of every call."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.calls: list[int] = []

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(X.shape[0])
        return X[:, 0].copy()


class SleepyPid(Objective):
    """Value = the id of the evaluating process, after a pause that keeps it busy."""

    def _evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        time.sleep(0.3)
        return np.full(X.shape[0], float(os.getpid()))


def noisy_quadratic(x: np.ndarray, rng: np.random.Generator) -> float:
    """A stochastic objective through as_objective: noise from the iteration's generator."""
    return float(np.sum((x - 1.0) ** 2) + 0.01 * rng.standard_normal())


def raise_at_row_five(x: np.ndarray) -> float:
    if x[0] == 5.0:
        raise ValueError("bad point")
    return float(x[0])


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
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=2) as executor:
        yield executor


def assert_same_run(a: dfo.Result, b: dfo.Result) -> None:
    """Two results are the same run, bit for bit (wall times aside)."""
    np.testing.assert_array_equal(a.x, b.x)
    assert a.fun == b.fun or (np.isnan(a.fun) and np.isnan(b.fun))
    for key in ("nfev", "ngev", "nit", "n_nonfinite", "n_errors", "status", "message"):
        assert a[key] == b[key], key
    for field in HISTORY_FIELDS:
        if field != "time":
            np.testing.assert_array_equal(a.history[field], b.history[field], err_msg=field)


# -- the same result as serial ------------------------------------------------------------
BUDGETS = {"nelder-mead": 80, "backprop-sgd": 40}


@pytest.mark.parametrize("method", dfo.methods())
def test_process_pool_gives_the_serial_run(pool: ProcessPoolExecutor, method: str) -> None:
    objective = problems.Rosenbrock(DIM)
    budget = BUDGETS.get(method, 150)
    serial = dfo.minimize(objective, X0, method, budget, seed=7)
    with deadline(60):
        parallel = dfo.minimize(objective, X0, method, budget, seed=7, executor=pool)
    assert serial.nfev > 0
    assert_same_run(serial, parallel)


@pytest.mark.parametrize("method", ["spsa", "cma-es", "fd-sgd"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: as_objective(noisy_quadratic, DIM, stochastic=True),
        lambda: problems.Noisy(problems.Sphere(DIM), sigma=0.05, common=True),
    ],
    ids=["callable", "noisy-common"],
)
def test_stochastic_objective_same_run_as_serial(
    pool: ProcessPoolExecutor, method: str, make: object
) -> None:
    # every point of an iteration sees the realization drawn in the parent process
    objective = make()  # type: ignore[operator]
    serial = dfo.minimize(objective, X0, method, 120, seed=3)
    with deadline(60):
        parallel = dfo.minimize(objective, X0, method, 120, seed=3, executor=pool)
    assert_same_run(serial, parallel)


def test_on_error_worst_counts_like_serial(pool: ProcessPoolExecutor) -> None:
    # the pool evaluates failing chunks row by row, as the serial evaluator does
    objective = Failing(DIM, threshold=1.0)
    kwargs = dict(method="cma-es", budget=160, seed=2, on_error="worst", sigma0=1.0)
    serial = dfo.minimize(objective, X0, **kwargs)
    with deadline(60):
        parallel = dfo.minimize(objective, X0, executor=pool, **kwargs)
    assert serial.n_errors > 0
    assert serial.n_errors < serial.nfev  # some rows of the failing batches did not fail
    assert_same_run(serial, parallel)


# -- failures reach the caller --------------------------------------------------------------
def test_worker_exception_reaches_caller_with_traceback(pool: ProcessPoolExecutor) -> None:
    objective = Failing(DIM, threshold=0.0)
    with deadline(60), pytest.raises(RuntimeError, match=r"simulation failed above 0\.0") as info:
        dfo.minimize(objective, X0, method="cma-es", budget=100, seed=0, executor=pool)
    # the worker's traceback names the line that raised
    remote = str(info.value.__cause__)
    assert "_evaluate_batch" in remote and "simulation failed" in remote
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "iteration 0" in notes and "cma-es" in notes
    # the pool is still usable afterwards
    assert pool.submit(int, "5").result(timeout=30) == 5


def test_crashed_worker_raises_instead_of_hanging() -> None:
    with ProcessPoolExecutor(max_workers=2) as broken:
        with deadline(60), pytest.raises(BrokenProcessPool):
            dfo.minimize(CrashInWorker(DIM), X0, method="spsa", budget=20, seed=0, executor=broken)


def test_unpicklable_objective_says_why(pool: ProcessPoolExecutor) -> None:
    def local(x: np.ndarray) -> float:  # a nested function does not pickle
        return float(x @ x)

    # found out before the first evaluation, not when the first batch is sent
    with deadline(60), pytest.raises(NotPicklableError, match="module level"):
        dfo.minimize(local, X0, method="cma-es", budget=50, seed=0, executor=pool)


# -- chunks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 7, 16])
@pytest.mark.parametrize("n_chunks", [1, 2, 3, 20])
def test_map_batches_keeps_order_and_splits(k: int, n_chunks: int) -> None:
    objective = RowEcho(2)
    X = np.column_stack([np.arange(k, dtype=float), np.zeros(k)])
    with ThreadPoolExecutor(max_workers=3) as threads:
        values = map_batches(threads, objective, X, n_chunks)
    np.testing.assert_array_equal(values, X[:, 0])
    sizes = sorted(objective.calls)
    assert len(sizes) == min(k, n_chunks)  # one task per chunk, never an empty one
    assert sum(sizes) == k
    assert sizes[-1] - sizes[0] <= 1  # nearly equal chunks


def test_failing_row_is_named_across_chunks() -> None:
    # row 5 of 8 lies in the second of two chunks; the note names it in the whole batch
    objective = as_objective(raise_at_row_five, 2)
    X = np.column_stack([np.arange(8, dtype=float), np.zeros(8)])
    with ThreadPoolExecutor(max_workers=2) as threads:
        evaluator = Evaluator(100, method="demo", executor=threads)
        with pytest.raises(ValueError, match="bad point") as info:
            evaluator.evaluate(objective, X)
    notes = " ".join(info.value.__notes__)
    assert "point 6 of a batch of 8" in notes and "[5. 0.]" in notes
    assert evaluator.ledger.nfev == 0  # nothing is booked for a batch that raised


def test_worst_mode_counts_failed_rows_in_chunks() -> None:
    objective = as_objective(raise_at_row_five, 2)
    X = np.column_stack([np.arange(8, dtype=float), np.zeros(8)])
    with ThreadPoolExecutor(max_workers=2) as threads:
        evaluator = Evaluator(100, executor=threads, on_error="worst")
        values = evaluator.evaluate(objective, X)
    expected = np.arange(8.0)
    expected[5] = np.nan
    np.testing.assert_array_equal(values, expected)
    assert evaluator.errors == 1  # booked in the ledger with the values when told


def test_budget_is_charged_before_sending() -> None:
    objective = RowEcho(2)
    with ThreadPoolExecutor(max_workers=2) as threads:
        evaluator = Evaluator(5, executor=threads)
        with pytest.raises(Exception, match="exceed the budget"):
            evaluator.evaluate(objective, np.zeros((6, 2)))
    assert objective.calls == [] and evaluator.ledger.nfev == 0


def test_executor_workers_and_validation() -> None:
    with ThreadPoolExecutor(max_workers=3) as threads:
        assert executor_workers(threads) == 3
        assert Evaluator(10, executor=threads).n_chunks == 3
    with pytest.raises(TypeError, match=r"concurrent\.futures\.Executor"):
        Evaluator(10, executor=object())  # type: ignore[arg-type]


def test_chunks_run_in_separate_processes(pool: ProcessPoolExecutor) -> None:
    # not a speed test (benchmarks/bench_executor.py measures the speed-up): only that the
    # two chunks of a batch are evaluated at the same time, each in its own worker
    with deadline(60):
        values = map_batches(pool, SleepyPid(DIM), np.zeros((2, DIM)), 2)
    assert len(set(values.tolist())) == 2
