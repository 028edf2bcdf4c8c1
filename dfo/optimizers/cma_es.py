"""CMA-ES through the ``cma`` package (pycma); dfo never reimplements it.

pycma is driven through its own ask/tell interface. dfo sets a few of its
options and never lets the user override them:

- ``randn`` draws from the optimizer's seeded :class:`numpy.random.Generator`
  and ``seed`` is nan, so pycma never seeds or draws from numpy's global
  generator (``np.random.get_state()`` is the same after a run);
- ``verbose=-9``, ``verb_disp=0``, ``verb_log=0`` and ``signals_filename=None``:
  pycma prints nothing, writes no files and reads none (``verbose=True`` lets
  it print, still without files).

pycma's own bookkeeping per generation is of the order of 0.5-1 ms in 10
dimensions, 5-20 ms in 100 and 0.2-0.3 s in 1000 with the full covariance (an
eigendecomposition every few generations), against 0.5, 2 and 5-7 ms for the
separable variant (``benchmarks/bench_cma_rosenbrock.py`` measures it); hence
``separable="auto"`` above 100 dimensions. Importing pycma takes about a second,
once per process.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError, suggest
from dfo.optimizers import register
from dfo.optimizers.base import Optimizer

__all__ = ["CMAES", "SEPARABLE_ABOVE"]

#: above this dimension ``separable="auto"`` runs the separable (diagonal) variant
SEPARABLE_ABOVE = 100

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


class GeneratorRandn:
    """``randn(*shape)`` for pycma, drawn from a :class:`numpy.random.Generator`.

    Passing it as pycma's ``randn`` option keeps pycma off numpy's global state.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


def _bound(value: Any, dim: int, which: str) -> np.ndarray | None:
    if value is None:
        return None
    try:
        return np.broadcast_to(np.asarray(value, dtype=float), (dim,))
    except (TypeError, ValueError):
        raise InvalidOptionError(
            f"the {which} bound must be None, a number or an array of shape ({dim},); "
            f"got {value!r:.60}"
        ) from None


def _bounds(bounds: Any, dim: int) -> list[Any] | None:
    if bounds is None:
        return None
    try:
        lower, upper = bounds
    except (TypeError, ValueError):
        raise InvalidOptionError(
            f"bounds must be a pair (lower, upper) of scalars or arrays of shape ({dim},); "
            f"got {bounds!r:.60}"
        ) from None
    lo = _bound(lower, dim, "lower")
    hi = _bound(upper, dim, "upper")
    for name, b in (("lower", lo), ("upper", hi)):
        if b is not None and np.isnan(b).any():
            raise InvalidOptionError(f"the {name} bound must not be nan; got {b.tolist()}")
    if lo is not None and hi is not None and not np.all(lo < hi):
        raise InvalidOptionError("bounds must have lower < upper in every coordinate")
    return [None if lo is None else lo.tolist(), None if hi is None else hi.tolist()]


