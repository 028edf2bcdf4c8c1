"""Quasi-Newton on finite differences against finite-difference SGD, same budget.

The ill-conditioned 10-D ellipsoid ``f(x) = sum_i 1e6^(i/9) x_i^2`` (condition number
1e6, :class:`dfo.problems.Ellipsoid`) from random starts in ``[-5, 5]^10``, budget
``1000 * dim`` evaluations, library defaults: ``fd-bfgs`` (scipy's L-BFGS-B on dfo's
batched forward differences), ``fd-sgd`` (gradient descent on the same differences), and
``backprop-bfgs`` (L-BFGS-B on the exact gradient) as the reference. Printed per method:
runs solved (``f < 1e-8``), the median final ``f`` and evaluations used, and the ratio of
fd-sgd's median ``f`` to fd-bfgs's, measured side by side in one run.

With ``--bbob`` (needs ``cocoex``): fd-bfgs with each difference ``scheme`` side by
side on bbob functions (``--functions``, default the smooth unimodal 1, 2, 8, 10, 11, 12,
14) at ``--dims`` (default 10 and 20) over instances 1-3 (``--instances``), from the
origin in the box [-5, 5]^d, budget ``1000 * d``, each run ended at the final target
``f_opt + 1e-8``. Printed per function and dimension: instances solved, median and worst
precision per scheme, then the largest ratio of auto's precision to forward's over all
runs (the default must not do worse than forward differences). fd-sgd and scipy run
directly are in ``bench_bbob.py --methods fd-bfgs,fd-sgd,scipy-lbfgsb``.

Run: ``python benchmarks/bench_bfgs.py [--quick] [--starts N] [--dim D]`` (seconds) or
``python benchmarks/bench_bfgs.py --bbob [--functions 2,10] [--dims 10] [--instances N]``
(about a minute by default).
"""

from __future__ import annotations

import statistics

import numpy as np
from _bench import describe_machine, parser, print_table

import dfo
from dfo import problems

SOLVED = 1e-8
METHODS = ("fd-bfgs", "fd-sgd", "backprop-bfgs")


SCHEMES = ("auto", "forward", "central")


def bbob(functions: list[int], dims: list[int], instances: range) -> None:
    """fd-bfgs's difference schemes side by side on bbob functions, per dimension."""
    import cocoex

    rows, worse = [], []
    for dim in dims:
        box = (np.full(dim, -5.0), np.full(dim, 5.0))
        for fid in functions:
            precision: dict[str, list[float]] = {s: [] for s in SCHEMES}
            for instance in instances:
                problem = cocoex.BareProblem("bbob", fid, dim, instance)
                f_opt = problem.best_value()
                for scheme in SCHEMES:
                    res = dfo.minimize(
                        problem,
                        np.zeros(dim),
                        method="fd-bfgs",
                        budget=1000 * dim,
                        bounds=box,
                        target=f_opt + SOLVED,
                        seed=0,
                        scheme=scheme,
                    )
                    precision[scheme].append(max(float(res.fun) - f_opt, 0.0))
            auto, forward = precision["auto"], precision["forward"]
            worse += [
                (max(a, SOLVED) / max(f, SOLVED), f"f{fid} d={dim} i{i}")
                for a, f, i in zip(auto, forward, instances, strict=True)
            ]
            rows.append(
                (
                    f"f{fid}",
                    str(dim),
                    *(
                        f"{sum(p <= SOLVED for p in precision[s])}/{len(instances)}"
                        f" {statistics.median(precision[s]):.1e} {max(precision[s]):.1e}"
                        for s in SCHEMES
                    ),
                )
            )
    print(
        f"bbob, instances {instances.start}-{instances.stop - 1}, budget 1000 * d, "
        "precision f - f_opt"
    )
    print_table(("function", "d", *(f"{s}: solved median worst" for s in SCHEMES)), rows)
    ratio, where = max(worse)
    print(
        f"largest ratio of auto's precision to forward's over all runs (each counted as "
        f"{SOLVED:.0e} once solved): {ratio:.2f} ({where})"
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--starts", type=int, default=5, help="random starting points")
    p.add_argument("--dim", type=int, default=10, help="dimension")
    p.add_argument("--bbob", action="store_true", help="bbob functions (needs cocoex)")
    p.add_argument("--functions", default="1,2,8,10,11,12,14", help="bbob function ids")
    p.add_argument("--dims", default="10,20", help="bbob dimensions")
    p.add_argument("--instances", type=int, default=3, help="bbob instances 1..N")
    args = p.parse_args()
    if args.bbob:
        print(describe_machine())
        functions = [int(v) for v in args.functions.split(",")]
        dims = [int(v) for v in args.dims.split(",")]
        bbob(functions, dims, range(1, (1 if args.quick else args.instances) + 1))
        return
    starts = 2 if args.quick else args.starts
    f = problems.get("ellipsoid", args.dim)
    budget = 1000 * args.dim
    rng = np.random.default_rng(0)
    x0s = [rng.uniform(-5.0, 5.0, args.dim) for _ in range(starts)]
    print(describe_machine())
    print(f"ellipsoid, dim {args.dim}, condition 1e6, budget {budget:,}, {starts} starts")
    finals: dict[str, list[float]] = {}
    rows = []
    for method in METHODS:
        runs = [dfo.minimize(f, x0, method=method, budget=budget, seed=0) for x0 in x0s]
        finals[method] = [float(r.fun) for r in runs]
        rows.append(
            (
                method,
                f"{sum(v < SOLVED for v in finals[method])}/{starts}",
                f"{statistics.median(finals[method]):.2e}",
                f"{statistics.median(r.nfev for r in runs):,.0f}",
            )
        )
    print_table(("method", "solved", "median f", "median evaluations"), rows)
    ratio = statistics.median(finals["fd-sgd"]) / max(statistics.median(finals["fd-bfgs"]), 1e-300)
    print(f"median f of fd-sgd / median f of fd-bfgs: {ratio:.2e}")


if __name__ == "__main__":
    main()
