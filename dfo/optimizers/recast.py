"""scipy's closed loops recast into ask/tell.

``scipy.optimize.minimize`` calls the objective itself. To drive it by ask/tell,
its loop runs in a worker thread whose objective hands each point (or batch of
points: the probes of one finite-difference gradient) over to :meth:`ask`, then
waits for the value :meth:`tell` gives back::

    main thread                       worker thread
    -----------                       -------------
    stop() / ask()  <-- request X --  scipy calls fun(x)
    tell(X, values) --- values -->    fun(x) returns; scipy goes on

The thread is a cache, not state. The optimizer's state is what it was told:
scipy's loop is deterministic, so replaying it over the told values, without
calling the objective, rebuilds the thread exactly where it was. That is how a
pickled optimizer (a checkpoint, a copy) resumes, and how a larger budget
continues a run that stopped at its budget. A digest of the points asked
checks that the replay took the same path.

The worker ends when scipy returns (the method stopped by itself), when the
budget does not allow the next request, on :meth:`RecastOptimizer.close`, and
when the optimizer is garbage collected (it holds no reference to the
optimizer); a thread ended early is told to halt, unwinds scipy's loop and is
joined.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from dfo.exceptions import AskTellError
from dfo.optimizers.base import Optimizer

__all__ = [
    "RecastOptimizer",
    "Reply",
    "Request",
    "require_finite",
    "stop_reasons",
]

#: what a scipy loop's objective receives for a batch of points: values (and gradients)
Reply = tuple[np.ndarray, np.ndarray | None]
#: the function a scipy loop calls to have a batch ``X`` of shape ``(k, dim)`` evaluated:
#: an array that owns its data is handed over (the loop never changes it afterwards),
#: a view (such as ``x[None, :]`` of scipy's point, which scipy may reuse) is copied
Request = Callable[[np.ndarray], Reply]
#: ``loop(request, x0, settings) -> stop reasons``: scipy's call, built from plain data
Loop = Callable[[Request, np.ndarray, dict[str, Any]], dict[str, Any]]

#: seconds to wait for a halted worker to unwind scipy's loop
_JOIN_TIMEOUT = 10.0


class _Halt(BaseException):
    """Raised inside scipy's loop (from its objective) to end the worker."""


class _Overflow(Exception):
    """scipy asked for a point with nan or inf coordinates: the loop ends there."""


def require_finite(x: np.ndarray) -> None:
    """End scipy's loop (reason ``"nonfinite"``) if its point ``x`` is not finite.

    Parameters
    ----------
    x : ndarray
        A point (or points) scipy's loop is about to use.
    """
    if not np.isfinite(x).all():
        raise _Overflow


class ReplayError(RuntimeError):
    """scipy's loop took another path when replayed over the told values."""


@dataclass
class _Finished:
    """The worker's last message: the loop's stop reasons, or the error it raised."""

    reasons: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None


def _chain(digest: bytes, X: np.ndarray) -> bytes:
    """The digest of the points asked so far, extended by the batch ``X``.

    A batch enters by its shape and the CRC-32 of its first row and, for more than
    one row, of its column sums (not every byte: hashing the ``n + 1`` probes of a
    large gradient cost as much as evaluating them). CRC-32 runs several times
    faster than a cryptographic hash over a point of a thousand coordinates and,
    chained, catches a replay that strays as surely. A digest of
    :data:`_LEGACY_SIZE` bytes was made by :func:`_chain_legacy` (a pickle of an
    earlier version) and is extended by it.
    """
    if len(digest) == _LEGACY_SIZE:
        return _chain_legacy(digest, X)
    first = np.ascontiguousarray(X[:1], dtype=np.float64)
    crcs = [X.shape[0], X.shape[1], zlib.crc32(first.data)]
    if X.shape[0] > 1:
        crcs.append(zlib.crc32(np.add.reduce(X, axis=0, dtype=np.float64).data))
    h = hashlib.blake2b(digest, digest_size=_DIGEST_SIZE)
    h.update(np.asarray(crcs, dtype=np.int64).tobytes())
    return h.digest()