@register("cma-es")
class CMAES(Optimizer):
    """Covariance matrix adaptation evolution strategy (Hansen & Ostermeier, 2001).

    A thin ask/tell adapter over :class:`cma.CMAEvolutionStrategy`. Each
    generation of ``popsize`` candidates is asked at once (so it is evaluated in
    one vectorized call, on one sample of a stochastic objective). Non-finite values
    rank worst. The recommendation is the distribution mean (pycma's
    ``xfavorite``), which :func:`dfo.minimize` evaluates at the end.

    In more than :data:`SEPARABLE_ABOVE` (100) dimensions the separable variant
    runs by default (``separable="auto"``); ``options()["separable"]`` and
    ``Result.options`` say which variant ran.

    Parameters
    ----------
    sigma0 : float, default 0.5
        Initial step size (standard deviation), in the units of ``x``.
    popsize : int, optional
        Candidates per generation; pycma's default ``4 + floor(3 ln n)``.
    separable : bool or "auto", default "auto"
        Run the separable variant (diagonal covariance, ``CMA_diagonal``): linear
        cost per candidate and faster learning in large dimension. ``"auto"``
        chooses it above :data:`SEPARABLE_ABOVE` (100) dimensions.
    bounds : (lower, upper), optional
        Box constraints (scalars or arrays; None for unbounded), pycma's handling.
    tolfun, tolx : float, optional
        pycma's stopping tolerances (its defaults when None).
    cma_options : dict, optional
        Further pycma options (names from ``cma.CMAOptions()``), passed as they
        are; the options above, and those that would seed, print or write files,
        are refused with a message saying which argument to use.
    verbose : bool, default False
        Let pycma print (it is silent otherwise and writes no files).
    """

    def __init__(
        self,
        x0: Any,
        *,
        seed: int | None = None,
        budget: int | None = None,
        sigma0: float = 0.5,
        popsize: int | None = None,
        separable: bool | str = "auto",
        bounds: Any = None,
        tolfun: float | None = None,
        tolx: float | None = None,
        cma_options: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(x0, seed=seed, budget=budget)
        import cma

        if (
            isinstance(sigma0, bool)
            or not isinstance(sigma0, int | float)
            or not 0 < sigma0 < np.inf
        ):
            raise InvalidOptionError(f"sigma0 must be a finite positive number; got {sigma0!r}")
        if popsize is not None and (
            isinstance(popsize, bool) or not isinstance(popsize, int | np.integer) or popsize < 2
        ):
            raise InvalidOptionError(f"popsize must be an integer >= 2; got {popsize!r}")
        if separable == "auto":
            separable = self.dim > SEPARABLE_ABOVE
        elif not isinstance(separable, bool):
            raise InvalidOptionError(f"separable must be True, False or 'auto'; got {separable!r}")
        if not isinstance(verbose, bool):
            raise InvalidOptionError(f"verbose must be True or False; got {verbose!r}")
        self.verbose = verbose
        cma_options = _check_cma_options(cma_options)
        self.cma_options = cma_options
        self.sigma0 = float(sigma0)
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
            opts["popsize"] = int(popsize)
        if separable:
            opts["CMA_diagonal"] = True
        bnds = _bounds(bounds, self.dim)
        if bnds is not None and self.dim == 1:
            raise InvalidOptionError(
                "cma-es with bounds needs at least 2 variables (pycma's boundary handling "
                "fails in one dimension); got x0 of size 1. Use bounds with random-search, "
                "or cma-es without bounds"
            )
        if bnds is not None:
            opts["bounds"] = bnds
        for name, tol in (("tolfun", tolfun), ("tolx", tolx)):
            if tol is None:
                continue
            if isinstance(tol, bool) or not isinstance(tol, int | float) or not tol >= 0:
                raise InvalidOptionError(f"{name} must be a number >= 0 or None; got {tol!r}")
            opts[name] = float(tol)
        if cma_options:
            opts.update(cma_options)
        self.user_options = {
            "popsize": popsize,
            "separable": separable,
            "bounds": bounds,
            "tolfun": tolfun,
            "tolx": tolx,
            **(cma_options or {}),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.es = cma.CMAEvolutionStrategy(self.x0, self.sigma0, opts)
            except Exception as exc:  # an option pycma rejects, however it says so
                raise InvalidOptionError(
                    f"pycma rejected the options: {type(exc).__name__}: {exc}"
                ) from exc
        self.popsize = int(self.es.popsize)
        self.all_bad = 0

    def _ask(self) -> np.ndarray:
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.es.tell(list(X), values.tolist())
        if self.verbose:
            self.es.disp()  # pycma's progress line every 100 generations
        return float(values.min())

    def recommend(self) -> np.ndarray:
        # the mean in the user's space, inside the bounds (a fresh copy)
        return np.array(self.es.to_phenotype(self.es.mean), dtype=np.float64)

    def _stop(self) -> dict[str, Any]:
        if self.all_bad >= 10:
            return {"nonfinite": f"{self.all_bad} generations in a row had no finite value"}
        try:
            stop = self.es.stop()
        except Exception as exc:  # pycma reads some options only when it checks them
            if not self.cma_options:
                raise
            raise InvalidOptionError(
                f"pycma failed on cma_options={self.cma_options!r:.80}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return {k: v for k, v in stop.items() if k not in _PYCMA_IGNORED}

    def options(self) -> dict[str, Any]:
        return {"sigma0": self.sigma0, **self.user_options, "popsize": self.popsize}
