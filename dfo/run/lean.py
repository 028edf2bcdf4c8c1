"""The lean loop: backprop-sgd's and forward-gradient's iterations without the ask/tell round trip.

When nothing looks at a backprop-sgd run (or a forward-gradient run with one
direction) between its iterations (no progress bar, checkpoint, executor,
``history_x`` or ``on_error="worst"``, no ``tol``, and no callback unless it is
called at marks, ``next_nfev``: it is then called between chunks that end at its
marks), :func:`dfo.minimize` runs its iterations here: the objective's
:meth:`~dfo.Objective.gradient_stream` evaluates the iterate itself on each
iteration's realization, and :meth:`~dfo.optimizers.gradient.BackpropSGD.tell_gradient`
takes the step and books it in scalars (its common case in one call:
:meth:`~dfo.optimizers.gradient.BackpropSGD.lean_tell`). Forward-gradient's iterations
are the same with :meth:`~dfo.Objective.jvp_stream` along the direction that
:meth:`~dfo.optimizers.forward_gradient.ForwardGradient.lean_direction` draws, and
:meth:`~dfo.optimizers.forward_gradient.ForwardGradient.tell_jvp`. Everything
else is the run loop's:

- it runs as many iterations as the budget and ``max_iter`` allow, so ``stop()``
  is not asked before each one; it hands back after any failed step (whose
  reasons to stop ``stop()`` then gives), at the target, and at ``max_time``;
- the iteration's value, gradient (directional derivative) and exceptions are
  checked and annotated as the evaluator does, and Ctrl-C waits while the step
  is taken and booked;
- the numbers are the ask/tell loop's, bit for bit (``tests/test_lean_loop.py``).

spsa's iterations (one direction, no ``regenerate``, no ``tol``) take
:func:`run_lean_pairs` under the same conditions, once ``a`` is calibrated and the
noise measured: the pair :meth:`~dfo.optimizers.gradient.SPSA.lean_pair` asks for
on the objective's :meth:`~dfo.Objective.batch_stream`, told in scalars by
:meth:`~dfo.optimizers.gradient.SPSA.tell_lean` (``tests/test_lean_pairs.py``).
es's iterations (no ``tol``) take :func:`run_lean_population` under the same
conditions: the population of :meth:`~dfo.optimizers.es.EvolutionStrategy.lean_population`
on the batch stream, told by :meth:`~dfo.optimizers.es.EvolutionStrategy.tell_lean`
(``tests/test_lean_population.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dfo.objective import Objective, to_gradient, to_scalar, to_values
from dfo.optimizers.es import EvolutionStrategy
from dfo.optimizers.forward_gradient import ForwardGradient
from dfo.optimizers.gradient import SPSA, BackpropSGD

if TYPE_CHECKING:
    from dfo.run.minimize import _InterruptGuard, _Run

__all__ = [
    "lean_pairs",
    "lean_population",
    "lean_stream",
    "pairs_ready",
    "run_lean",
    "run_lean_pairs",
    "run_lean_population",
]

#: ``f(x) -> (value, grad)`` on a new realization per call (:meth:`Objective.gradient_stream`)
GradientStream = Callable[[np.ndarray], tuple[Any, Any]]
#: ``f(x, v) -> (value, dderiv)`` on a new realization per call (:meth:`Objective.jvp_stream`)
JVPStream = Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]
#: ``f(X) -> values`` on a new realization per call (:meth:`Objective.batch_stream`)
BatchStream = Callable[[np.ndarray], Any]


def lean_stream(
    run: _Run, objective: Objective, *, watched: bool
) -> GradientStream | JVPStream | None:
    """The objective's stream for the lean loop, or None if the run needs the full loop.

    Parameters
    ----------
    run : dfo.run.minimize._Run
        The run (its optimizer, generator and minibatch stream).
    objective : Objective
        What the run minimizes.
    watched : bool
        Whether something looks at the run between iterations (a callback, a
        progress bar, a checkpoint, an executor, ``history_x``, ``on_error="worst"``).

    Returns
    -------
    callable or None
        ``objective.gradient_stream(...)`` for a backprop-sgd run without ``tol``
        that nothing watches, ``objective.jvp_stream(...)`` for such a
        forward-gradient run with one direction; None otherwise.
    """
    opt = run.optimizer
    if watched or not isinstance(opt, (BackpropSGD, ForwardGradient)) or opt.xtol is not None:
        return None
    if isinstance(opt, BackpropSGD):
        return objective.gradient_stream(run.obj_rng, run.sampler)
    return objective.jvp_stream(run.obj_rng, run.sampler) if opt.q == 1 else None


def run_lean(
    run: _Run,
    stream: GradientStream | JVPStream,
    guard: _InterruptGuard,
    max_time: float | None,
    iterations: int | None = None,
) -> None:
    """Iterations of the lean loop, from an iterate that ``stop()`` let go on.

    Returns after the iterations the budget and ``max_iter`` allow, a failed step,
    the target or ``max_time``: the run loop's ``stop()`` then says why, or goes on.

    Parameters
    ----------
    run : dfo.run.minimize._Run
        A backprop-sgd or forward-gradient run (:func:`lean_stream` gave ``stream``).
    stream : callable
        ``stream(x) -> (value, grad)`` (forward-gradient: ``stream(x, v) -> (value,
        dderiv)``) on the next realization.
    guard : dfo.run.minimize._InterruptGuard
        Defers Ctrl-C while a step is taken and booked.
    max_time : float or None
        The run's wall-clock limit, checked before each iteration.
    iterations : int, optional
        At most this many iterations (up to a callback's next mark).
    """
    opt = run.optimizer
    assert isinstance(opt, (BackpropSGD, ForwardGradient))  # lean_stream's condition
    ledger = opt.ledger
    n = ledger.remaining()  # one evaluation per iteration
    if ledger.max_iter is not None:
        n = min(n, ledger.max_iter - ledger.nit)
    if iterations is not None:
        n = min(n, iterations)
    evaluate, tell = _method_iteration(opt, stream)
    target = ledger.target
    for _ in range(int(n)):
        if max_time is not None and ledger.elapsed() >= max_time:
            return
        x = opt.x
        try:
            value, derivative = evaluate(x)
        except Exception as exc:
            run.evaluator.nit = ledger.nit
            run.evaluator._annotate(exc, x[None, :])
            raise
        guard.critical = True  # guard.hold(), inlined: Ctrl-C waits for the booking
        tell(value, derivative)
        guard.critical = False
        if guard.pending:
            guard.release()  # raises the deferred KeyboardInterrupt
        if opt.bad_steps or (target is not None and ledger.best_f <= target):
            return


def _method_iteration(
    opt: BackpropSGD | ForwardGradient, stream: GradientStream | JVPStream
) -> tuple[Callable[[np.ndarray], tuple[float, Any]], Callable[[float, Any], None]]:
    """The method's checked evaluation of the iterate, and its ``tell`` in scalars."""
    if isinstance(opt, ForwardGradient):
        return _checked_jvp(opt, stream), opt.tell_jvp  # type: ignore[arg-type]
    return _checked_gradient(opt, stream), opt.lean_tell()  # type: ignore[arg-type]


def _checked_gradient(
    opt: BackpropSGD, stream: GradientStream
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``x -> (value, grad)`` from the stream, checked and converted as the evaluator does.

    A stream marked as giving a float and a gradient of the iterate's type and shape
    (``checked_dtype``, :class:`~dfo.NetworkObjective`'s) is that already.
    """
    checked = getattr(stream, "checked_dtype", None)
    if checked is not None and checked == opt.x.dtype:  # (a dtype equals None: float64)
        return stream
    dim = opt.dim

    def evaluate(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = stream(x)
        if type(value) is not float:  # a value of another type: converted, or raise
            value = to_scalar(value, "the gradient function's value")
        if not (type(grad) is np.ndarray and grad.dtype == x.dtype and grad.shape == x.shape):
            grad = to_gradient(grad, dim)  # checked and converted, or raise
        return value, grad

    return evaluate


def _checked_jvp(
    opt: ForwardGradient, stream: JVPStream
) -> Callable[[np.ndarray], tuple[float, float]]:
    """``x -> (value, dderiv)`` along the next direction, checked as the evaluator does."""
    direction = opt.lean_direction

    def evaluate(x: np.ndarray) -> tuple[float, float]:
        value, dderiv = stream(x, direction())
        if type(value) is not float:  # of another type: converted, or raise
            value = to_scalar(value, "the objective's value")
        if type(dderiv) is not float:
            dderiv = to_scalar(dderiv, "the directional derivative")
        return value, dderiv

    return evaluate


# -- spsa: Spall's pairs -------------------------------------------------------------------
def lean_pairs(run: _Run, objective: Objective, *, watched: bool) -> BatchStream | None:
    """The objective's batch stream for spsa's lean loop, or None if the run needs the full loop.

    Parameters
    ----------
    run : dfo.run.minimize._Run
    objective : Objective
    watched : bool
        As for :func:`lean_stream`.

    Returns
    -------
    callable or None
        ``objective.batch_stream(...)`` for an spsa run with one direction, without
        ``regenerate`` or ``tol``, that nothing watches; None otherwise. The run loop
        still runs the iterations before :meth:`~dfo.optimizers.gradient.SPSA.lean_ready`
        (measuring the noise, calibrating ``a``).
    """
    opt = run.optimizer
    if watched or not isinstance(opt, SPSA) or opt.q != 1 or opt.regenerate:
        return None
    if opt.xtol is not None:
        return None
    return objective.batch_stream(run.obj_rng, run.sampler)


def pairs_ready(run: _Run) -> bool:
    """Whether the next iteration of an spsa run can take :func:`run_lean_pairs`.

    Parameters
    ----------
    run : dfo.run.minimize._Run

    Returns
    -------
    bool
        True for an spsa run past its noise measurement and calibration of ``a``.
    """
    opt = run.optimizer
    return isinstance(opt, SPSA) and opt.lean_ready()


def run_lean_pairs(
    run: _Run,
    stream: BatchStream,
    guard: _InterruptGuard,
    max_time: float | None,
    evaluations: int | None = None,
) -> None:
    """spsa's iterations in the lean loop, from an iterate that ``stop()`` let go on.

    Each iteration evaluates the pair of :meth:`~dfo.optimizers.gradient.SPSA.lean_pair`
    on the next realization and tells it with
    :meth:`~dfo.optimizers.gradient.SPSA.tell_lean`. Returns after the iterations the
    budget and ``max_iter`` allow, at the first one that may give ``stop()`` a
    reason (a failed step, a pair without a finite difference, an estimate that is
    exactly zero), at the target and at ``max_time``.

    Parameters
    ----------
    run : dfo.run.minimize._Run
        An spsa run (:func:`lean_pairs` gave ``stream``) that is :func:`pairs_ready`.
    stream : callable
        ``stream(X) -> values`` on the next realization.
    guard : dfo.run.minimize._InterruptGuard
        Defers Ctrl-C while the step is taken and booked.
    max_time : float or None
        The run's wall-clock limit, checked before each iteration.
    evaluations : int, optional
        Stop once this many evaluations are spent (a callback's next mark).
    """
    opt = run.optimizer
    assert isinstance(opt, SPSA) and opt.lean_ready()

    def ended() -> bool:  # an iteration that may give stop() a reason
        return bool(opt.bad_steps or opt.redraws or opt.zero_grads)

    batches = (opt.lean_pair, 2, opt.tell_lean, ended)
    _run_batches(run, stream, batches, guard, max_time, evaluations)


#: ``(ask, k, tell, ended)`` of a lean batch loop: the ``k`` points of the next
#: iteration, the tell of their values, whether the iteration may give ``stop()`` a reason
Batches = tuple[Callable[[], np.ndarray], int, Callable[[np.ndarray], None], Callable[[], bool]]


def _run_batches(
    run: _Run,
    stream: BatchStream,
    batches: Batches,
    guard: _InterruptGuard,
    max_time: float | None,
    evaluations: int | None,
) -> None:
    """The lean batch loops' iterations (:func:`run_lean_pairs`, :func:`run_lean_population`).

    As many as the budget, ``max_iter`` and ``evaluations`` allow, up to one that
    ``ended()``, the target or ``max_time``.
    """
    ask, k, tell, ended = batches
    ledger = run.optimizer.ledger
    n = ledger.remaining() // k
    if ledger.max_iter is not None:
        n = min(n, ledger.max_iter - ledger.nit)
    if evaluations is not None:
        n = min(n, -(-evaluations // k))
    target = ledger.target
    for _ in range(int(n)):
        if max_time is not None and ledger.elapsed() >= max_time:
            return
        X = ask()
        try:
            values = to_values(stream(X), k)
        except Exception as exc:
            run.evaluator.nit = ledger.nit
            run.evaluator._annotate(exc, X)
            raise
        guard.critical = True  # guard.hold(), inlined: Ctrl-C waits for the booking
        tell(values)
        guard.critical = False
        if guard.pending:
            guard.release()  # raises the deferred KeyboardInterrupt
        if ended() or (target is not None and ledger.best_f <= target):
            return


# -- es: the whole population -------------------------------------------------------------
def lean_population(run: _Run, objective: Objective, *, watched: bool) -> BatchStream | None:
    """The objective's batch stream for es's lean loop, or None if the run needs the full loop.

    Parameters
    ----------
    run : dfo.run.minimize._Run
    objective : Objective
    watched : bool
        As for :func:`lean_stream`.

    Returns
    -------
    callable or None
        ``objective.batch_stream(...)`` for an es run without ``tol`` (``xtol``,
        ``ftol``) that nothing watches; None otherwise.
    """
    opt = run.optimizer
    if watched or not isinstance(opt, EvolutionStrategy):
        return None
    if opt.xtol is not None or opt.config.ftol is not None:
        return None
    return objective.batch_stream(run.obj_rng, run.sampler)


def run_lean_population(
    run: _Run,
    stream: BatchStream,
    guard: _InterruptGuard,
    max_time: float | None,
    evaluations: int | None = None,
) -> None:
    """es's iterations in the lean loop, from an iterate that ``stop()`` let go on.

    Each iteration evaluates the population of
    :meth:`~dfo.optimizers.es.EvolutionStrategy.lean_population` on the next
    realization and tells it with :meth:`~dfo.optimizers.es.EvolutionStrategy.tell_lean`.
    Returns after the iterations the budget and ``max_iter`` allow, at a failed step
    (whose reasons to stop ``stop()`` then gives), at the target and at ``max_time``.

    Parameters
    ----------
    run : dfo.run.minimize._Run
        An es run (:func:`lean_population` gave ``stream``).
    stream, guard, max_time, evaluations
        As for :func:`run_lean_pairs`.
    """
    opt = run.optimizer
    assert isinstance(opt, EvolutionStrategy)

    def ended() -> bool:  # a failed step: stop() gives its reasons
        return bool(opt.bad_steps)

    batches = (opt.lean_population, opt.popsize, opt.tell_lean, ended)
    _run_batches(run, stream, batches, guard, max_time, evaluations)