#: bytes of a digest made by :func:`_chain` (by :func:`_chain_legacy`)
_DIGEST_SIZE, _LEGACY_SIZE = 20, 16


def _chain_legacy(digest: bytes, X: np.ndarray) -> bytes:
    """The digest of earlier versions: the shape, first row and column sums hashed whole."""
    h = hashlib.blake2b(digest, digest_size=_LEGACY_SIZE)
    h.update(np.asarray(X.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(X[:1], dtype=np.float64).tobytes())
    h.update(np.add.reduce(X, axis=0, dtype=np.float64).tobytes())
    return h.digest()


class _SingleThreadedBlas:
    """BLAS at one thread while scipy's loop computes, the caller's limits back between.

    threadpoolctl's controllers of the BLAS libraries, called directly, and only those
    not at one thread already: a ``ThreadpoolController.limit`` per evaluation (which
    reads every library's information first) cost more than handing the point over.
    """

    def __init__(self) -> None:
        from threadpoolctl import ThreadpoolController

        self._libs = ThreadpoolController().select(user_api="blas").lib_controllers
        self._original: list[tuple[Any, int | None]] = []  # the libraries limited

    def limit(self) -> None:
        """Limit every BLAS to one thread, remembering the limits found."""
        self._original = [(lib, n) for lib in self._libs if (n := lib.get_num_threads()) != 1]
        for lib, _ in self._original:
            lib.set_num_threads(1)

    def restore(self) -> None:
        """Give back the limits :meth:`limit` found."""
        for lib, n in self._original:
            if n is not None:
                lib.set_num_threads(n)
        self._original = []


def _work(
    loop: Loop,
    x0: np.ndarray,
    settings: dict[str, Any],
    told: _Told,
    digest: bytes,
    requests: queue.SimpleQueue[Any],
    replies: queue.SimpleQueue[Any],
) -> None:
    """The worker thread: scipy's loop, replayed over ``told`` and then handed over.

    scipy's own BLAS runs single-threaded while the worker computes (its
    matrices are small, and spare BLAS threads spinning on busy cores made
    L-BFGS-B 60 times slower); the caller's limits are back whenever the
    objective runs.
    """
    blas = _SingleThreadedBlas()
    blas.limit()
    replayed = 0  # values replayed
    path = b""
    # a digest pickled by an earlier version is replayed with its chain
    chain = _chain_legacy if len(digest) == _LEGACY_SIZE else _chain

    def request(X: np.ndarray) -> Reply:
        nonlocal replayed, path
        # a view may be of scipy's buffer, which it reuses; a new array is the loop's to give
        X = np.asarray(X, dtype=np.float64) if X.flags.owndata else np.array(X, np.float64)
        require_finite(X)
        if replayed < told.n:
            k = X.shape[0]
            path = chain(path, X)
            reply = told.slice(replayed, replayed + k)
            replayed += k
            if replayed >= told.n and path != digest:
                raise ReplayError("the replay of scipy's loop asked for other points")
            return reply
        blas.restore()
        requests.put(X)
        reply = replies.get()
        if reply is _Halt:
            raise _Halt
        blas.limit()
        return reply

    try:
        # scipy compares values by subtraction: inf - inf would warn
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            reasons = loop(request, x0, settings)
        if replayed < told.n:
            raise ReplayError("scipy's loop ended before the replay of the told values")
        blas.restore()
        requests.put(_Finished(reasons=reasons))
    except _Halt:
        pass
    except _Overflow:
        blas.restore()
        reason = "scipy's next point is not finite (the values or gradients told overflowed)"
        requests.put(_Finished(reasons={"nonfinite": reason}))
    except BaseException as exc:  # handed to the main thread, raised there
        blas.restore()
        requests.put(_Finished(error=exc))


class _Told:
    """Every value (and gradient) told, in order, in arrays grown by doubling."""

    def __init__(self, dim: int, with_grads: bool) -> None:
        self.n = 0
        self.values = np.empty(16)
        self.grads = np.empty((16, dim)) if with_grads else None

    def append(self, values: np.ndarray, grads: np.ndarray | None) -> None:
        stop = self.n + values.size
        if stop > self.values.size:
            size = max(stop, 2 * self.values.size)
            self.values = np.resize(self.values, size)
            if self.grads is not None:
                self.grads = np.resize(self.grads, (size, self.grads.shape[1]))
        self.values[self.n : stop] = values
        if self.grads is not None:
            assert grads is not None
            self.grads[self.n : stop] = grads
        self.n = stop

    def slice(self, start: int, stop: int) -> Reply:
        grads = None if self.grads is None else self.grads[start:stop]
        return self.values[start:stop], grads

    def copy(self) -> _Told:
        """A copy holding only the told rows (what a pickle and a worker need)."""
        new = _Told.__new__(_Told)
        new.n = self.n
        new.values = self.values[: self.n].copy()
        new.grads = None if self.grads is None else self.grads[: self.n].copy()
        return new


class _Worker:
    """One worker thread and its two queues (no reference to the optimizer)."""

    def __init__(
        self, loop: Loop, x0: np.ndarray, settings: dict[str, Any], told: _Told, digest: bytes
    ) -> None:
        self.requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.replies: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=_work,
            args=(loop, x0, settings, told, digest, self.requests, self.replies),
            name="dfo-scipy-loop",
            daemon=True,
        )
        self.thread.start()

    def next(self) -> np.ndarray | _Finished:
        """The loop's next request, or how it finished (then the thread is joined)."""
        item = self.requests.get()
        if isinstance(item, _Finished):
            self.thread.join()
        return item

    def reply(self, values: np.ndarray, grads: np.ndarray | None) -> None:
        self.replies.put((values, grads))

    def close(self) -> None:
        """Halt the loop if it still runs, and join the thread."""
        if self.thread.is_alive():
            self.replies.put(_Halt)
            if threading.current_thread() is not self.thread:
                self.thread.join(_JOIN_TIMEOUT)


