"""The one place where :func:`dfo.minimize` calls the objective.

:class:`Evaluator` sits between the run loop and the user's objective. It checks
the budget of the run's :class:`~dfo.run.ledger.Ledger` *before* calling (so the
function never sees more than ``budget`` points), turns failures into nan
values when asked to (``on_error="worst"``, counting them in ``errors``), names
the failing point in the exception's notes, and optionally spreads a batch over
a :class:`concurrent.futures.Executor`. It counts nothing itself: what the
objective returned is booked in the ledger when it is told to the optimizer.
"""

from __future__ import annotations

import itertools
import pickle
from concurrent.futures import BrokenExecutor, Executor
from typing import Literal

import numpy as np

from dfo.exceptions import InvalidOptionError, ObjectiveOutputError
from dfo.objective import Objective, mark_failed_row, to_gradient, to_scalar, to_values
from dfo.run.ledger import Ledger

__all__ = ["BudgetExhausted", "Evaluator", "executor_workers", "map_batches"]

OnError = Literal["raise", "worst"]


class BudgetExhausted(Exception):
    """Raised internally when an evaluation would exceed the budget."""


def executor_workers(executor: Executor) -> int:
    """Best guess of how many tasks ``executor`` runs at once.

    Knows :class:`~concurrent.futures.ProcessPoolExecutor`,
    :class:`~concurrent.futures.ThreadPoolExecutor` and Dask's ``ClientExecutor``
    (the threads of all the cluster's workers); falls back to 2.

    Parameters
    ----------
    executor : concurrent.futures.Executor

    Returns
    -------
    int
        At least 1. :class:`Evaluator` splits each batch into this many chunks.
    """
    workers = getattr(executor, "_max_workers", None)
    if isinstance(workers, int) and workers > 0:
        return workers
    client = getattr(executor, "_client", None)
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # a client that cannot say
            return 2
    return 2


def _evaluate_chunk(objective: Objective, X: np.ndarray) -> tuple[np.ndarray, int]:
    """Values of one chunk, in a worker: ``(values, 0)``."""
    return objective.evaluate_batch(X), 0


def _evaluate_chunk_worst(objective: Objective, X: np.ndarray) -> tuple[np.ndarray, int]:
    """Values of one chunk row by row, a failing row counting as nan (``on_error="worst"``).

    Returns the values and the number of rows that raised, as the serial evaluator
    would count them.
    """
    values = np.empty(X.shape[0])
    errors = 0
    for i in range(X.shape[0]):
        try:
            values[i] = objective.evaluate_batch(X[i : i + 1])[0]
        except ObjectiveOutputError as exc:  # a bug in the objective: always raised
            mark_failed_row(exc, i)
            raise
        except Exception:
            errors += 1
            values[i] = np.nan
    return values, errors


_PICKLE_HINT = (
    "dfo: the objective (or its data) could not be sent to the executor's workers. A "
    "process pool pickles it: define the function at module level (not a lambda or a "
    "nested function) and keep its data picklable, or use a thread pool or Dask (which "
    "uses cloudpickle)."
)


def _is_pickling_error(exc: BaseException) -> bool:
    if isinstance(exc, pickle.PicklingError):
        return True
    return isinstance(exc, AttributeError | TypeError) and "pickle" in str(exc).lower()


def _map_chunks(
    executor: Executor, objective: Objective, X: np.ndarray, n_chunks: int, *, worst: bool
) -> tuple[np.ndarray, int]:
    """Values of the rows of ``X`` from ``n_chunks`` tasks, in order, and the failed count."""
    n_chunks = max(1, min(n_chunks, X.shape[0]))
    bounds = np.linspace(0, X.shape[0], n_chunks + 1).round().astype(int).tolist()
    task = _evaluate_chunk_worst if worst else _evaluate_chunk
    futures = []
    try:
        for start, stop in itertools.pairwise(bounds):
            futures.append(executor.submit(task, objective, X[start:stop]))
        parts = []
        for start, future in zip(bounds, futures, strict=False):
            try:
                parts.append(future.result())
            except Exception as exc:
                row = getattr(exc, "_dfo_row", None)
                if isinstance(row, int):  # a row of the chunk: make it a row of X
                    mark_failed_row(exc, start + row)
                if _is_pickling_error(exc):
                    exc.add_note(_PICKLE_HINT)
                raise
    except BaseException:
        for future in futures:  # tasks not started yet are dropped, not waited for
            future.cancel()
        raise
    values = np.concatenate([part[0] for part in parts])
    return values, sum(part[1] for part in parts)


