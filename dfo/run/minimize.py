"""``minimize``: the one run loop, written once over ask/tell."""

from __future__ import annotations

import copy
import json
import os
import pickle
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np

from dfo.bounds import parse_bounds
from dfo.exceptions import (
    GradientNotAvailableError,
    InvalidOptionError,
    ShapeError,
)
from dfo.files import atomic_write
from dfo.objective import Objective, as_objective
from dfo.optimizers import (
    build_optimizer,
    check_options,
    get_method,
    method_options,
    methods,
    tol_options,
)
from dfo.optimizers.base import Optimizer, check_seed, check_x0
from dfo.options import Options, canonical, check_budget, check_flag, check_real, digest, to_json
from dfo.result import Result, Status
from dfo.run import preflight
from dfo.run.callbacks import as_result_callback
from dfo.run.evaluation import Evaluator, OnError
from dfo.run.lean import (
    lean_pairs,
    lean_population,
    lean_stream,
    pairs_ready,
    run_lean,
    run_lean_pairs,
    run_lean_population,
)
from dfo.run.ledger import build_result, stop_status
from dfo.sampling import EpochSampler, EpochState

__all__ = ["minimize"]

_CHECKPOINT_VERSION = 5


def _gradient_error(method: str, objective: Objective) -> GradientNotAvailableError:
    free = [m for m in methods() if not (get_method(m).needs_gradient or get_method(m).needs_jvp)]
    what, flag = (
        ("directional derivatives", "has_jvp")
        if get_method(method).needs_jvp
        else ("gradients", "has_gradient")
    )
    return GradientNotAvailableError(
        f"method {method!r} needs {what}, but {objective!r} has none "
        f"({flag} is False). Methods that need no gradient: {free}"
    )


class _Run:
    """State of one run of :func:`minimize` (everything a checkpoint holds).

    The counters, best point and history are the optimizer's ledger. The
    objective's realization (minibatch, noise) of the current iteration is not
    stored: ``sample_state`` is the generator state it was drawn from, ``sampler_state``
    the minibatch stream's (the objective's :class:`~dfo.sampling.EpochSampler`, kept
    in ``sampler``), and ``sample_key`` the iteration it belongs to, so a resumed run
    draws it again (the states are kept only when checkpoints are written).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        evaluator: Evaluator,
        obj_rng: np.random.Generator,
        identity: dict[str, Any],
        sampler: EpochSampler | None = None,
        saved: bool = True,
    ):
        self.optimizer = optimizer
        self.saved = saved  # whether checkpoints are written (else no states to keep)
        self.evaluator = evaluator
        self.obj_rng = obj_rng
        self.identity = identity
        self.sampler = sampler
        self.sample: Objective | None = None
        self.sample_state: dict[str, Any] | None = None
        self.sampler_state: EpochState | None = None
        self.sample_key = -1
        self.dirty = False  # an error inside ask/tell left a state not worth saving

    def draw_sample(self, objective: Objective) -> None:
        """Draw the objective's realization for the optimizer's next iteration."""
        if self.saved:
            self.sample_state = dict(self.obj_rng.bit_generator.state)
        if self.saved and self.sampler is not None:
            self.sampler_state = self.sampler.state
        self.sample = _realize(objective, self.obj_rng, self.sampler)
        self.sample_key = self.optimizer.nit

    def draw_final(self, objective: Objective) -> Objective:
        """A realization for the final evaluation (the stream's next minibatch)."""
        return _realize(objective, self.obj_rng, self.sampler)

    def save(self, path: Path) -> None:
        state = {
            "version": _CHECKPOINT_VERSION,
            "identity": canonical(self.identity),
            "optimizer": self.optimizer,
            "obj_rng": self.obj_rng,
            "sampler": self.sampler,
            "sample_state": self.sample_state,
            "sampler_state": self.sampler_state,
            "sample_key": self.sample_key,
        }
        atomic_write(path, lambda fh: pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL))

    def restore(self, state: dict[str, Any], objective: Objective, path: Path) -> None:
        """Take over the minibatch stream and the realization of a checkpoint."""
        saved = state["sampler"]
        fresh = self.sampler
        if (saved is None) != (fresh is None) or (
            saved is not None
            and fresh is not None
            and (saved.n_rows, saved.batch_size) != (fresh.n_rows, fresh.batch_size)
        ):
            raise InvalidOptionError(
                f"checkpoint {path} belongs to a run on another objective: its minibatch "
                f"stream is {saved!r}, the objective's is {fresh!r}; pass the same "
                "objective to resume, or resume=False to start afresh"
            )
        self.sampler = saved
        self.sample_key = state["sample_key"]
        self.sample_state = state["sample_state"]
        self.sampler_state = state["sampler_state"]
        if self.sample_state is None:  # no realization drawn yet
            return
        rng = copy.deepcopy(self.obj_rng)
        rng.bit_generator.state = self.sample_state
        sampler = None if saved is None else saved.copy()
        if sampler is not None:
            assert self.sampler_state is not None
            sampler.state = self.sampler_state
        self.sample = _realize(objective, rng, sampler)


