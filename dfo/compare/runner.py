"""Run several methods x seeds on one task and keep one record per finished run.

Each run is ``dfo.minimize(task.objective, task.start(seed), method, budget=...,
seed=seed, callback=monitor, **options)``. The monitor evaluates the full
training loss and the held-out metric of the method's *recommendation* at
log-spaced evaluation counts, by calling the network directly: those
evaluations are not charged to the method's budget, their time is subtracted
from its wall time, and they are counted apart.

Runs are independent and each is determined by its seed, so they can run in any
order and in parallel processes (``jobs``); the table is computed from the
finished records only, which makes a resumed compare give the same numbers as an
uninterrupted one (wall times and the measured gradient cost aside).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from dfo.compare import folder as run_folder
from dfo.compare import records as rec
from dfo.compare.cost import GradientCost, measure_gradient_cost
from dfo.compare.plots import PLOTS, warm_up, write_plot, write_plots
from dfo.compare.tasks import Task, get_task
from dfo.exceptions import InvalidOptionError
from dfo.files import atomic_write
from dfo.optimizers import build_optimizer, check_options, get_method
from dfo.options import check_budget
from dfo.result import Result
from dfo.result_io import result_to_document
from dfo.run.minimize import minimize
from dfo.threads import limit_blas

__all__ = [
    "CompareConfig",
    "CompareResult",
    "ResumeMismatchError",
    "RunSpec",
    "plan_runs",
    "run_compare",
    "run_one",
]

#: per-method keys of ``CompareConfig.options`` that are not method options
RUN_KEYS = ("budget", "max_time")

#: rows of the runner's per-iteration history kept in a record (log-spaced)
HISTORY_ROWS = 400

_PLOT_FILES = (
    "loss_vs_cost.png",
    "loss_vs_time.png",
    "final_metric.png",
    "runtime_distribution.png",
)


class ResumeMismatchError(InvalidOptionError):
    """``resume`` was asked for a run folder made with other settings."""


@dataclass(frozen=True)
class CompareConfig:
    """What to compare; unset fields take the task's defaults.

    Parameters
    ----------
    task : str, default "digits"
    task_options : dict
        ``batch_size=`` for network tasks, ``dim=`` for test functions.
    methods : sequence of str, optional
        Default: the task's (all five methods and random search).
    seeds : sequence of int, default (0, 1, 2)
    budget : int, optional
        Evaluations per run; default: the task's.
    max_time : float, optional
        Wall-clock limit per run, in seconds (results then depend on the machine).
    options : dict
        Method -> options, merged over the task's tuned options. The keys
        ``"budget"`` and ``"max_time"`` set that method's budget and time limit.
    n_monitor : int, default 40
        Log-spaced monitoring points per run (plus the start and the end).
    """

    task: str = "digits"
    task_options: dict[str, Any] = field(default_factory=dict)
    methods: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    budget: int | None = None
    max_time: float | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_monitor: int = 40

    def to_dict(self) -> dict[str, Any]:
        return rec.to_jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompareConfig:
        data = dict(data)
        for key in ("methods", "seeds"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs; a picklable recipe (the task is rebuilt from its name).

    Parameters
    ----------
    task : str
    task_options : dict
        Keyword arguments of :func:`~dfo.compare.tasks.get_task`.
    method : str
    seed : int
        Seeds the starting point and the run.
    budget : int
        Evaluations for this run.
    max_time : float or None
        Wall-clock limit in seconds.
    options : dict
        The method's options (the task's defaults merged with the user's).
    n_monitor : int, default 40
        Log-spaced monitoring points.
    """

    task: str
    task_options: dict[str, Any]
    method: str
    seed: int
    budget: int
    max_time: float | None
    options: dict[str, Any]
    n_monitor: int = 40

    @property
    def key(self) -> tuple[str, int]:
        return (self.method, self.seed)


