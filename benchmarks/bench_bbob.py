"""COCO's bbob suite: dfo methods beside bare pycma and scipy, solved counts and precision.

The black-box benchmark the field reports on (COCO, ``coco-experiment``, module
``cocoex``; ``pip install -e '.[bench]'``): 24 functions, instance 1, each started
from the problem's ``initial_solution`` with the domain [-5, 5]^d as bounds, at
chosen dimensions and budgets (multiples of the dimension). Each run sees the
problem through one counter that refuses an evaluation past the budget (every
method gets exactly the same number) and, unless ``--full``, ends the run once the
final target f_opt + 1e-8 is hit (``final_target_hit``), as COCO experiments do.

Methods, by name (``--methods``):

- any dfo method (``dfo.methods()``, and ``auto``), run through ``dfo.minimize`` with
  its defaults (``bounds=`` passed where the method or ``minimize`` takes it), or
  with options written after a colon: ``cma-es:restart_regime='ipop',restarts=0``;
- ``pycma``: one bare ``cma.fmin2`` run, sigma0 = 2, no restarts;
  ``pycma-bipop``: ``cma.fmin2`` with ``bipop=True, restarts=9`` from random starts;
  ``pycma-ipop``: the same without ``bipop`` (the population doubles at each restart);
- ``scipy-cobyqa``, ``scipy-powell``, ``scipy-lbfgsb`` (finite-difference gradients):
  ``scipy.optimize.minimize`` run directly, defaults and bounds.

Printed per method, dimension and budget: functions solved (f_opt + 1e-8 reached;
with several seeds, the mean count over the seeds and its range),
median log10 precision (best f - f_opt, floored at 1e-8), the median share of the
budget used (over all functions, and over the unsolved ones) and the run time; with
several seeds, also the count of each seed.
Runs are spread over ``--jobs`` processes; nothing is written unless ``--out``.

Run: ``python benchmarks/bench_bbob.py [--quick] [--methods cma-es,pycma ...]
[--dims 2,10,20] [--budgets 1000] [--functions 1-24] [--seed 1-12] [--jobs 2] [--full]
[--per-function] [--out FILE]``.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import statistics
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from _bench import describe_machine, parser, print_table

import dfo
from dfo.optimizers import method_options

PRECISION = 1e-8  # COCO's final target: f_opt + 1e-8
DOMAIN = 5.0  # the bbob search domain [-5, 5]^d
REFERENCES = ("pycma", "pycma-bipop", "pycma-ipop", "scipy-cobyqa", "scipy-powell", "scipy-lbfgsb")


class OutOfBudget(Exception):
    """The run asked for one evaluation more than its budget."""


class TargetHit(Exception):
    """The run reached the final target (ends it, as COCO experiments do)."""


class Counted:
    """The problem as every method sees it: counted, capped at the budget, best kept."""

    def __init__(self, problem: Any, budget: int, target: float | None) -> None:
        self.problem = problem
        self.budget = budget
        self.target = target
        self.nfev = 0
        self.refused = 0
        self.best = math.inf

    def __call__(self, x: np.ndarray) -> float:
        if self.nfev >= self.budget:
            self.refused += 1
            raise OutOfBudget
        value = float(self.problem(np.asarray(x, dtype=float)))
        self.nfev += 1
        self.best = min(self.best, value)
        if self.target is not None and value <= self.target:
            raise TargetHit
        return value


# -- the methods ------------------------------------------------------------------------


def _takes_bounds(method: str) -> bool:
    if "bounds" in inspect.signature(dfo.minimize).parameters:
        return True
    return "bounds" in method_options(method)


def split_name(name: str) -> tuple[str, dict[str, Any]]:
    """``"cma-es:popsize=20,restarts=0"`` as the method and its options (values as Python)."""
    method, _, rest = name.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key.strip()] = ast.literal_eval(value.strip())
    return method, options


def run_dfo(name: str, f: Counted, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, seed: int):
    method, options = split_name(name)
    if _takes_bounds(method):
        options.setdefault("bounds", (lo, hi))
    if f.target is not None and "target" in inspect.signature(dfo.minimize).parameters:
        options["target"], f.target = f.target, None  # dfo stops by itself
    res = dfo.minimize(f, x0, method=method, budget=f.budget, seed=seed, **options)
    chosen = (res.get("auto") or {}).get("method", res.method)
    return {"message": res.message, "chosen": chosen, "restarts": res.get("restarts")}


def run_pycma(
    f: Counted, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, seed: int, restarts: str = ""
):
    import cma

    rng = np.random.default_rng(seed)
    runs = []

    def start() -> np.ndarray:  # the suite's initial point, then uniform in [-4, 4]^d
        runs.append(len(runs))
        return x0.copy() if len(runs) == 1 else rng.uniform(-4, 4, x0.size)

    options = {
        "maxfevals": f.budget,
        "bounds": [lo.tolist(), hi.tolist()],
        "seed": seed + 1,  # pycma's seed 0 means "from the clock"
        "verbose": -9,
        "verb_disp": 0,
        "verb_log": 0,
    }
    if restarts:
        cma.fmin2(f, start, 2.0, options, restarts=9, bipop=restarts == "bipop")
    else:
        cma.fmin2(f, x0, 2.0, options, restarts=0)
    return {}


def run_scipy(method: str, f: Counted, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, seed: int):
    from scipy.optimize import Bounds, minimize

    limit = {"maxfun": f.budget} if method == "L-BFGS-B" else {"maxfev": f.budget}
    res = minimize(f, x0, method=method, bounds=Bounds(lo, hi), options=limit)
    return {"message": str(res.message)}


def runner(name: str) -> Callable[..., dict[str, Any]]:
    """The function that runs method ``name`` on one counted problem."""
    scipy_names = {"scipy-cobyqa": "COBYQA", "scipy-powell": "Powell", "scipy-lbfgsb": "L-BFGS-B"}
    if name == "pycma":
        return run_pycma
    if name in ("pycma-bipop", "pycma-ipop"):
        return lambda *a: run_pycma(*a, restarts=name.removeprefix("pycma-"))
    if name in scipy_names:
        return lambda *a: run_scipy(scipy_names[name], *a)
    return lambda *a: run_dfo(name, *a)


def available(name: str) -> bool:
    """Whether ``name`` can be run here (a dfo method that has landed, or a reference)."""
    return name in REFERENCES or split_name(name)[0] in dfo.methods()


# -- one run ----------------------------------------------------------------------------


def run_one(task: tuple[str, int, int, int, int, bool]) -> dict[str, Any]:
    """Run ``method`` on bbob function ``fid``, instance 1, in ``dim`` dimensions."""
    import cocoex

    method, fid, dim, multiple, seed, full = task
    budget = multiple * dim
    suite = cocoex.Suite("bbob", "instances: 1", f"dimensions: {dim} function_indices: {fid}")
    problem = next(iter(suite))
    f_opt = cocoex.BareProblem("bbob", fid, dim, 1).best_value()
    f = Counted(problem, budget, None if full else f_opt + PRECISION)
    x0 = np.array(problem.initial_solution, dtype=float)
    lo, hi = np.full(dim, -DOMAIN), np.full(dim, DOMAIN)
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            info = runner(method)(f, x0, lo, hi, seed) or {}
        except (OutOfBudget, TargetHit):
            pass
    seconds = time.perf_counter() - t0
    hit = bool(problem.final_target_hit)
    problem.free()
    precision = f.best - f_opt
    return {
        "method": method,
        "function": fid,
        "dim": dim,
        "budget": budget,
        "multiple": multiple,
        "seed": seed,
        "nfev": f.nfev,
        "refused": f.refused,
        "precision": precision,
        "solved": hit,
        "seconds": seconds,
        **info,
    }


# -- the summary ------------------------------------------------------------------------


def _log_precision(p: float) -> float:
    return math.log10(max(p, PRECISION))


def summarize(records: list[dict[str, Any]], methods: list[str]) -> list[tuple[Any, ...]]:
    rows = []
    keys = sorted({(r["dim"], r["multiple"]) for r in records})
    for dim, multiple in keys:
        for method in methods:
            runs = [
                r
                for r in records
                if (r["dim"], r["multiple"], r["method"]) == (dim, multiple, method)
            ]
            if not runs:
                continue
            seeds = sorted({r["seed"] for r in runs})
            counts = [sum(r["solved"] for r in runs if r["seed"] == s) for s in seeds]
            per_seed = len(runs) // len(seeds)
            if len(seeds) == 1:
                solved = f"{counts[0]}/{per_seed}"
            else:  # the mean over the seeds, and the range
                mean = statistics.mean(counts)
                solved = f"{mean:.1f}/{per_seed} ({min(counts)}-{max(counts)})"
            share = [r["nfev"] / r["budget"] for r in runs]
            unsolved = [r["nfev"] / r["budget"] for r in runs if not r["solved"]]
            refused = sum(r["refused"] > 0 for r in runs)
            rows.append(
                (
                    dim,
                    f"{multiple}*d",
                    method,
                    solved,
                    statistics.median(_log_precision(r["precision"]) for r in runs),
                    statistics.median(share),
                    statistics.median(unsolved) if unsolved else "-",
                    refused,
                    sum(r["seconds"] for r in runs),
                )
            )
    return rows


def best_per_function(records: list[dict[str, Any]], dim: int, multiple: int) -> float:
    """Sum over the functions of the best method's mean solved count over the seeds."""
    runs = [r for r in records if (r["dim"], r["multiple"]) == (dim, multiple)]
    counts: dict[tuple[int, str], list[bool]] = {}
    for r in runs:
        counts.setdefault((r["function"], r["method"]), []).append(r["solved"])
    functions = {f for f, _ in counts}
    return sum(
        max(statistics.mean(v) for (g, _), v in counts.items() if g == f) for f in functions
    )