#: the optimizer whose loop runs, per class of exclusive loops (see ``exclusive``)
_RUNNING: dict[type, weakref.ref[RecastOptimizer]] = {}


class RecastOptimizer(Optimizer):
    """Base of the methods whose loop is scipy's, recast into ask/tell.

    A subclass gives :meth:`loop`, a static function ``loop(request, x0,
    settings) -> reasons`` that calls scipy with an objective built on
    ``request(X) -> (values, grads)`` and returns the reasons scipy stopped (as
    :meth:`stop` names them), and :meth:`settings`, the plain data ``loop``
    needs (it must not refer to the optimizer, so that an abandoned optimizer
    is collected and its thread halted).

    ``ask`` returns the batch scipy's objective requested; ``tell`` hands its
    values back. :meth:`stop` names the budget when the next request does not
    fit into it, so ``nfev`` never exceeds ``budget``.

    Parameters
    ----------
    x0 : array_like, shape (dim,)
        Starting point (scipy's ``x0``).
    seed : int or None
        Seed of the optimizer's generator (scipy's methods here draw nothing).
    budget : int or None
        The evaluation budget :meth:`stop` enforces.
    """

    #: whether scipy's loop holds a process-wide lock while it runs (COBYQA's does):
    #: one such loop runs at a time, and starting one halts the other (which is
    #: rebuilt by replay when its optimizer goes on)
    exclusive: ClassVar[bool] = False

    def _setup(self) -> None:
        self._told = _Told(self.dim, self.needs_gradient)  # every reply given to the loop
        self._digest = b""  # of the points asked so far
        self._worker: _Worker | None = None
        self._finalizer: weakref.finalize | None = None
        self._next: np.ndarray | None = None  # the loop's request waiting for tell
        self._finished: _Finished | None = None

    @staticmethod
    def loop(request: Request, x0: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """Call scipy on an objective built on ``request``; return why it stopped.

        A static method: it sees only its arguments, never the optimizer.
        """
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The plain data :meth:`loop` needs (options as scipy takes them)."""
        raise NotImplementedError

    # -- the worker -----------------------------------------------------------
    def _start(self) -> _Worker:
        if self.exclusive:
            other = _RUNNING.get(type(self), lambda: None)()
            if other is not None and other is not self:
                other.close()  # its loop holds the lock this one needs
            _RUNNING[type(self)] = weakref.ref(self)
        worker = _Worker(
            type(self).loop, self.x0.copy(), self.settings(), self._told.copy(), self._digest
        )
        self._worker = worker
        self._finalizer = weakref.finalize(self, worker.close)
        return worker

    def close(self) -> None:
        """End the worker thread (it is rebuilt by replay if the run goes on)."""
        if self._finalizer is not None:
            self._finalizer()  # calls worker.close once
        self._worker = self._finalizer = None

    def _peek(self) -> np.ndarray | None:
        """The loop's next request (None once it has finished)."""
        if self._next is None and self._finished is None:
            item = (self._worker or self._start()).next()
            if isinstance(item, _Finished):
                self._finished = item
                self.close()
            else:
                self._next = item
        if self._finished is not None and self._finished.error is not None:
            raise self._finished.error
        return self._next

    # -- the hooks --------------------------------------------------------------
    def _ask(self) -> np.ndarray:
        X = self._peek()
        if X is None:
            raise AskTellError(f"{self.name} has stopped ({self.stop()}); nothing to ask")
        return X.copy()

    def _rebuilds(self) -> bool:
        return True  # from the loop's request, held until tell: ask hands out _ask's copy

    def _asked_row(self, i: int) -> np.ndarray:
        return self._request()[i].copy()

    def _asked_rows(self) -> np.ndarray:
        return self._request().copy()

    def _request(self) -> np.ndarray:
        """The loop's pending request (the worker is rebuilt by replay if it was closed)."""
        X = self._peek()
        assert X is not None  # called with an ask pending
        return X

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        asked = self._peek()
        assert asked is not None  # the base class checked X against the pending ask
        values = np.array(values, dtype=np.float64, copy=True)
        if self.needs_gradient:
            grads = np.array(grads, dtype=np.float64, copy=True)
        else:
            grads = None  # not the method's business
        if self._worker is None:  # closed at the budget, now continued: rebuild by replay
            self._next = None
            self._peek()
        assert self._worker is not None
        self._told.append(values, grads)
        self._digest = _chain(self._digest, asked)
        self._next = None
        self._worker.reply(values, grads)
        return float(values[0])

    def _stop(self) -> dict[str, Any]:
        X = self._peek()
        if X is None:
            assert self._finished is not None
            return self._finished.reasons
        hopeless = 10 * (self.dim + 1)
        if self.nfev >= hopeless and not np.isfinite(self.best_f):
            return {"nonfinite": f"none of the first {self.nfev} values was finite"}
        return {}

    def stop(self) -> dict[str, Any]:
        """Reasons to stop (see :meth:`Optimizer.stop`); the worker ends with the run."""
        reasons = super().stop()
        if reasons:
            self.close()  # rebuilt by replay if the run goes on (a larger budget)
        return reasons

    # -- pickling: the thread is rebuilt by replay --------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(_worker=None, _finalizer=None, _next=None, _told=self._told.copy())
        return state


def stop_reasons(res: Any) -> dict[str, Any]:
    """The reasons scipy's result ``res`` gives for stopping, as :meth:`stop` names them.

    Parameters
    ----------
    res : scipy.optimize.OptimizeResult
        What ``scipy.optimize.minimize`` returned.

    Returns
    -------
    dict
        ``{"converged": message}`` if scipy succeeded, else ``{"stopped": message}``.
    """
    return {"converged" if res.success else "stopped": str(res.message)}
