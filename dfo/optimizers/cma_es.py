"""CMA-ES through the ``cma`` package (pycma); dfo never reimplements it.

pycma is driven through its own ask/tell interface. dfo sets a few of its
options and never lets the user override them:

- ``randn`` draws from the optimizer's seeded :class:`numpy.random.Generator`
  and ``seed`` is nan, so pycma never seeds or draws from numpy's global
  generator (``np.random.get_state()`` is the same after a run);
- ``verbose=-9``, ``verb_disp=0``, ``verb_log=0`` and ``signals_filename=None``:
  pycma prints nothing, writes no files and reads none (``verbose=True`` lets
  it print, still without files).

When pycma's termination fires (or a restarted run is dominated: converging above
the best value found) and budget remains, the strategy restarts from a
random point of the initial region with a new :class:`cma.CMAEvolutionStrategy`:
IPOP doubles the population at each restart (Auger & Hansen 2005), BIPOP (the
default; Hansen 2009) interlaces such large-population runs with runs of small,
randomized populations and step sizes, each regime getting about half the
evaluations. All of it (pycma's state, the restart bookkeeping, the generator) is
in plain attributes, so a checkpoint resumes bit for bit.

pycma's own bookkeeping per generation is of the order of 0.5-1 ms in 10
dimensions, 5-20 ms in 100 and 0.2-0.3 s in 1000 with the full covariance (an
eigendecomposition every few generations), against 0.5, 2 and 5-7 ms for the
separable variant (``benchmarks/bench_cma_rosenbrock.py`` measures it); hence
``separable="auto"`` above 100 dimensions. Importing pycma takes about a second,
once per process.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, MutableMapping
from numbers import Real
from typing import Any, ClassVar

import numpy as np

from dfo.exceptions import InvalidOptionError, suggest
from dfo.limits import check_rows
from dfo.optimizers import register
from dfo.optimizers.base import Optimizer
from dfo.options import (
    BOUNDS,
    Choice,
    Custom,
    Either,
    Flag,
    Optional,
    Options,
    PositiveInt,
    PositiveReal,
    RealRange,
    declare_options,
    option,
)

__all__ = ["CMAES", "RESTART_REGIMES", "SEPARABLE_ABOVE"]

#: above this dimension ``separable="auto"`` runs the separable (diagonal) variant
SEPARABLE_ABOVE = 100

#: the restart regimes of ``restart_regime=``
RESTART_REGIMES = ("bipop", "ipop")

#: restarts allowed when no budget is known (``restarts=None`` without ``budget=``)
RESTARTS_WITHOUT_BUDGET = 9

#: the default ``sigma0`` as a share of the width of finite bounds (pycma's advice:
#: a quarter to a fifth of the region where the optimum is expected)
SIGMA0_OF_WIDTH = 0.2

# pycma stop reasons that mean "converged" rather than "gave up"
_PYCMA_IGNORED = {"maxfevals", "maxiter"}

# pycma options dfo sets itself (or that would draw from numpy's global generator)
_RESERVED = {
    "randn": "pycma draws from the run's seeded generator; use seed= instead",
    "seed": "pycma draws from the run's seeded generator; use seed= instead",
    "integer_variables": "pycma's integer handling draws from numpy's global generator",
    "verb_log": "dfo keeps pycma from writing files",
    "verb_filenameprefix": "dfo keeps pycma from writing files",
    "verb_plot": "dfo keeps pycma from writing files",
    "signals_filename": "dfo keeps pycma from reading files",
    "popsize": "use the popsize= option",
    "bounds": "use the bounds= option",
    "CMA_diagonal": "use the separable= option",
    "tolfun": "use the tolfun= option",
    "tolx": "use the tolx= option",
    "verbose": "use the verbose= option",
}


def _check_cma_options(cma_options: Any) -> dict[str, Any]:
    """Return ``cma_options`` as a dict of pycma option names, or raise."""
    if cma_options is None:
        return {}
    if not isinstance(cma_options, dict):
        raise InvalidOptionError(
            f"cma_options must be a dict of pycma options; got {type(cma_options).__name__}"
        )
    import cma

    valid = set(cma.CMAOptions())
    for key in cma_options:
        if key in _RESERVED:
            raise InvalidOptionError(f"cma_options may not set {key!r}: {_RESERVED[key]}")
        if key not in valid:
            raise InvalidOptionError(
                f"unknown pycma option {key!r} in cma_options (see cma.CMAOptions())."
                + suggest(str(key), sorted(valid))
            )
    return dict(cma_options)


def _check_cma_values(es: Any, cma_options: dict[str, Any]) -> None:
    """Refuse a pycma option whose default is a number but whose value is not one.

    pycma evaluates the options it is given (``"100 * N"``) when it starts, keeps
    what it cannot evaluate as a string, and fails only when it first uses it,
    after the first generation; this compares each with its evaluated default.
    """
    import cma

    defaults = cma.CMAOptions()
    where = {"N": es.N, "popsize": es.popsize}
    number = (Real, np.number)
    for key, given in cma_options.items():
        try:
            default = defaults.eval(key, loc=where)
        except Exception:  # a default that needs more context: nothing to compare with
            continue
        value = es.opts[key]
        if isinstance(default, number) and not isinstance(default, bool | np.bool_):
            if isinstance(value, bool | np.bool_) or not isinstance(value, number):
                raise InvalidOptionError(
                    f"cma_options[{key!r}] must be a number (or a pycma expression of one, "
                    f"such as '100 * N'); got {given!r:.60}"
                )


def _without_archive(es: Any) -> bool:
    """Drop pycma's archive of asked points when it can only give back the points told.

    pycma keeps each asked point's genotype in ``sent_solutions``, keyed by a hash of
    the point's bytes, to skip the inverse of its genotype-phenotype map in ``tell``:
    about five hashes of every point per generation (a fifth of a run at n = 1210).
    Without bounds and with the identity map, the inverse is the point itself, so
    pycma's empty archive (what its switch ``archive_sent_solutions = False`` gives)
    and ``tell(..., check_points=False)`` give the same genotypes, bit for bit. Returns
    whether the archive was dropped.
    """
    import cma
    from cma import evolution_strategy as pycma_es

    empty = getattr(pycma_es, "get_CMASolutionDict", None)
    if (
        empty is None
        or not getattr(es.gp, "isidentity", False)
        or not isinstance(es.boundary_handler, cma.boundary_handler.BoundNone)
        or not hasattr(es, "sent_solutions")
    ):
        return False
    es.sent_solutions = empty(False)()
    return True


class _InjectedPoints(MutableMapping[Any, Any]):
    """pycma's record of the points it injected, hashing only the likely matches.

    pycma keeps the points it injects (TPA's mirrored pair, each generation) in a
    ``SolutionDict`` keyed by a hash of each point's bytes, and in ``tell`` pops every
    point of the generation from it to find them: ``popsize`` hashes of a whole point a
    generation (50 of 10 kB at n = 1210, 0.1-0.2 ms). This holds pycma's record and
    passes every access on to it, except for a point whose first coordinate (its
    bytes) is that of no point recorded since the record was last empty: that point
    is not in the record, and is answered so without a hash (a point has the bytes of
    a recorded one only if its first coordinate does). Every lookup finds what
    pycma's finds.
    """

    def __init__(self, record: Any) -> None:
        self.record = record
        self.firsts: set[bytes] = set()  # a superset of the recorded first coordinates

    def _absent(self, x: Any) -> bool:
        first = _first(x)
        return first is not None and first not in self.firsts

    def pop(self, x: Any, *default: Any) -> Any:
        """``MutableMapping.pop`` in one step (pycma pops every point of a generation)."""
        if self._absent(x):
            if default:
                return default[0]
            raise KeyError("a point pycma did not inject")
        return self.record.pop(x, *default)

    def __setitem__(self, x: Any, value: Any) -> None:
        first = _first(x)
        if first is not None:
            if not self.record:
                self.firsts.clear()
            self.firsts.add(first)
        self.record[x] = value

    def __getitem__(self, x: Any) -> Any:
        if self._absent(x):
            raise KeyError("a point pycma did not inject")
        return self.record[x]

    def __delitem__(self, x: Any) -> None:
        if self._absent(x):
            raise KeyError("a point pycma did not inject")
        del self.record[x]

    def __contains__(self, x: Any) -> bool:
        return not self._absent(x) and x in self.record

    def __iter__(self) -> Iterator[Any]:
        return iter(self.record)

    def __len__(self) -> int:
        return len(self.record)


def _first(x: Any) -> bytes | None:
    """The bytes of a point's first coordinate (None for what is not a 1-d array)."""
    return x[:1].tobytes() if isinstance(x, np.ndarray) and x.ndim == 1 and x.size else None


def _injected_points(es: Any) -> bool:
    """Wrap pycma's record of its injected points in :class:`_InjectedPoints`; whether it was."""
    record = getattr(es, "_injected_solutions_archive", None)
    if record is None or len(record) or not callable(getattr(record, "key", None)):
        return False
    es._injected_solutions_archive = _InjectedPoints(record)
    return True


def _no_check(es: Any) -> None:
    """What pycma's step-size check does under dfo: nothing (see :func:`_without_check`)."""


def _without_check(es: Any) -> None:
    """Switch off the consistency check of pycma's TPA step-size rule.

    ``CMAAdaptSigmaTPA.check_consistency`` (the step-size rule of the separable
    variant) checks in every ``tell`` that the mirrored pair it injected moved as
    expected, at a coordinate picked with ``np.random.randint`` (numpy's global
    generator, the user's), and warns if not. It changes nothing else, and dfo
    silences pycma's warnings in ``tell``: all it could still do is draw from the
    user's global state, which then had to be saved and restored around each
    ``tell`` (about 0.2 ms a generation). Without it the run is the same, bit for
    bit, and nothing draws from the global state.
    """
    rule = es.adapt_sigma
    if "check_consistency" in type(rule).__dict__:  # not the base class's, which is empty
        rule.check_consistency = _no_check


@contextlib.contextmanager
def _global_random_state_kept() -> Iterator[None]:
    """Restore numpy's global random state: pycma's TPA step-size check draws from it.

    (``CMAAdaptSigmaTPA.check_consistency``, the step-size rule of the separable
    variant, picks a coordinate with ``np.random.randint``; the draw does not change
    the run, but the global state is the user's.) Only where the check is on
    (:func:`_without_check`): in a run with ``cma_options``, which may take pycma down
    other paths.
    """
    state = np.random.get_state()  # noqa: NPY002 - kept for the user, not drawn from
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


#: what ``tell`` runs pycma in where nothing draws from numpy's global state
_UNCHECKED = contextlib.nullcontext()


class GeneratorRandn:
    """``randn(*shape)`` for pycma, drawn from a :class:`numpy.random.Generator`.

    Passing it as pycma's ``randn`` option keeps pycma off numpy's global state.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


def _check_cma_options_kind(name: str, value: Any) -> dict[str, Any] | None:
    return _check_cma_options(value) or None


@declare_options
class CMAESOptions(Options):
    """Options of :class:`CMAES`."""

    sigma0: float | None = option(None, Optional(PositiveReal()))
    popsize: int | None = option(None, Optional(PositiveInt(minimum=2)))
    restarts: int | None = option(None, Optional(PositiveInt(minimum=0)))
    restart_regime: str = option("bipop", Choice(*RESTART_REGIMES))
    separable: bool | str = option("auto", Either(Flag(), Choice("auto")))
    bounds: Any = option(None, BOUNDS)
    tolfun: float | None = option(None, Optional(RealRange(0.0)))
    tolx: float | None = option(None, Optional(RealRange(0.0)))
    cma_options: dict[str, Any] | None = option(
        None, Custom(_check_cma_options_kind, "None or a dict of pycma options")
    )
    verbose: bool = option(False, Flag())


@register("cma-es")
class CMAES(Optimizer):
    """Covariance matrix adaptation evolution strategy with restarts (IPOP, BIPOP).

    A thin ask/tell adapter over :class:`cma.CMAEvolutionStrategy`. Each
    generation of ``popsize`` candidates is asked at once (so it is evaluated in
    one vectorized call, on one sample of a stochastic objective). Non-finite values
    rank worst. The recommendation is the distribution mean (pycma's
    ``xfavorite``) of the run that found the best value, which :func:`dfo.minimize`
    evaluates at the end.

    When pycma's termination fires (the run converged or stagnated) and the budget
    allows another generation, a new pycma run starts from a point drawn uniformly
    in the initial region (``x0 +- 2 sigma0`` within the bounds), up to
    ``restarts`` times:

    - ``"ipop"``: the k-th restart has ``2**k`` times the first population, and
      ``sigma0``;
    - ``"bipop"`` (Hansen 2009): after the first run, the regime that has spent
      fewer evaluations goes next (the first run counts as small). A large run
      doubles the population of the previous large run (as IPOP); a small run
      draws ``popsize * (lambda_large / (2 popsize))**(u**2)`` candidates and step
      size ``sigma0 * 10**(-2 v)`` (u, v uniform in [0, 1]) and stops after about
      half the evaluations of the latest large run.

    A restarted run also ends once it is dominated: its best lies more than
    :attr:`DOMINATED_RATIO` (10) times the range of its recent values (pycma's
    ``tolfun`` window) above the best of the earlier runs, so its basin cannot beat
    what was found and the evaluations go to the next run instead.

    ``Result.restarts`` (and the message) say how many restarts ran.

    In more than :data:`SEPARABLE_ABOVE` (100) dimensions the separable variant
    runs by default (``separable="auto"``); ``options()["separable"]`` and
    ``Result.options`` say which variant ran.

    Parameters
    ----------
    sigma0 : float, optional
        Initial step size (standard deviation), in the units of ``x``. By default
        :data:`SIGMA0_OF_WIDTH` (0.2) times the smallest width of the bounds when
        every bound is finite (2 for the box [-5, 5]^n), else 0.5.
    popsize : int, optional
        Candidates per generation of the first run; pycma's default
        ``4 + floor(3 ln n)``.
    restarts : int, optional
        At most this many restarts; 0 makes a single run. By default as many as the
        budget allows (:data:`RESTARTS_WITHOUT_BUDGET`, 9, when no budget is given).
    restart_regime : {"bipop", "ipop"}, default "bipop"
        How the restarts choose their population size and step size (see above).
    separable : bool or "auto", default "auto"
        Run the separable variant (diagonal covariance, ``CMA_diagonal``): linear
        cost per candidate and faster learning in large dimension. ``"auto"``
        chooses it above :data:`SEPARABLE_ABOVE` (100) dimensions.
    bounds : optional
        Any form :func:`dfo.bounds.parse_bounds` reads (as ``bounds=`` of
        :func:`dfo.minimize`); pycma's own handling.
    tolfun, tolx : float, optional
        pycma's stopping tolerances (its defaults when None); they end each run.
    cma_options : dict, optional
        Further pycma options (names from ``cma.CMAOptions()``), passed as they
        are; the options above, and those that would seed, print or write files,
        are refused with a message saying which argument to use.
    verbose : bool, default False
        Let pycma print (it is silent otherwise and writes no files).
    """

    Options = CMAESOptions
    TOL = ("tolfun", "tolx")
    TOL_FIXED: ClassVar[dict[str, Any]] = {"restarts": 0}
    TOL_MEANING = (
        "pycma's ``tolfun`` (the range of the recent generations' values) and ``tolx`` "
        "(the step size times the spread of the distribution); ``restarts=0``: the run "
        "stops when they are met"
    )
    config: CMAESOptions
    recommends_unevaluated: ClassVar[bool] = True

    def _setup(self) -> None:
        cfg = self.config
        sigma0, popsize, restarts = cfg.sigma0, cfg.popsize, cfg.restarts
        restart_regime, verbose = cfg.restart_regime, cfg.verbose
        separable = self.dim > SEPARABLE_ABOVE if cfg.separable == "auto" else cfg.separable
        cma_options = cfg.cma_options
        self.verbose = verbose
        self.cma_options = cma_options = cma_options or {}
        self.separable = separable
        opts: dict[str, Any] = {
            "randn": GeneratorRandn(self.rng),
            "seed": np.nan,
            "verbose": 1 if verbose else -9,
            "verb_disp": 100 if verbose else 0,
            "verb_log": 0,
            "verb_plot": 0,
            "signals_filename": None,
            "maxfevals": np.inf,
        }
        if popsize is not None:
            check_rows("popsize", popsize, self.dim, budget=self.budget)
            opts["popsize"] = popsize
        if separable:
            opts["CMA_diagonal"] = True
        box = self.box  # any form dfo.bounds.parse_bounds reads, parsed by the base
        bnds = None if box is None else [box.lower.tolist(), box.upper.tolist()]
        if bnds is not None and self.dim == 1:
            raise InvalidOptionError(
                "cma-es with bounds needs at least 2 variables (pycma's boundary handling "
                "fails in one dimension); got x0 of size 1. Use bounds with random-search, "
                "or cma-es without bounds"
            )
        lower = np.full(self.dim, -np.inf)
        upper = np.full(self.dim, np.inf)
        if box is not None:
            opts["bounds"] = bnds
            lower, upper = box.lower, box.upper
        if sigma0 is None:
            width = upper - lower
            sigma0 = SIGMA0_OF_WIDTH * width.min() if np.isfinite(width).all() else 0.5
        self.sigma0 = float(sigma0)
        # restarts start uniformly in the initial region: x0 +- 2 sigma0, within the bounds
        self.region = (
            np.maximum(lower, self.x0 - 2 * self.sigma0),
            np.minimum(upper, self.x0 + 2 * self.sigma0),
        )
        for name, tol in (("tolfun", cfg.tolfun), ("tolx", cfg.tolx)):
            if tol is not None:
                opts[name] = tol
        opts.update(cma_options)
        self.opts = opts
        self.es = self._new_run(self.x0, self.sigma0, {})
        _check_cma_values(self.es, cma_options)
        self.popsize = int(self.es.popsize)
        self.all_bad = 0
        # restart bookkeeping
        if restarts is None and self.budget is None:
            restarts = RESTARTS_WITHOUT_BUDGET
        self.max_restarts = restarts
        self.restart_regime = restart_regime
        self.restarts = 0
        self.runs: list[dict[str, Any]] = []  # the finished runs
        self.run: dict[str, Any] = {
            "regime": "first",
            "popsize": self.popsize,
            "evals": 0,
            "best": np.inf,
        }
        self.run_over: list[str] | None = None  # why the current run ended, if it did
        self.large_popsize = self.popsize  # the latest large population (BIPOP, IPOP)
        self.best_run_mean: np.ndarray | None = None  # mean of the best finished run

    def _new_run(self, x: np.ndarray, sigma: float, extra: dict[str, Any]) -> Any:
        import cma

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                es = cma.CMAEvolutionStrategy(x, sigma, {**self.opts, **extra})
            except Exception as exc:  # an option pycma rejects, however it says so
                raise InvalidOptionError(
                    f"pycma rejected the options: {type(exc).__name__}: {exc}"
                ) from exc
        self.unarchived = _without_archive(es) if not self.cma_options else False
        # whether pycma may draw from numpy's global state in tell (then restored): with
        # cma_options, which may take it down other paths; else its one draw is switched off
        self.checked = bool(self.cma_options)
        if not self.checked:
            _without_check(es)
            _injected_points(es)
        return es

    def _ask(self) -> np.ndarray:
        if self.run_over is not None:
            self._restart(self.run_over)
        return np.array(self.es.ask(), dtype=np.float64)

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        finite = np.isfinite(values)
        if not finite.any():
            self.all_bad += 1
            return np.nan
        self.all_bad = 0
        if not finite.all():
            good = values[finite]
            with np.errstate(over="ignore"):  # values near the float64 limit
                worst = good.max() + 1.0 + (good.max() - good.min())
            if not np.isfinite(worst):
                worst = np.finfo(np.float64).max
            values = np.where(finite, values, worst)
        kept = _global_random_state_kept() if getattr(self, "checked", True) else _UNCHECKED
        with warnings.catch_warnings(), kept:
            warnings.simplefilter("ignore")
            # without the archive, the told points are the asked ones unchanged (dfo's
            # copies): nothing to check or repair, the genotypes the archive would give
            self.es.tell(
                list(X),
                values.tolist(),
                check_points=False if getattr(self, "unarchived", False) else None,
            )
        if self.verbose:
            self.es.disp()  # pycma's progress line every 100 generations
        self.run["best"] = min(self.run["best"], float(values.min()))
        self.run["evals"] += X.shape[0]
        reasons = self._pycma_stop()
        if self._dominated(values):
            reasons["dominated"] = "this run's basin lies above the best value found"
        restart_left = self.max_restarts is None or self.restarts < self.max_restarts
        if reasons and "ftarget" not in reasons and restart_left:
            # this run is over; the next starts at the next ask (so a run that ends
            # here, on its budget, resumes from a checkpoint exactly as it would go on)
            self.run_over = sorted(reasons)
        return float(values.min())

    #: a run whose best lies this many times its recent range above the best of the
    #: earlier runs is ended (0 turns it off)
    DOMINATED_RATIO = 10.0

    def _dominated(self, values: np.ndarray) -> bool:
        """Whether the current run cannot reach the best value of the earlier runs.

        Over the last ``10 + 30 n / popsize`` generations (pycma's ``tolfun`` window)
        the run's values spanned a range R; when its best is more than
        ``DOMINATED_RATIO * R`` above the best of the earlier runs, at its recent pace
        it would need that many windows to get there.
        """
        if not self.runs or not self.DOMINATED_RATIO:
            return False
        recent = self.run.setdefault("recent", [])
        recent.append(float(values.min()))
        window = 10 + int(30 * self.dim / self.es.popsize)
        del recent[:-window]
        if len(recent) < window:
            return False
        spread = max(max(recent), float(values.max())) - min(recent)
        best_before = min(r["best"] for r in self.runs)
        return self.run["best"] - best_before > self.DOMINATED_RATIO * spread

    def _restart(self, reasons: list[str]) -> None:
        """End the current run (stopped for ``reasons``) and start the next one."""
        finished = {k: v for k, v in self.run.items() if k != "recent"} | {"stop": reasons}
        if all(finished["best"] <= r["best"] for r in self.runs):
            self.best_run_mean = self.recommend_current()
        self.runs.append(finished)
        regime, popsize, sigma, extra = self._next_run(self.runs)
        if regime == "large":
            self.large_popsize = popsize
        x = self.rng.uniform(*self.region)
        self.es = self._new_run(x, sigma, {"popsize": popsize, **extra})
        self.restarts += 1
        self.run = {"regime": regime, "popsize": popsize, "evals": 0, "best": np.inf}
        self.run_over = None

    def _next_run(self, runs: list[dict[str, Any]]) -> tuple[str, int, float, dict[str, Any]]:
        """Regime, population size, step size and pycma options of the run after ``runs``."""
        large = 2 * self.large_popsize, self.sigma0
        if self.restart_regime == "ipop":
            return "large", *large, {}
        # BIPOP: the regime that has spent fewer evaluations goes next (the first run
        # counts as small); a small run gets about half the latest large run's budget
        small_evals = sum(r["evals"] for r in runs if r["regime"] != "large")
        large_evals = sum(r["evals"] for r in runs if r["regime"] == "large")
        if small_evals < large_evals:
            u, v = self.rng.uniform(size=2)
            ratio = self.large_popsize / (2 * self.popsize)
            popsize = max(self.popsize, int(self.popsize * ratio ** (u**2)))
            last_large = next(r["evals"] for r in reversed(runs) if r["regime"] == "large")
            maxiter = max(1, int(np.ceil(0.5 * last_large / popsize)))
            return "small", popsize, self.sigma0 * 10 ** (-2 * v), {"maxiter": maxiter}
        return "large", *large, {}

    def recommend_current(self) -> np.ndarray:
        """The mean of the current run in the user's space, inside the bounds (a copy)."""
        return np.array(self.es.to_phenotype(self.es.mean), dtype=np.float64)

    def _recommend(self) -> np.ndarray:
        # the mean of the run that found the best value so far
        if self.best_run_mean is not None and any(r["best"] < self.run["best"] for r in self.runs):
            return self.best_run_mean.copy()
        return self.recommend_current()

    def _pycma_stop(self) -> dict[str, Any]:
        try:
            stop = self.es.stop()
        except Exception as exc:  # pycma reads some options only when it checks them
            if not self.cma_options:
                raise
            raise InvalidOptionError(
                f"pycma failed on cma_options={self.cma_options!r:.80}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return {k: v for k, v in stop.items() if k != "maxfevals"}

    def _stop(self) -> dict[str, Any]:
        if self.all_bad >= 10:
            return {"nonfinite": f"{self.all_bad} generations in a row had no finite value"}
        if self.run_over is not None:
            return {}  # a restart follows
        # without a restart left, a run goes on past pycma's iteration limit
        return {k: v for k, v in self._pycma_stop().items() if k not in _PYCMA_IGNORED}

    def _resolved_options(self) -> dict[str, Any]:
        return {"sigma0": self.sigma0, "popsize": self.popsize, "separable": self.separable}

    def _runs_told(self) -> list[dict[str, Any]]:
        """The runs that evaluated something (the last one may not have, on its budget)."""
        return [r for r in [*self.runs, self.run] if r["evals"]]

    def notes(self) -> list[str]:
        runs = self._runs_told()
        if len(runs) < 2:
            return []
        sizes = [r["popsize"] for r in runs]
        return [f"{len(runs) - 1} restarts ({self.restart_regime}), population sizes {sizes}"]

    def extra(self) -> dict[str, Any]:
        return {"restarts": max(0, len(self._runs_told()) - 1)}
