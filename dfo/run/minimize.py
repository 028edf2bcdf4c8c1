"""``minimize``: the one run loop, written once over ask/tell."""

from __future__ import annotations

import copy
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from dfo.exceptions import (
    GradientNotAvailableError,
    InvalidOptionError,
    ShapeError,
)
from dfo.files import atomic_write
from dfo.objective import Objective, as_objective
from dfo.optimizers import build_optimizer, get_method, method_options, methods
from dfo.optimizers.base import Optimizer, check_seed, check_x0
from dfo.result import HISTORY_FIELDS, Result, Status, is_success
from dfo.run import preflight
from dfo.run.callbacks import as_result_callback
from dfo.run.evaluation import BudgetExhausted, Evaluator, OnError

__all__ = ["minimize"]

_CHECKPOINT_VERSION = 2


def _check_budget(budget: Any, name: str = "budget") -> int:
    if isinstance(budget, bool) or not isinstance(budget, Integral):
        if isinstance(budget, float) and budget.is_integer() and budget > 0:
            return int(budget)
        raise TypeError(f"{name} must be a positive integer; got {budget!r}")
    if budget <= 0:
        raise ValueError(f"{name} must be a positive integer; got {budget}")
    return int(budget)


def _check_positive(name: str, value: Any, kind: type = float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a positive {kind.__name__}; got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be a positive {kind.__name__}; got {value!r}")


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

    The objective's realization (minibatch, noise) of the current iteration is not
    stored: ``sample_state`` is the generator state it was drawn from, and
    ``sample_key`` the iteration it belongs to, so a resumed run draws it again.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        evaluator: Evaluator,
        obj_rng: np.random.Generator,
        config: dict[str, Any],
        history_x: bool = False,
    ):
        self.optimizer = optimizer
        self.evaluator = evaluator
        self.obj_rng = obj_rng
        self.config = config
        self.history: list[tuple[int, int, int, float, float, float]] = []
        #: the method's recommendation after each iteration (``history_x=True``)
        self.xs: list[np.ndarray] | None = [] if history_x else None
        self.elapsed_before = 0.0
        self.sample: Objective | None = None
        self.sample_state: dict[str, Any] | None = None
        self.sample_key = -1
        self.dirty = False  # an error inside ask/tell left a state not worth saving

    def draw_sample(self, objective: Objective) -> None:
        """Draw the objective's realization for the optimizer's next iteration."""
        self.sample_state = self.obj_rng.bit_generator.state
        self.sample = objective.realization(self.obj_rng)
        self.sample_key = self.optimizer.nit

    def save(self, path: Path) -> None:
        state = {
            "version": _CHECKPOINT_VERSION,
            "config": self.config,
            "optimizer": self.optimizer,
            "evaluator": self.evaluator.state(),
            "obj_rng": self.obj_rng,
            "history": self.history,
            "xs": self.xs,
            "elapsed": self.elapsed_before,
            "sample_state": self.sample_state,
            "sample_key": self.sample_key,
        }
        atomic_write(path, lambda fh: pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL))

    def restore(self, state: dict[str, Any], objective: Objective) -> None:
        """Take over the counters, history and realization of a checkpoint."""
        self.evaluator.restore(state["evaluator"])
        self.history = list(state["history"])
        if self.xs is not None:
            self.xs = list(state["xs"])
        self.elapsed_before = state["elapsed"]
        self.sample_key = state["sample_key"]
        self.sample_state = state["sample_state"]
        if self.sample_state is not None:
            rng = copy.deepcopy(self.obj_rng)
            rng.bit_generator.state = self.sample_state
            self.sample = objective.realization(rng)