def _realize(
    objective: Objective, rng: np.random.Generator, sampler: EpochSampler | None
) -> Objective:
    """The objective's realization drawn with ``rng``, from ``sampler``'s epochs if any.

    Without a sampler ``realization`` gets ``rng`` alone, as objectives written
    before samplers expect.
    """
    if sampler is None:
        return objective.realization(rng)
    return objective.realization(rng, sampler)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _load_checkpoint(path: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`minimize` for the same run, or raise."""
    try:
        with open(path, "rb") as fh:
            state = pickle.load(fh)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
        raise ValueError(f"{path} is not a readable dfo checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("version") != _CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a dfo checkpoint (version {_CHECKPOINT_VERSION})")
    saved = json.loads(state["identity"])
    details = []
    for key, given in identity.items():
        had = saved.get(key)
        if key == "options" and isinstance(had, dict) and had != given:
            names = sorted(set(had) | set(given), key=str)
            had = {k: had.get(k) for k in names if had.get(k) != given.get(k)}
            given = {k: given.get(k) for k in names if k in had}
        if had != given:
            details.append(
                f"{key}: checkpoint has {_show(had)}, minimize was given {_show(given)}"
            )
    if details:
        raise InvalidOptionError(
            f"checkpoint {path} belongs to a different run ({'; '.join(details)}); "
            "pass the same method, seed, options, x0 and dimension to resume, "
            "or resume=False to start afresh"
        )
    return state


def _run_identity(
    method: str, x0: np.ndarray, seed: Any, config: Options, history_x: bool = False
) -> dict[str, Any]:
    """What must match between a checkpointed run and the call that resumes it (JSON)."""
    if isinstance(seed, np.random.SeedSequence):
        seed = {"entropy": str(seed.entropy), "spawn_key": list(seed.spawn_key)}
    return {
        "method": method,
        "dim": int(x0.size),
        "seed": to_json(seed),
        "x0": digest(x0),
        "options": config.identity(),
        "history_x": history_x,
    }
    if history_x:
        config["history_x"] = "True"
    return config


class _InterruptGuard:
    """Defers Ctrl-C while the optimizer changes state (``ask``, ``tell``).

    In the main thread, and when SIGINT has Python's default handler, a handler is
    installed for the run: outside :meth:`hold` ... :meth:`release` it raises
    KeyboardInterrupt at once (as the default does); inside, it waits for
    :meth:`release`. An interrupted run thus always stops between two steps, with
    a consistent state that a checkpoint can resume bit for bit.
    """

    def __init__(self) -> None:
        self.critical = False
        self.pending = False
        self.installed = False

    def __enter__(self) -> _InterruptGuard:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            signal.signal(signal.SIGINT, self._handler)
            self.installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.critical:
            self.pending = True
        else:
            raise KeyboardInterrupt

    def hold(self) -> None:
        self.critical = True

    def release(self) -> None:
        self.critical = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


def minimize(
    objective: Objective | Callable[..., Any],
    x0: Any,
    method: str = "cma-es",
    budget: int = 10_000,
    *,
    seed: int | np.random.SeedSequence | None = None,
    callback: Callable[[Result], Any] | None = None,
    max_time: float | None = None,
    max_iter: int | None = None,
    executor: Executor | None = None,
    on_error: OnError = "raise",
    catch_interrupt: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    progress: bool = False,
    history_x: bool = False,
    bounds: Any = None,
    target: float | None = None,
    tol: float | None = None,
    **options: Any,
) -> Result:
    """Minimize ``objective`` from ``x0`` with ``method`` within ``budget`` evaluations.

    Parameters
    ----------
    objective : Objective or callable
        What to minimize. A plain callable ``f(x) -> float`` is wrapped with
        :func:`dfo.as_objective` (``dim`` taken from ``x0``).
    x0 : array_like, shape (dim,)
        Starting point.
    method : str, default "cma-es"
        A name from :func:`dfo.methods`.
    budget : int, default 10000
        Maximum number of points the objective evaluates (gradient calls included).
        Never exceeded; a method stops before an iteration that would exceed it.
    seed : int, optional
        Seeds every random choice of the run (the method's and the objective's
        minibatches or noise): the same seed gives the same result, bit for bit.
    callback : callable, optional
        Called after every iteration, as :func:`scipy.optimize.minimize` calls it:
        ``callback(intermediate_result)`` (the parameter named so) gets the
        intermediate :class:`Result`, any other ``callback(xk)`` a copy of the best
        point so far. Raising ``StopIteration`` ends the run cleanly. A callback
        with an integer attribute ``next_nfev`` is called only once the evaluations
        spent reach it (see :func:`dfo.run.callbacks.as_result_callback`).
    max_time : float, optional
        Wall-clock limit in seconds, checked between iterations.
    max_iter : int, optional
        Limit on the number of iterations.
    executor : concurrent.futures.Executor, optional
        Evaluate each batch in parallel on this executor (a process pool, or Dask's
        ``Client.get_executor()``); results are the same as a serial run.
    on_error : {"raise", "worst"}, default "raise"
        What an exception in the objective does: propagate (with a note naming the
        method, the iteration and the point), or count as a non-finite value.
    catch_interrupt : bool, default True
        Return the result so far on Ctrl-C (status ``INTERRUPTED``, ``success``
        False) instead of raising. The iteration in progress is dropped (its
        evaluations are not counted), and Ctrl-C waits while the method updates its
        state, so the result, and the checkpoint, are those between two iterations.
    checkpoint : path, optional
        Write the run's state there (a pickle: load only files you trust) every
        ``checkpoint_every`` iterations, when the run ends, is interrupted or the
        objective raises, so that ``resume=True`` can retry.
    checkpoint_every : int, default 100
        Iterations between checkpoints.
    resume : bool, default False
        Continue from ``checkpoint`` if it exists (else start afresh); the resumed
        run is bit-identical to one that never stopped. The method, seed, options
        and dimension must be those of the checkpointed run; the budget, time and
        iteration limits may change (a larger budget continues the run).
    progress : bool, default False
        Show a progress bar (tqdm) over the budget.
    history_x : bool, default False
        Also record the method's recommendation (its iterate, CMA-ES mean, best
        simplex vertex) after every iteration, as ``history["x"]``, shape
        ``(nit, dim)``.
    bounds : scipy.optimize.Bounds, sequence of (lo, hi) pairs, or (lower, upper), optional
        Box constraints, for every method (None for an unbounded side; see
        :mod:`dfo.bounds`, which also lists how each method keeps inside): ``x0`` is
        projected onto the box, and no point outside it is ever evaluated.
    target : float, optional
        Stop as soon as a value ``<= target`` is found (status ``CONVERGED``,
        ``success`` True, reason ``"target"``).
    tol : float, optional
        Tolerance for termination, scipy's meaning: the method's own tolerances are
        set to it (unless given as options); the docs' stopping table lists them.
    **options
        The method's hyperparameters (see :func:`dfo.optimizers.method_options`).

    Returns
    -------
    Result
        ``x``, ``fun``, ``nfev``, ``ngev``, ``nit``, ``success``, ``status``,
        ``message``, ``history`` and more; see :class:`dfo.Result`.

    Raises
    ------
    InvalidOptionError
        Unknown method or option, a bad option value, or a checkpoint of another run.
    GradientNotAvailableError
        The method needs gradients and the objective has none.
    ShapeError
        ``x0`` does not match the objective's dimension.
    ValueError, TypeError
        Other bad arguments (``x0`` not finite, a budget that is not a positive
        integer, a file that is not a checkpoint, ...). All of these are raised
        before the objective is called once; see :mod:`dfo.exceptions`.
    Exception
        Whatever the objective raises, unchanged, with a note naming the method,
        the iteration and the point (unless ``on_error="worst"``).

    Examples
    --------
    >>> import numpy as np, dfo
    >>> res = dfo.minimize(lambda x: float(np.sum((x - 1) ** 2)), np.zeros(3),
    ...                    method="cma-es", budget=2000, seed=0)
    >>> bool(res.fun < 1e-8), res.nfev <= 2000
    (True, True)
    """
    x0 = check_x0(x0)
    objective = (
        as_objective(objective, dim=x0.size) if not isinstance(objective, Objective) else objective
    )
    if objective.dim != x0.size:
        raise ShapeError(f"x0 has {x0.size} entries; the objective has dimension {objective.dim}")
    budget = check_budget(budget)
    if max_time is not None:
        max_time = check_real("max_time", max_time, low=0.0, low_open=True, allow_inf=True)
    if max_iter is not None:
        max_iter = check_budget(max_iter, "max_iter")
    seed = check_seed(seed)
    checkpoint_every = check_budget(checkpoint_every, "checkpoint_every")
    flags = {
        "catch_interrupt": catch_interrupt,
        "resume": resume,
        "progress": progress,
        "history_x": history_x,
    }
    for name, flag in flags.items():
        check_flag(name, flag)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= (the file to resume from)")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got {type(callback).__name__}")
    if callback is not None:
        callback = as_result_callback(callback)

    cls = get_method(method)
    if objective.dtype != np.float64 and "dtype" in method_options(method):
        options.setdefault("dtype", objective.dtype.name)  # e.g. fd-sgd's steps
    if method == "auto":  # what auto needs to know of the objective
        options = {
            "gradient": bool(objective.has_gradient),
            "stochastic": bool(objective.is_stochastic),
            **options,
        }
    options = tol_options(method, tol, options)
    config = check_options(method, options)
    if (cls.needs_gradient and not objective.has_gradient) or (
        cls.needs_jvp and not objective.has_jvp
    ):
        raise _gradient_error(method, objective)
    preflight.check_hooks(objective, needs_gradient=cls.needs_gradient)
    preflight.check_picklable(objective, executor)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    seeds = root.spawn(2)
    path = preflight.check_checkpoint(checkpoint)
    box = parse_bounds(bounds, x0.size)
    if target is not None:
        target = check_real("target", target, allow_inf=True)
    identity = _run_identity(method, x0, seed, config, bool(history_x))
    if box is not None:  # a run with other bounds is another run
        identity["bounds"] = to_json(box.pairs())
    if resume and path is not None and path.exists():
        state = _load_checkpoint(path, identity)
        optimizer = state["optimizer"]
        optimizer.set_budget(budget)  # a larger budget continues the run
        obj_rng = state["obj_rng"]
    else:
        optimizer = build_optimizer(
            method, x0, seed=seeds[0], budget=budget, bounds=box, **options
        )
        obj_rng = np.random.default_rng(seeds[1])
    ledger = optimizer.ledger
    # one evaluation is kept for the final recommendation when it may not be evaluated
    # (an SPSA or gradient iterate, a CMA-ES mean), or is a noisy objective's estimate;
    # for a deterministic-looking objective, one more to re-measure the best point
    # (noise shows as a second value that differs from the first)
    if objective.is_stochastic:
        ledger.reserve = 1
    elif not optimizer.recommends_unevaluated:
        ledger.reserve = 0
    else:
        ledger.reserve = 1 if optimizer.needs_gradient else 2
    ledger.max_iter = max_iter
    ledger.target = target
    if history_x and ledger.xs is None:
        ledger.xs = []
    evaluator = Evaluator(ledger, method=method, executor=executor, on_error=on_error)
    run = _Run(optimizer, evaluator, obj_rng, identity, objective.sampler(), path is not None)
    if resume and path is not None and path.exists():
        run.restore(state, objective, path)
    if path is not None:
        preflight.check_checkpointable(optimizer)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, unit="eval", desc=method, leave=False, dynamic_ncols=True)
        bar.update(ledger.nfev)

    ledger.restart_clock()
    try:
        with _InterruptGuard() as guard:
            reasons = _run_ask_tell(
                run,
                objective,
                callback,
                max_time,
                catch_interrupt,
                bar,
                path,
                checkpoint_every,
                guard,
            )
            if path is not None and not run.dirty:
                run.save(path)  # the loop's state, before the final evaluation
            return _final_result(run, objective, reasons, catch_interrupt)
    finally:
        run.optimizer.close()
        if bar is not None:
            bar.close()


def _intermediate(run: _Run) -> Result:
    """The result so far, for the callback (no history: it grows with the run)."""
    opt = run.optimizer
    status, message = stop_status({}, opt.ledger)
    return build_result(
        opt.ledger,
        x=opt.ledger.best_x,
        fun=opt.ledger.best_f,
        status=status,
        message=message,
        method=opt.name,
        options=opt.options(),
        recommendation=opt.recommend(),
        history=False,
    )


def _interrupted(opt: Optimizer, path: Path | None) -> dict[str, Any]:
    return {
        "interrupted": f"interrupted (KeyboardInterrupt) after {opt.nit} iterations; the "
        "result so far" + ("" if path is None else f" (resume from {path} with resume=True)")
    }


def _run_ask_tell(
    run: _Run,
    objective: Objective,
    callback: Callable[[Result], Any] | None,
    max_time: float | None,
    catch_interrupt: bool,
    bar: Any,
    path: Path | None,
    checkpoint_every: int,
    guard: _InterruptGuard,
) -> dict[str, Any]:
    """The documented ask/tell loop; returns the reasons it ended."""
    opt, ev, ledger = run.optimizer, run.evaluator, run.optimizer.ledger
    needs_grad = opt.needs_gradient
    stochastic = objective.is_stochastic
    # a callback called at marks (``next_nfev``) watches only there: the lean loop runs
    # up to each mark (one evaluation per iteration)
    marked = callback is not None and hasattr(getattr(callback, "callback", callback), "next_nfev")
    watched = (
        (callback is not None and not marked)
        or bar is not None
        or path is not None
        or ev.executor is not None
        or ev.on_error != "raise"
        or ledger.xs is not None
    )
    stream = lean_stream(run, objective, watched=watched)
    pairs = lean_pairs(run, objective, watched=watched) if stream is None else None
    population = (
        lean_population(run, objective, watched=watched)
        if stream is None and pairs is None
        else None
    )
    try:
        while True:
            guard.hold()
            reasons = opt.stop()  # budget, max_iter, the method's own (may ask)
            guard.release()
            if reasons:
                return reasons
            if max_time is not None and ledger.elapsed() >= max_time:
                return {"max_time": f"reached max_time={max_time} s"}
            if (
                stream is not None
                or population is not None
                or (pairs is not None and pairs_ready(run))
            ):
                # a run that nothing watches (but a callback at marks): the same bits,
                # up to the callback's next mark
                mark = 0 if callback is None else int(getattr(callback, "next_nfev", 0))
                left = None if callback is None else max(1, mark - ledger.nfev)
                if stream is not None:
                    run_lean(run, stream, guard, max_time, left)
                elif pairs is not None:
                    run_lean_pairs(run, pairs, guard, max_time, left)
                elif population is not None:
                    run_lean_population(run, population, guard, max_time, left)
                if callback is not None and ledger.nfev >= mark:
                    try:
                        callback(_intermediate(run))
                    except StopIteration:
                        return {"callback": "stopped by the callback"}
                continue
            guard.hold()
            X = opt.ask()
            # a retried iteration (after an error or a resume) keeps its realization
            if (
                stochastic
                and run.sample_key != opt.nit
                and (opt.wants_new_sample() or run.sample is None)
            ):
                run.draw_sample(objective)
            guard.release()
            sample = run.sample if stochastic else objective
            assert sample is not None
            ev.nit = opt.nit
            if needs_grad:
                values, grads = ev.value_and_grad(sample, X)
            elif opt.needs_jvp:  # forward mode: one directional derivative per point
                values, grads = ev.value_and_jvp(sample, X, opt.directions())
            else:
                values, grads = ev.evaluate(sample, X), None
            guard.hold()
            opt.tell_evaluated(values, grads)  # the evaluator checked what it returns
            if ev.errors:
                ledger.book_errors(ev.errors)
            if ledger.xs is not None:
                ledger.xs.append(opt.recommend())
            guard.release()
            if bar is not None:
                bar.update(X.shape[0])
            if path is not None and opt.nit % checkpoint_every == 0:
                run.save(path)
            if callback is not None and ledger.nfev >= getattr(callback, "next_nfev", 0):
                try:
                    callback(_intermediate(run))
                except StopIteration:
                    return {"callback": "stopped by the callback"}
    except BaseException as exc:
        consistent = not guard.critical  # not raised from inside ask or tell
        guard.critical = guard.pending = False
        if isinstance(exc, KeyboardInterrupt) and catch_interrupt:
            return _interrupted(opt, path)
        run.dirty = not consistent
        if path is not None and consistent:
            run.save(path)
        raise


def _measured_noisy(opt: Optimizer, fun: float) -> bool:
    """Whether the method measured noise well above rounding (``h="auto"``, ``c="auto"``)."""
    noise = getattr(opt, "noise", None)
    if not noise or not noise.get("reliable"):
        return False
    scale = max(1.0, abs(fun)) if np.isfinite(fun) else 1.0
    return bool(noise["level"] > 1e3 * np.finfo(np.float64).eps * scale)


def _detect_noise(run: _Run, objective: Objective, value: float, fun: float) -> str:
    """Re-measure the best point when the recommendation measured worse; "" if no noise.

    A deterministic objective gives the best point its value again; a noisy one
    shows that the best value was a lucky draw. Not for gradient methods (an exact
    gradient belongs to a deterministic objective) or when the budget is spent.
    """
    opt, ev, ledger = run.optimizer, run.evaluator, run.optimizer.ledger
    if (
        objective.is_stochastic
        or opt.needs_gradient
        or not value > fun
        or ledger.budget is None
        or ledger.nfev >= ledger.budget
        or _measured_noisy(opt, fun)
    ):
        return ""
    best = ledger.best_x[None, :]
    values = ev.evaluate(objective, best.copy())  # the objective's copy
    ledger.book(best, values)
    ledger.book_errors(ev.errors)
    again = float(values[0])
    if again == fun or (np.isnan(again) and np.isnan(fun)):
        return ""
    return (
        f"noise detected (the best point measured {fun:.6g}, then {again:.6g}): "
        "the result is the method's estimate with its value re-measured"
    )


def _final_result(
    run: _Run,
    objective: Objective,
    reasons: dict[str, Any],
    catch_interrupt: bool = True,
) -> Result:
    """Evaluate the recommendation if the method may not have, and build the Result."""
    opt, ev = run.optimizer, run.evaluator
    ledger = opt.ledger
    x, fun = ledger.best_x, ledger.best_f
    interrupted = detected = ""
    if (
        "interrupted" not in reasons
        and ledger.budget is not None
        and ledger.nfev < ledger.budget
        and (opt.recommends_unevaluated or ledger.nfev == 0)
    ):
        # evaluate the method's own recommendation (an SPSA iterate, a CMA-ES mean),
        # or x0 when the budget did not allow one iteration
        rec = opt.recommend()
        if opt.box is not None:  # rounding at a bound: never evaluate outside
            rec = opt.box.clip(rec)
        try:
            sample = run.draw_final(objective) if objective.is_stochastic else objective
            point = rec[None, :].copy()  # the objective's copy
            values = ev.evaluate(sample, point)
            ledger.book(rec[None, :], values)
            ledger.book_errors(ev.errors)
            value = float(values[0])
            detected = _detect_noise(run, objective, value, fun)
        except KeyboardInterrupt:
            if not catch_interrupt:
                raise
            value = np.inf
            interrupted = (
                "interrupted (KeyboardInterrupt) while evaluating the final recommendation; "
            )
        noisy = objective.is_stochastic or _measured_noisy(opt, fun) or bool(detected)
        if np.isfinite(value) and (noisy or value <= fun):
            x, fun = rec, value
    status, message = stop_status(reasons, ledger)
    if interrupted:
        status, message = Status.INTERRUPTED, interrupted + message
    res = build_result(
        ledger,
        x=x,
        fun=fun,
        status=status,
        message=message,
        method=opt.name,
        options=opt.options(),
        notes=opt.notes() + ([detected] if detected else []),
    )
    res["dtype"] = objective.dtype.name
    res.update(opt.extra())
    noise = getattr(opt, "noise", None)
    if noise is not None:
        res["noise"] = dict(noise)
    if hasattr(opt, "describe"):
        res["auto"] = opt.describe()
        inner_noise = getattr(getattr(opt, "inner", None), "noise", None)
        if inner_noise is not None:
            res["noise"] = dict(inner_noise)
    return res