def _int_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _init_worker() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # the processes share the cores, not BLAS threads


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--methods",
        nargs="+",
        default=["cma-es,pycma"],
        help="method names (comma-separated, or one per argument when options follow ':')",
    )
    p.add_argument("--dims", default=None, help="dimensions (default 2,10,20; quick: 2)")
    p.add_argument("--budgets", default=None, help="budgets as multiples of d (default 1000)")
    p.add_argument("--functions", default="1-24", help="bbob function numbers, e.g. 1-14,20")
    p.add_argument("--seed", default="1", help="seed(s) of the runs, e.g. 1 or 1-12")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--full", action="store_true", help="do not end runs at the final target")
    p.add_argument("--per-function", action="store_true", help="print every run's precision")
    p.add_argument("--out", default=None, help="write every run's record to this JSON file")
    args = p.parse_args()
    dims = _int_list(args.dims or ("2" if args.quick else "2,10,20"))
    multiples = _int_list(args.budgets or ("100" if args.quick else "1000"))
    functions = _int_list(args.functions)
    seeds = _int_list(args.seed)
    methods = [
        m.strip()
        for arg in args.methods
        for m in ([arg] if ":" in arg else arg.split(","))
        if m.strip()
    ]
    missing = [m for m in methods if not available(m)]
    methods = [m for m in methods if m not in missing]

    import cma
    import cocoex
    import scipy

    print(describe_machine())
    print(
        f"dfo {dfo.__version__}, pycma {cma.__version__}, scipy {scipy.__version__}, "
        f"cocoex {cocoex.__version__}; bbob instance 1, seeds {args.seed}, "
        f"{'full budgets' if args.full else 'runs end at the final target'}"
    )
    if missing:
        print(f"not available here (skipped): {', '.join(missing)}")
    tasks = [
        (m, fid, d, k, seed, args.full)
        for seed in seeds
        for d in dims
        for k in multiples
        for m in methods
        for fid in functions
    ]
    tasks.sort(key=lambda t: -t[2] * t[3])  # the longest first, for an even spread
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_init_worker) as pool:
        records = list(pool.map(run_one, tasks))
    print(f"{len(tasks)} runs in {time.perf_counter() - t0:.0f} s on {args.jobs} processes")
    print()
    print_table(
        (
            "d",
            "budget",
            "method",
            "solved",
            "median log10 prec",
            "budget used",
            "used (unsolved)",
            "over budget",
            "seconds",
        ),
        summarize(records, methods),
    )
    print("solved: f_opt + 1e-8 reached; precision floored at 1e-8; budget used: median share")
    print("over budget: runs that asked for more evaluations than the budget (refused)")
    if len(seeds) > 1:
        print()
        print_table(
            ("d", "budget", "method", *(f"s{s}" for s in seeds)),
            [
                (
                    dim,
                    f"{k}*d",
                    m,
                    *(
                        sum(
                            r["solved"]
                            for r in records
                            if (r["dim"], r["multiple"], r["method"], r["seed"]) == (dim, k, m, s)
                        )
                        for s in seeds
                    ),
                )
                for dim in dims
                for k in multiples
                for m in methods
            ],
        )
        print("functions solved per seed")
        if len(methods) > 1:
            for dim in dims:
                for k in multiples:
                    print(
                        f"d={dim}, {k}*d: the best method on each function, its mean count "
                        f"summed over the functions: {best_per_function(records, dim, k):.1f}"
                        f"/{len(functions)} (a bound on what choosing among these reaches)"
                    )
    if args.per_function:
        print()
        for dim in dims:
            for k in multiples:
                rows = []
                for m in methods:
                    runs = [
                        r for r in records if (r["dim"], r["multiple"], r["method"]) == (dim, k, m)
                    ]
                    if len(seeds) > 1:  # on how many seeds each function was solved
                        cells = [
                            sum(r["solved"] for r in runs if r["function"] == f) for f in functions
                        ]
                    else:
                        by_f = {r["function"]: r["precision"] for r in runs}
                        cells = [round(_log_precision(by_f[f])) for f in functions]
                    rows.append((m, *map(str, cells)))
                what = (
                    f"solved on how many of {len(seeds)} seeds"
                    if len(seeds) > 1
                    else "log10 precision"
                )
                print(f"d={dim}, budget {k}*d: {what}, per function")
                print_table(("method", *(f"f{f}" for f in functions)), rows)
                print()
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(records, fh, indent=1)
        print(f"records written to {args.out}")


if __name__ == "__main__":
    main()