def _load_checkpoint(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`minimize` with the same ``config``, or raise."""
    try:
        with open(path, "rb") as fh:
            state = pickle.load(fh)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
        raise ValueError(f"{path} is not a readable dfo checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("version") != _CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a dfo checkpoint (version {_CHECKPOINT_VERSION})")
    saved = state["config"]
    differ = [key for key in config if saved.get(key) != config[key]]
    if differ:
        details = "; ".join(
            f"{key}: checkpoint has {saved.get(key)}, minimize was given {config[key]}"
            for key in differ
        )
        raise InvalidOptionError(
            f"checkpoint {path} belongs to a different run ({details}); "
            "pass the same method, seed, options and dimension to resume, "
            "or resume=False to start afresh"
        )
    return state


def _run_config(
    method: str, dim: int, seed: Any, options: dict[str, Any], history_x: bool = False
) -> dict[str, Any]:
    """What must match between a checkpointed run and the call that resumes it."""
    config = {
        "method": repr(method),
        "dim": str(dim),
        "seed": repr(seed),
        "options": repr(sorted(options.items())),
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
    seed: int | None = None,
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
        point so far. Raising ``StopIteration`` ends the run cleanly.
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
    budget = _check_budget(budget)
    _check_positive("max_time", max_time)
    if max_iter is not None:
        _check_budget(max_iter, "max_iter")
    seed = check_seed(seed)
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, Integral):
        raise TypeError(f"checkpoint_every must be a positive integer; got {checkpoint_every!r}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive integer; got {checkpoint_every}")
    flags = {
        "catch_interrupt": catch_interrupt,
        "resume": resume,
        "progress": progress,
        "history_x": history_x,
    }
    for name, flag in flags.items():
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"{name} must be True or False; got {flag!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= (the file to resume from)")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got {type(callback).__name__}")
    if callback is not None:
        callback = as_result_callback(callback)

    cls = get_method(method)
    if (cls.needs_gradient and not objective.has_gradient) or (
        cls.needs_jvp and not objective.has_jvp
    ):
        raise _gradient_error(method, objective)
    preflight.check_hooks(objective, needs_gradient=cls.needs_gradient)
    preflight.check_picklable(objective, executor)
    if method == "auto":  # what auto needs to know of the objective
        options = {
            "gradient": bool(objective.has_gradient),
            "stochastic": bool(objective.is_stochastic),
            **options,
        }
    seeds = np.random.SeedSequence(seed).spawn(2)
    evaluator = Evaluator(budget, method=method, executor=executor, on_error=on_error)
    path = preflight.check_checkpoint(checkpoint)
    if objective.dtype != np.float64 and "dtype" in method_options(method):
        options.setdefault("dtype", objective.dtype.name)  # e.g. fd-sgd's steps
    config = _run_config(method, objective.dim, seed, options, bool(history_x))
    if resume and path is not None and path.exists():
        state = _load_checkpoint(path, config)
        run = _Run(state["optimizer"], evaluator, state["obj_rng"], config, bool(history_x))
        run.restore(state, objective)
    else:
        optimizer = build_optimizer(method, x0, seed=seeds[0], budget=budget, **options)
        run = _Run(optimizer, evaluator, np.random.default_rng(seeds[1]), config, bool(history_x))

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, unit="eval", desc=method, leave=False, dynamic_ncols=True)
        bar.update(evaluator.nfev)

    start = time.perf_counter() - run.elapsed_before
    try:
        with _InterruptGuard() as guard:
            status, message = _run_ask_tell(
                run,
                objective,
                start,
                callback,
                max_time,
                max_iter,
                catch_interrupt,
                bar,
                path,
                checkpoint_every,
                guard,
            )
            if path is not None and not run.dirty:
                # the loop's state, before the final evaluation of the recommendation
                run.elapsed_before = time.perf_counter() - start
                run.save(path)
            return _final_result(run, objective, start, status, message, catch_interrupt)
    finally:
        run.optimizer.close()
        if bar is not None:
            bar.close()


def _intermediate(run: _Run, start: float) -> Result:
    opt, ev = run.optimizer, run.evaluator
    return Result(
        x=opt.best_x,
        fun=opt.best_f,
        recommendation=opt.recommend(),
        value=opt.last_value,
        nfev=ev.nfev,
        ngev=ev.ngev,
        njvp=ev.njvp,
        nit=opt.nit,
        n_nonfinite=ev.n_nonfinite,
        time=time.perf_counter() - start,
        method=opt.name,
    )


def _stop_status(reasons: dict[str, Any]) -> tuple[Status, str]:
    message = "; ".join(f"{key}: {value}" for key, value in reasons.items())
    if "nonfinite" in reasons:
        return Status.NONFINITE, message
    if "stalled" in reasons:
        return Status.STALLED, message
    if "budget" in reasons:
        return Status.BUDGET, message
    return Status.CONVERGED, message


def _run_ask_tell(
    run: _Run,
    objective: Objective,
    start: float,
    callback: Callable[[Result], Any] | None,
    max_time: float | None,
    max_iter: int | None,
    catch_interrupt: bool,
    bar: Any,
    path: Path | None,
    checkpoint_every: int,
    guard: _InterruptGuard,
) -> tuple[Status, str]:
    opt, ev, history = run.optimizer, run.evaluator, run.history
    needs_grad = opt.needs_gradient
    # one evaluation is kept for the final recommendation when it may not be evaluated
    # (an SPSA or gradient iterate, a CMA-ES mean: points the method never asked for)
    # (and, for a deterministic-looking objective, one more to re-measure the best point:
    # noise shows as a second value that differs from the first)
    separate = opt.recommend() is not opt.best_x
    reserve = 1 if objective.is_stochastic else 0 if not separate else 1 if needs_grad else 2
    budget = ev.budget - reserve
    stochastic = objective.is_stochastic
    # counters at the start of an iteration that has not been told yet: an iteration
    # cut short (Ctrl-C, an error) is rolled back, so the state is that between steps
    before: dict[str, int] | None = None
    try:
        while True:
            reasons = opt.stop()
            if reasons:
                return _stop_status(reasons)
            if max_iter is not None and opt.nit >= max_iter:
                return Status.MAX_ITER, f"reached max_iter={max_iter} iterations"
            if max_time is not None and time.perf_counter() - start >= max_time:
                return Status.MAX_TIME, f"reached max_time={max_time} s"
            before = ev.state()
            guard.hold()
            X = opt.ask()
            if ev.nfev + X.shape[0] > budget:
                guard.release()
                return Status.BUDGET, (
                    f"budget exhausted: {ev.nfev} of {ev.budget} evaluations spent"
                )
            # a retried iteration (after an error or a resume) keeps its realization
            if stochastic and run.sample_key != opt.nit and (opt.new_sample or run.sample is None):
                run.draw_sample(objective)
            guard.release()
            sample = run.sample if stochastic else objective
            ev.nit = opt.nit
            if needs_grad:
                values, grads = ev.value_and_grad(sample, X)
            elif opt.needs_jvp:  # forward mode: one directional derivative per point
                values, grads = ev.value_and_jvp(sample, X, opt.directions())
            else:
                values, grads = ev.evaluate(sample, X), None
            guard.hold()
            opt.tell(X, values, grads)
            history.append(
                (
                    opt.nit,
                    ev.nfev,
                    ev.ngev,
                    time.perf_counter() - start,
                    opt.last_value,
                    opt.best_f,
                )
            )
            if run.xs is not None:
                run.xs.append(np.array(opt.recommend(), dtype=np.float64))
            before = None
            guard.release()
            if bar is not None:
                bar.update(X.shape[0])
            if path is not None and opt.nit % checkpoint_every == 0:
                run.elapsed_before = time.perf_counter() - start
                run.save(path)
            if callback is not None:
                try:
                    callback(_intermediate(run, start))
                except StopIteration:
                    return Status.CALLBACK, "stopped by the callback"
    except BaseException as exc:
        consistent = not guard.critical  # not raised from inside ask or tell
        guard.critical = guard.pending = False
        if before is not None:
            ev.restore(before)
        if isinstance(exc, KeyboardInterrupt) and catch_interrupt:
            return Status.INTERRUPTED, (
                f"interrupted (KeyboardInterrupt) after {opt.nit} iterations; the result so far"
                + ("" if path is None else f" (resume from {path} with resume=True)")
            )
        run.dirty = not consistent
        if path is not None and consistent:
            run.elapsed_before = time.perf_counter() - start
            run.save(path)
        raise


def _measured_noisy(opt: Optimizer, fun: float) -> bool:
    """Whether the method measured noise well above rounding (``h="auto"``, ``c="auto"``)."""
    noise = getattr(opt, "noise", None)
    if not noise or not noise.get("reliable"):
        return False
    scale = max(1.0, abs(fun)) if np.isfinite(fun) else 1.0
    return bool(noise["level"] > 1e3 * np.finfo(np.float64).eps * scale)


def _detect_noise(run: _Run, objective: Objective, value: float) -> str:
    """Re-measure the best point when the recommendation measured worse; "" if no noise.

    A deterministic objective gives the best point its value again; a noisy one
    shows that the best value was a lucky draw. Not for gradient methods (an exact
    gradient belongs to a deterministic objective) or when the budget is spent.
    """
    opt, ev = run.optimizer, run.evaluator
    fun = opt.best_f
    if (
        objective.is_stochastic
        or opt.needs_gradient
        or not value > fun
        or ev.nfev >= ev.budget
        or _measured_noisy(opt, fun)
    ):
        return ""
    again = float(ev.evaluate(objective, opt.best_x[None, :])[0])
    if again == fun or (np.isnan(again) and np.isnan(fun)):
        return ""
    return (
        f"noise detected (the best point measured {fun:.6g}, then {again:.6g}): "
        "the result is the method's estimate with its value re-measured"
    )


def _final_result(
    run: _Run,
    objective: Objective,
    start: float,
    status: Status,
    message: str,
    catch_interrupt: bool = True,
) -> Result:
    opt, ev = run.optimizer, run.evaluator
    x, fun = opt.best_x, opt.best_f
    rec = opt.recommend()
    detected = ""
    if (
        status is not Status.INTERRUPTED
        and ev.nfev < ev.budget
        and (rec is not opt.best_x or ev.nfev == 0)
    ):
        # evaluate the method's own recommendation (an SPSA iterate, a CMA-ES mean),
        # or x0 when the budget did not allow one iteration
        try:
            sample = objective.realization(run.obj_rng) if objective.is_stochastic else objective
            value = float(ev.evaluate(sample, rec[None, :])[0])
            detected = _detect_noise(run, objective, value)
        except BudgetExhausted:  # pragma: no cover - guarded above
            value = np.inf
        except KeyboardInterrupt:
            if not catch_interrupt:
                raise
            value = np.inf
            status = Status.INTERRUPTED
            message = (
                "interrupted (KeyboardInterrupt) while evaluating the final recommendation; "
                + message
            )
        noisy = objective.is_stochastic or _measured_noisy(opt, fun) or bool(detected)
        if (noisy and np.isfinite(value)) or value <= fun:
            x, fun = rec, value
    if status is Status.BUDGET:  # counted after the final evaluation
        message = f"budget exhausted: {ev.nfev} of {ev.budget} evaluations spent"
    for note in opt.notes() + ([detected] if detected else []):
        message += f"; {note}"
    if ev.n_nonfinite:
        message += f"; {ev.n_nonfinite} of {ev.nfev} evaluations were not finite (nan or inf)"
        if ev.n_errors:
            message += f", {ev.n_errors} of them raised errors"
    if not np.isfinite(fun) and status is not Status.INTERRUPTED:
        status = Status.NONFINITE
        message = "no finite value was found; " + message
    history = np.array(run.history, dtype=np.float64).reshape(-1, len(HISTORY_FIELDS))
    hist = {name: history[:, i] for i, name in enumerate(HISTORY_FIELDS)}
    for name in ("nit", "nfev", "ngev"):
        hist[name] = hist[name].astype(np.int64)
    extra: dict[str, Any] = {}
    if getattr(opt, "noise", None) is not None:
        extra["noise"] = dict(opt.noise)  # type: ignore[attr-defined]
    if run.xs is not None:
        hist["x"] = np.array(run.xs, dtype=np.float64).reshape(-1, opt.dim)
    if hasattr(opt, "describe"):
        extra["auto"] = opt.describe()
        inner_noise = getattr(getattr(opt, "inner", None), "noise", None)
        if inner_noise is not None:
            extra["noise"] = dict(inner_noise)
    return Result(
        **extra,
        x=np.array(x, copy=True),
        fun=float(fun),
        nfev=ev.nfev,
        ngev=ev.ngev,
        njvp=ev.njvp,
        nit=opt.nit,
        n_nonfinite=ev.n_nonfinite,
        n_errors=ev.n_errors,
        success=is_success(status, fun),
        status=status,
        message=message,
        history=hist,
        method=opt.name,
        options=opt.options(),
        time=time.perf_counter() - start,
        dtype=objective.dtype.name,
        **opt.extra(),
    )