@dataclass
class CompareResult:
    """What :func:`run_compare` returns.

    Attributes
    ----------
    task : Task
    specs : list of RunSpec
        The planned runs, in table order.
    records : list of dict
        One per finished run, in the order of ``specs``.
    gradient_cost : GradientCost or None
    table : dfo.compare.table.Table
    out : Path or None
        The run folder.
    skipped : int
        Damaged lines of ``runs.jsonl`` skipped on resume (their runs are run again).
    skipped_reasons : list of str
        Why, for the first few.
    """

    task: Task
    specs: list[RunSpec]
    records: list[dict[str, Any]]
    gradient_cost: GradientCost | None
    table: Any
    out: Path | None
    skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)


# -- planning ------------------------------------------------------------------------------


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise InvalidOptionError(f"seeds must be integers >= 0; got {seed!r}")
    return int(seed)


def _check_time(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < float(value) < np.inf:
        raise InvalidOptionError(f"{what} must be a positive number of seconds; got {value!r}")
    return float(value)


def plan_runs(config: CompareConfig, *, check_values: bool = True) -> tuple[Task, list[RunSpec]]:
    """Resolve ``config`` against its task's defaults into the list of runs.

    Option names and values are checked here, before any run starts.

    Parameters
    ----------
    config : CompareConfig
    check_values : bool, default True
        Also check the option values, by building each method's optimizer once
        (:func:`check_run`). False leaves that to the caller (:func:`run_compare` has
        the worker processes do it, where heavy libraries such as pycma are imported
        anyway).

    Returns
    -------
    task : Task
    specs : list of RunSpec
        Ordered by method, then seed (the table's order).

    Raises
    ------
    InvalidOptionError
        Unknown task, method or option, or a bad value.
    """
    task = get_task(config.task, **config.task_options)
    methods = config.methods if config.methods is not None else task.methods
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods:
        raise InvalidOptionError("methods must name at least one method")
    if len(set(methods)) != len(methods):
        raise InvalidOptionError(f"methods lists a method twice: {list(methods)}")
    for method in methods:
        get_method(method)
    for method in config.options:
        if method not in methods:
            raise InvalidOptionError(
                f"options were given for {method!r}, which is not among the methods "
                f"compared: {list(methods)}"
            )
    seeds = tuple(_check_seed(s) for s in config.seeds)
    if not seeds:
        raise InvalidOptionError("seeds must hold at least one seed")
    if len(set(seeds)) != len(seeds):
        raise InvalidOptionError(f"seeds lists a seed twice: {list(seeds)}")
    budget = check_budget(config.budget if config.budget is not None else task.budget, "budget")
    max_time = _check_time(config.max_time, "max_time")
    if (
        isinstance(config.n_monitor, bool)
        or not isinstance(config.n_monitor, Integral)
        or config.n_monitor < 1
    ):
        raise InvalidOptionError(f"n_monitor must be a positive integer; got {config.n_monitor!r}")
    x0 = task.start(seeds[0])
    specs_by_method = {}
    for method in methods:
        user = dict(config.options.get(method, {}))
        m_budget = user.pop("budget", None)
        m_budget = (
            check_budget(m_budget, f"{method}.budget")
            if m_budget is not None
            else task.method_budget(method, budget)
        )
        m_time = _check_time(user.pop("max_time", max_time), f"{method}.max_time")
        options = {**task.options.get(method, {}), **user}
        check_options(method, options)
        cls = get_method(method)
        if (cls.needs_gradient and not task.objective.has_gradient) or (
            cls.needs_jvp and not task.objective.has_jvp
        ):
            raise InvalidOptionError(
                f"method {method!r} needs gradients; task {task.name!r} has none"
            )
        if check_values:
            build_optimizer(method, x0, seed=0, budget=m_budget, **options)
        specs_by_method[method] = (m_budget, m_time, options)
    specs = [
        RunSpec(
            task=task.name,
            task_options=dict(config.task_options),
            method=method,
            seed=seed,
            budget=specs_by_method[method][0],
            max_time=specs_by_method[method][1],
            options=specs_by_method[method][2],
            n_monitor=int(config.n_monitor),
        )
        for seed in seeds
        for method in methods
    ]
    # table order: method, then seed
    order = {m: i for i, m in enumerate(methods)}
    specs.sort(key=lambda s: (order[s.method], seeds.index(s.seed)))
    return task, specs


def resolved(config: CompareConfig, specs: Sequence[RunSpec]) -> dict[str, Any]:
    """The fully resolved description of a compare (what resume must match)."""
    methods = list(dict.fromkeys(s.method for s in specs))
    seeds = list(dict.fromkeys(s.seed for s in specs))
    runs: dict[str, Any] = {}
    for s in specs:
        runs.setdefault(
            s.method, {"budget": s.budget, "max_time": s.max_time, "options": s.options}
        )
    return rec.to_jsonable(
        {
            "task": config.task,
            "task_options": config.task_options,
            "methods": methods,
            "seeds": seeds,
            "n_monitor": config.n_monitor,
            "runs": runs,
        }
    )


# -- one run ------------------------------------------------------------------------------


class Monitor:
    """Callback that records the full training loss and test metric, uncharged.

    It evaluates the method's recommendation when ``nfev`` first reaches each of
    ``n_points`` log-spaced marks between 1 and ``budget``; :meth:`observe` also
    records the start and the end. The run loop calls it only at the marks and every
    :attr:`PARENT_CHECK` evaluations (:attr:`next_nfev`), when a worker also checks
    that the compare that started it still runs.
    """

    #: evaluations between two checks that the parent process is alive
    PARENT_CHECK = 1_000

    def __init__(self, task: Task, budget: int, n_points: int) -> None:
        self.task = task
        marks = np.unique(np.geomspace(1, budget, max(2, n_points)).astype(np.int64))
        self.marks = marks.tolist()
        self.next = 0
        self.checked = 0  # evaluations at the last call
        self.rows: list[tuple[int, int, int, float, float, float | None]] = []
        self.n_points = 0
        self.seconds = 0.0
        self.njvp: list[int] = []  # directional derivatives (forward mode) at each row

    def observe(
        self, x: np.ndarray, nfev: int, ngev: int, nit: int, elapsed: float, njvp: int = 0
    ) -> None:
        """Evaluate ``x`` and record it at the given counters (``elapsed``: method seconds)."""
        start = time.perf_counter()
        loss = float(self.task.train_loss(x))
        metric = None if self.task.test_metric is None else float(self.task.test_metric(x))
        self.seconds += time.perf_counter() - start
        self.n_points += 1
        self.rows.append((int(nfev), int(ngev), int(nit), float(elapsed), loss, metric))
        self.njvp.append(int(njvp))

    @property
    def next_nfev(self) -> int:
        """Evaluations after which the run loop calls the monitor next."""
        mark = self.marks[self.next] if self.next < len(self.marks) else np.iinfo(np.int64).max
        return min(int(mark), self.checked + self.PARENT_CHECK)

    def __call__(self, intermediate_result: Result) -> None:
        res = intermediate_result
        self.checked = int(res.nfev)
        if _PARENT_PID is not None and os.getppid() != _PARENT_PID:
            raise ParentGone("the compare process that started this run has exited")
        if self.next >= len(self.marks) or res.nfev < self.marks[self.next]:
            return
        while self.next < len(self.marks) and self.marks[self.next] <= res.nfev:
            self.next += 1
        self.observe(
            res.recommendation,
            res.nfev,
            res.ngev,
            res.nit,
            res.time - self.seconds,
            res.get("njvp", 0),
        )

    def curve(self) -> dict[str, list[Any]]:
        names = ("nfev", "ngev", "nit", "time", "train_loss", "test_metric")
        curve = {name: [row[i] for row in self.rows] for i, name in enumerate(names)}
        return {**curve, "njvp": list(self.njvp)}


def _thin_history(
    history: dict[str, np.ndarray], rows: int = HISTORY_ROWS
) -> dict[str, np.ndarray]:
    n = len(history.get("nit", ()))
    if n > rows:
        keep = np.unique(np.geomspace(1, n, rows).astype(np.int64) - 1)
        keep = np.union1d(keep, [n - 1])
    else:
        keep = np.arange(n)
    return {name: np.asarray(values)[keep] for name, values in history.items()}


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Run one method with one seed and return its record (a JSON-ready dict).

    Parameters
    ----------
    spec : RunSpec

    Returns
    -------
    dict
        The settings, ``status``, ``message``, ``nfev``, ``ngev``, ``nit``,
        ``time`` (method seconds, monitoring excluded), ``fun``, the final
        ``train_loss`` and ``test_metric`` (None without held-out data) at the
        returned point, the same at the start, ``monitor`` (points, evaluations,
        seconds and the curve) and ``result``: the run's :class:`~dfo.Result` in
        the format of :meth:`dfo.Result.save` (read it back with
        :func:`dfo.result_io.result_from_document`), its history at most 400 rows,
        log-spaced in iterations, the last one kept.

    Notes
    -----
    BLAS runs with one thread (:func:`dfo.threads.limit_blas`), whatever process or
    cluster worker runs the spec; ``blas_threads`` records what BLAS reported.
    ``KeyboardInterrupt`` is not caught: an interrupted run leaves no record.
    """
    with limit_blas(1) as blas:
        record = _run_one(spec)
    record["blas_threads"] = blas
    return record


def _run_one(spec: RunSpec) -> dict[str, Any]:
    task = get_task(spec.task, **spec.task_options)
    x0 = task.start(spec.seed)
    monitor = Monitor(task, spec.budget, spec.n_monitor)
    monitor.observe(x0, 0, 0, 0, 0.0)
    start_loss, start_metric = monitor.rows[0][4], monitor.rows[0][5]
    res = minimize(
        task.objective,
        x0,
        spec.method,
        budget=spec.budget,
        seed=spec.seed,
        callback=monitor,
        max_time=spec.max_time,
        catch_interrupt=False,
        **spec.options,
    )
    elapsed = max(0.0, float(res.time) - monitor.seconds)
    monitor.observe(res.x, res.nfev, res.ngev, res.nit, elapsed, res.get("njvp", 0))
    final_loss, final_metric = monitor.rows[-1][4], monitor.rows[-1][5]
    return rec.to_jsonable(
        {
            "task": spec.task,
            "task_options": spec.task_options,
            "method": spec.method,
            "seed": spec.seed,
            "budget": spec.budget,
            "max_time": spec.max_time,
            "options": spec.options,
            "method_options": res.get("options", {}),
            "status": res.status,
            "message": res.message,
            "success": res.success,
            "nfev": res.nfev,
            "ngev": res.ngev,
            "njvp": res.get("njvp", 0),
            "nit": res.nit,
            "n_nonfinite": res.n_nonfinite,
            "time": elapsed,
            "fun": res.fun,
            "train_loss": final_loss,
            "test_metric": final_metric,
            "start_train_loss": start_loss,
            "start_test_metric": start_metric,
            "monitor": {
                "points": monitor.n_points,
                "evaluations": monitor.n_points * (1 if task.test_metric is None else 2),
                "seconds": monitor.seconds,
                "curve": monitor.curve(),
            },
            # the Result in dfo's result-file format (dfo.result_io), history thinned
            "result": result_to_document(Result({**res, "history": _thin_history(res.history)})),
        }
    )


# -- many runs -----------------------------------------------------------------------------

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def check_run(spec: RunSpec) -> None:
    """Check the option values of ``spec`` by building its optimizer at its starting point.

    Raises
    ------
    InvalidOptionError
        A bad option value (no evaluation is spent).
    """
    task = get_task(spec.task, **spec.task_options)
    build_optimizer(spec.method, task.start(spec.seed), seed=0, budget=spec.budget, **spec.options)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Set the BLAS thread variables to 1 (unless set) for processes started inside."""
    saved = {name: os.environ.get(name) for name in _BLAS_VARS}
    for name in _BLAS_VARS:
        os.environ.setdefault(name, "1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


#: in a worker process: the parent's pid (a worker whose parent died stops its run)
_PARENT_PID: int | None = None


class ParentGone(Exception):
    """Raised in a worker whose parent process has died (its run has nowhere to go)."""


#: libraries a method imports when it first runs (pycma: about a second of CPU)
LIBRARIES = {"cma-es": ("cma",)}

#: modules a library imports only for what a compare's worker never uses, skipped when
#: the worker imports it: pycma's surrogate models take Kendall's tau from
#: ``scipy.stats`` (with its own fallback) and ``cma.s`` imports ``matplotlib.pyplot``
#: for its plots; together about 0.8 of pycma's 0.9 s of CPU
SKIPPED_IMPORTS = {"cma": ("scipy.stats", "matplotlib.pyplot")}


@contextlib.contextmanager
def _skipping(modules: Sequence[str]) -> Iterator[None]:
    """Make ``modules`` (those not imported yet) fail to import while inside.

    A library that imports them in ``try ... except ImportError`` takes its fallback
    (quietly: its warnings are silenced); afterwards they import as usual.
    """
    skipped = [name for name in modules if name not in sys.modules]
    for name in skipped:
        sys.modules[name] = None  # type: ignore[assignment]  # what makes import fail
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name in skipped:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def _worker_init(libraries: tuple[str, ...] = ()) -> None:
    global _PARENT_PID
    # Ctrl-C goes to the whole process group; the parent alone handles it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _PARENT_PID = os.getppid()
    # every worker imports them at once, instead of one checking options while the
    # other waits, and again at its first run of the method
    for name in libraries:
        with _skipping(SKIPPED_IMPORTS.get(name, ())):
            importlib.import_module(name)


class Workers:
    """The processes a compare's runs go to (none for ``jobs=1``: this process).

    Started first, so that their start-up overlaps the parent's preparations; they
    also check the option values (:meth:`check`) before any run, so that the parent
    never imports what only a method needs (pycma); each process imports the
    libraries of the ``methods`` to run (:data:`LIBRARIES`) as it starts. Use as a
    context manager; the processes are stopped on leaving it.
    """

    def __init__(
        self,
        jobs: int,
        n_runs: int,
        *,
        scheduler: str | None = None,
        methods: Sequence[str] = (),
    ) -> None:
        self.jobs = jobs
        self.scheduler = scheduler  # a Dask cluster's address: the runs go there
        self.processes = 1
        self.pool: Any = None
        if scheduler is None and jobs > 1 and n_runs > 1:
            ctx = multiprocessing.get_context("spawn")
            self.processes = min(jobs, n_runs)
            libraries = tuple(dict.fromkeys(x for m in methods for x in LIBRARIES.get(m, ())))
            with single_threaded_blas():
                self.pool = ctx.Pool(
                    self.processes, initializer=_worker_init, initargs=(libraries,)
                )

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        if self.pool is None:
            return
        # on success every task has returned (its files written): the processes are
        # stopped rather than left to shut their interpreters down one by one, which
        # took longer than drawing a plot
        self.pool.terminate()
        self.pool.join()

    def check(self, specs: Sequence[RunSpec]) -> None:
        """:func:`check_run` for the first run of each method; raises its first error."""
        first = list({s.method: s for s in reversed(specs)}.values())[::-1]
        if self.pool is None:
            for spec in first:
                check_run(spec)
        else:
            self.pool.map(check_run, first, chunksize=1)

    def run(
        self,
        specs: Sequence[RunSpec],
        on_record: Callable[[dict[str, Any]], None],
        *,
        plots: bool = False,
    ) -> None:
        """Run ``specs`` and hand each record to ``on_record`` as runs finish.

        With ``plots``, a worker left without runs imports the plotting libraries
        meanwhile (:meth:`plot` then starts at once). On ``KeyboardInterrupt`` or an
        error the exception is raised (the context manager then stops the processes);
        records already handed on stay handed on.
        """
        if self.scheduler is not None:
            from dfo.compare.cluster import execute_on_cluster

            self.jobs = execute_on_cluster(specs, self.scheduler, on_record)
            return
        if self.pool is None:
            for spec in specs:
                on_record(run_one(spec))
            return
        records = self.pool.imap_unordered(run_one, specs, chunksize=1)
        if plots:  # queued after the runs: taken by workers that have none left
            for _ in range(self.processes):
                self.pool.apply_async(warm_up)
        for record in records:
            on_record(record)

    def plot(self, table: Any, folder: Path) -> None:
        """Write the compare's plots into ``folder``, one per worker at a time."""
        if self.pool is None:
            write_plots(table, folder)
        else:
            self.pool.starmap(write_plot, [(table, name, folder) for name in PLOTS])


def execute(
    specs: Sequence[RunSpec],
    jobs: int,
    on_record: Callable[[dict[str, Any]], None],
    *,
    scheduler: str | None = None,
) -> int:
    """Run ``specs`` (``jobs`` processes at a time) and hand each record to ``on_record``.

    With ``scheduler`` (a Dask scheduler's address) the runs are tasks on that
    cluster instead (:func:`dfo.compare.cluster.execute_on_cluster`). Returns the
    runs that could run at a time.

    Records arrive as runs finish. On ``KeyboardInterrupt`` or an error, the worker
    processes are stopped and the exception is raised; records already handed on
    stay handed on.
    """
    methods = tuple(dict.fromkeys(s.method for s in specs))
    with Workers(jobs, len(specs), scheduler=scheduler, methods=methods) as workers:
        workers.run(specs, on_record)
    return workers.jobs


def default_jobs() -> int:
    """Processes to use: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _diff(stored: Any, planned: Any, prefix: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(planned, dict):
        out = []
        for key in sorted(set(stored) | set(planned), key=str):
            out += _diff(stored.get(key), planned.get(key), f"{prefix}{key}.")
        return out
    return [] if stored == planned else [f"{prefix[:-1]}: stored {stored!r}, now {planned!r}"]


def _fresh_folder(out: Path) -> None:
    for name in (rec.RUNS_FILE, rec.TABLE_TEXT_FILE, rec.TABLE_CSV_FILE, *_PLOT_FILES):
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()


def run_compare(
    config: CompareConfig,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    jobs: int = 1,
    progress: bool = False,
    plots: bool = True,
    gradient_cost: GradientCost | None = None,
    scheduler: str | None = None,
) -> CompareResult:
    """Run a comparison, write its run folder and return the table.

    Parameters
    ----------
    config : CompareConfig
    out : path, optional
        The run folder: created if missing; an existing folder must be empty or a dfo
        run folder (see :mod:`dfo.compare.folder`), and is locked while the compare
        writes it. Without it nothing is written and resume is impossible.
    resume : bool, default False
        Keep the finished runs in ``out`` and run only the missing ones. The folder
        must hold a compare with the same settings (else :class:`ResumeMismatchError`
        naming the differences, or :class:`~dfo.exceptions.RunFolderError` when there
        is nothing to resume). Without ``resume``, the folder's earlier results are
        replaced.
    jobs : int, default 1
        Runs at a time, in separate processes (each run is determined by its seed,
        so the results do not depend on ``jobs``).
    progress : bool, default False
        Show a progress bar over runs (on stderr).
    plots : bool, default True
        Write the PNG plots into ``out``.
    gradient_cost : GradientCost, optional
        Use this instead of measuring (or reading the stored measurement).
    scheduler : str, optional
        Address of a Dask scheduler: the runs become tasks on its cluster (``jobs``
        is then unused); the records, the table and resuming are the same.

    Returns
    -------
    CompareResult

    Raises
    ------
    InvalidOptionError
        Bad settings (before any run).
    OutputPathError
        ``out`` is a file, cannot be written, or holds files dfo did not write.
    RunFolderError
        ``out`` is in use by another compare, has nothing to resume, or its
        ``config.json`` is damaged (the message names the field).
    KeyboardInterrupt
        Propagated after the finished runs are on disk.
    """
    task, specs = plan_runs(config, check_values=False)
    folder = Path(out) if out is not None else None
    methods = tuple(dict.fromkeys(s.method for s in specs))
    with Workers(jobs, len(specs), scheduler=scheduler, methods=methods) as workers:
        workers.check(specs)  # option values, before anything is written or run
        if folder is None:
            return _compare(
                config, task, specs, None, False, workers, progress, plots, gradient_cost
            )
        own = run_folder.prepare(folder, resume=resume)
        with run_folder.lock(folder):
            return _compare(
                config,
                task,
                specs,
                folder,
                resume and own,
                workers,
                progress,
                plots,
                gradient_cost,
            )


def _compare(
    config: CompareConfig,
    task: Task,
    specs: list[RunSpec],
    folder: Path | None,
    resume: bool,
    workers: Workers,
    progress: bool,
    plots: bool,
    gradient_cost: GradientCost | None,
) -> CompareResult:
    """:func:`run_compare` once the folder is checked and locked."""
    from dfo.compare.table import build_table

    planned = resolved(config, specs)
    ident = run_folder.compare_id(planned)
    runs = rec.Runs()
    if folder is not None:
        if resume:
            stored = rec.read_config(folder / rec.CONFIG_FILE)
            problems = _diff(stored["compare"], planned)
            if problems:
                raise ResumeMismatchError(
                    f"cannot resume in {folder}: it holds a compare with other settings ("
                    + "; ".join(problems[:5])
                    + "). Use another --out, or run without --resume to start afresh."
                )
            if gradient_cost is None and stored["gradient_cost"]:
                gradient_cost = GradientCost.from_dict(stored["gradient_cost"])
            runs = rec.read_runs(folder / rec.RUNS_FILE, compare=ident, repair=True)
        else:
            _fresh_folder(folder)
    if gradient_cost is None:
        gradient_cost = measure_gradient_cost(task.objective, task.start(specs[0].seed))
    if folder is not None and not resume:
        rec.write_json(
            folder / rec.CONFIG_FILE,
            {
                "format": run_folder.FORMAT,
                "format_version": run_folder.FORMAT_VERSION,
                "id": ident,
                "request": config.to_dict(),
                "compare": planned,
                "gradient_cost": None if gradient_cost is None else gradient_cost.to_dict(),
            },
        )
    records = runs.records

    wanted = {s.key for s in specs}
    done = {(r["method"], r["seed"]) for r in records if (r["method"], r["seed"]) in wanted}
    # seed-major order: an interrupted compare has every method for its first seeds
    seed_rank = {seed: i for i, seed in enumerate(dict.fromkeys(s.seed for s in specs))}
    pending = sorted((s for s in specs if s.key not in done), key=lambda s: seed_rank[s.seed])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(specs),
            initial=len(specs) - len(pending),
            unit="run",
            desc=f"compare {task.name}",
            dynamic_ncols=True,
        )

    def on_record(record: dict[str, Any]) -> None:
        record = {**record, "compare_id": ident}
        records.append(record)
        if folder is not None:
            rec.append_record(folder / rec.RUNS_FILE, record)
        if bar is not None:
            bar.set_postfix_str(f"{record['method']} seed {record['seed']} done", refresh=False)
            bar.update(1)

    try:
        if pending:
            workers.run(pending, on_record, plots=plots and folder is not None)
    finally:
        if bar is not None:
            bar.close()

    if folder is not None:  # the file is the source of truth
        records = rec.read_runs(folder / rec.RUNS_FILE, compare=ident).records
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        by_key.setdefault((record["method"], record["seed"]), record)
    ordered = [by_key[s.key] for s in specs if s.key in by_key]
    table = build_table(task, specs, ordered, gradient_cost, jobs=workers.jobs)
    if folder is not None:
        atomic_write(folder / rec.TABLE_TEXT_FILE, table.text + "\n")
        atomic_write(folder / rec.TABLE_CSV_FILE, table.csv)
        if plots:
            workers.plot(table, folder)
    return CompareResult(
        task, specs, ordered, gradient_cost, table, folder, runs.skipped, runs.reasons
    )