def map_batches(
    executor: Executor, objective: Objective, X: np.ndarray, n_chunks: int
) -> np.ndarray:
    """Evaluate the rows of ``X`` in ``n_chunks`` tasks on ``executor``, in order.

    The chunks are contiguous blocks of rows of nearly equal size, so the values
    are those of one serial call for any objective whose value at a point does not
    depend on the other points of its batch. If a task raises, the tasks not yet
    started are cancelled and the exception of the first failing chunk (in order)
    is raised with the worker's traceback: a process pool attaches it as
    ``__cause__``, Dask as the exception's traceback.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        A process or thread pool, or Dask's ``Client.get_executor()``.
    objective : Objective
        Sent to the workers with each task (it must pickle for a process pool).
    X : ndarray, shape (k, dim)
    n_chunks : int
        Number of tasks (at most ``k``).

    Returns
    -------
    ndarray, shape (k,)
    """
    return _map_chunks(executor, objective, X, n_chunks, worst=False)[0]


class Evaluator:
    """Budgeted evaluation of an objective for the run loop.

    Parameters
    ----------
    ledger : Ledger or int
        The run's ledger (its budget and counts decide what may be evaluated), or a
        budget for a ledger of its own.
    method : str
        Name used in error notes.
    executor : Executor, optional
        Spread each batch over this executor.
    n_chunks : int, optional
        Tasks per batch on the executor (default: its number of workers).
    on_error : {"raise", "worst"}
        What an exception raised by the objective does: propagate (with a note
        naming the method, iteration and points), or count as a non-finite value.
        An objective that returns something other than real numbers
        (:class:`~dfo.exceptions.ObjectiveOutputError`) always raises: that is a
        bug in the objective, not a failure at one point.

    Attributes
    ----------
    errors : int
        Points of the last call that raised (``on_error="worst"``); the run loop
        books them in the ledger with the values.
    nit : int
        The iteration being evaluated, for error notes.
    """

    def __init__(
        self,
        ledger: Ledger | int,
        *,
        method: str = "",
        executor: Executor | None = None,
        n_chunks: int | None = None,
        on_error: OnError = "raise",
    ) -> None:
        if on_error not in ("raise", "worst"):
            raise InvalidOptionError(f"on_error must be 'raise' or 'worst'; got {on_error!r}")
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise TypeError(
                "executor must be a concurrent.futures.Executor (an object with submit()); "
                f"got {type(executor).__name__}"
            )
        self.ledger = ledger if isinstance(ledger, Ledger) else Ledger(np.zeros(0), ledger)
        self.method = method
        self.executor = executor
        self.n_chunks = n_chunks or (executor_workers(executor) if executor else 1)
        self.on_error = on_error
        self.errors = 0
        self.nit = 0

    def _charge(self, k: int) -> None:
        ledger = self.ledger
        if ledger.budget is not None and ledger.nfev + k > ledger.budget:
            raise BudgetExhausted(
                f"{k} more evaluations would exceed the budget "
                f"({ledger.nfev} of {ledger.budget} spent)"
            )

    def _annotate(self, exc: BaseException, X: np.ndarray) -> None:
        where = f"iteration {self.nit}" + (f" of method {self.method!r}" if self.method else "")
        if isinstance(exc, BrokenExecutor):  # not an error of the objective at a point
            exc.add_note(
                f"dfo: a worker process of the executor died at {where}, while evaluating "
                f"a batch of {X.shape[0]} points (killed, out of memory, or a crash in "
                "native code); the executor cannot be used again and on_error='worst' "
                "cannot help. Run serially (executor=None) to see the objective's own "
                "error, then pass a new executor"
            )
            return
        row = getattr(exc, "_dfo_row", None)
        if X.shape[0] == 1 or (isinstance(row, int) and 0 <= row < X.shape[0]):
            i = 0 if X.shape[0] == 1 or not isinstance(row, int) else row
            point = np.array2string(X[i], threshold=10, precision=6)
            batch = "" if X.shape[0] == 1 else f" (point {i + 1} of a batch of {X.shape[0]})"
            exc.add_note(f"dfo: the objective raised at {where}, at the point x = {point}{batch}")
        else:
            exc.add_note(
                f"dfo: the objective raised at {where}, while evaluating a batch of "
                f"{X.shape[0]} points starting with x = "
                f"{np.array2string(X[0], threshold=10, precision=6)}"
            )
        if self.on_error == "raise" and not isinstance(exc, ObjectiveOutputError):
            exc.add_note("dfo: pass on_error='worst' to count such failures as non-finite values")

    def _one_by_one(self, objective: Objective, X: np.ndarray) -> np.ndarray:
        values = np.empty(X.shape[0])
        for i in range(X.shape[0]):
            try:
                values[i] = objective.evaluate_batch(X[i : i + 1])[0]
            except ObjectiveOutputError as exc:
                self._annotate(exc, X[i : i + 1])
                raise
            except Exception:
                self.errors += 1
                values[i] = np.nan
        return values

    def evaluate(self, objective: Objective, X: np.ndarray) -> np.ndarray:
        """Values at the rows of ``X``, after checking the budget."""
        k = X.shape[0]
        self._charge(k)
        self.errors = 0
        if self.on_error == "worst" and self.executor is None:
            return self._one_by_one(objective, X)
        if self.executor is not None:
            return self._evaluate_parallel(objective, X)
        try:
            return to_values(objective.evaluate_batch(X), k, "the objective")
        except Exception as exc:
            if self.on_error == "worst" and not isinstance(exc, ObjectiveOutputError):
                self.errors = k
                return np.full(k, np.nan)
            self._annotate(exc, X)
            raise

    def _evaluate_parallel(self, objective: Objective, X: np.ndarray) -> np.ndarray:
        """:meth:`evaluate` through the executor: the same values as serially."""
        assert self.executor is not None
        k = X.shape[0]
        try:
            values, errors = _map_chunks(
                self.executor, objective, X, self.n_chunks, worst=self.on_error == "worst"
            )
        except Exception as exc:
            if not _is_pickling_error(exc):  # the objective did run, and raised
                self._annotate(exc, X)
            raise
        self.errors = errors
        return to_values(values, k, "the objective")

    def value_and_grad(self, objective: Objective, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values and gradients at the rows of ``X`` (each row: one evaluation, one gradient)."""
        k = X.shape[0]
        self._charge(k)
        self.errors = 0
        if k == 1:  # one point (backprop-sgd): its gradient as it is, without a copy
            x = X[0]
            # the run checked the point (and that the objective has a gradient) once:
            # the hook directly, unless the objective has a value_and_grad of its own
            direct = type(objective).value_and_grad is Objective.value_and_grad
            try:
                value, grad = (
                    objective._value_and_grad(x) if direct else objective.value_and_grad(x)
                )
                if type(value) is not float:  # a value of another type: converted, or raise
                    value = to_scalar(value, "the gradient function's value")
                ok = type(grad) is np.ndarray and grad.dtype == x.dtype
                if not (ok and grad.shape == x.shape):
                    grad = to_gradient(grad, X.shape[1])
            except Exception as exc:
                if self.on_error != "worst" or isinstance(exc, ObjectiveOutputError):
                    self._annotate(exc, X)
                    raise
                self.errors = 1
                return np.array([np.nan]), np.full_like(X, np.nan)
            return np.array([value]), grad[None, :]
        values = np.empty(k)
        grads = np.empty_like(X)
        for i in range(k):
            try:
                values[i], grads[i] = objective.value_and_grad(X[i])
            except Exception as exc:
                if self.on_error != "worst" or isinstance(exc, ObjectiveOutputError):
                    self._annotate(exc, X[i : i + 1])
                    raise
                self.errors += 1
                values[i] = np.nan
                grads[i] = np.nan
        return values, grads

    def value_and_jvp(
        self, objective: Objective, X: np.ndarray, V: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Values at the rows of ``X`` and directional derivatives along the rows of ``V``.

        Each row is one evaluation with one directional derivative (one forward pass
        with its tangent).
        """
        k = X.shape[0]
        self._charge(k)
        self.errors = 0
        # the rows are the optimizer's (checked when asked): the hook itself, as
        # value_and_grad does, unless a subclass overrides the public method
        direct = type(objective).value_and_jvp is Objective.value_and_jvp
        call = objective._value_and_jvp if direct else objective.value_and_jvp
        values, dderivs = np.empty(k), np.empty(k)
        for i in range(k):
            try:
                value, dderiv = call(X[i], V[i])
                if type(value) is not float:
                    value = to_scalar(value, "the objective's value")
                if type(dderiv) is not float:
                    dderiv = to_scalar(dderiv, "the directional derivative")
            except Exception as exc:
                if self.on_error != "worst" or isinstance(exc, ObjectiveOutputError):
                    self._annotate(exc, X[i : i + 1])
                    raise
                self.errors += 1
                value = dderiv = np.nan
            values[i], dderivs[i] = value, dderiv
        return values, dderivs
