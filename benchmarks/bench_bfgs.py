"""Quasi-Newton on finite differences against finite-difference SGD, same budget.

The ill-conditioned 10-D ellipsoid ``f(x) = sum_i 1e6^(i/9) x_i^2`` (condition number
1e6, :class:`dfo.problems.Ellipsoid`) from random starts in ``[-5, 5]^10``, budget
``1000 * dim`` evaluations, library defaults: ``fd-bfgs`` (scipy's L-BFGS-B on dfo's
batched forward differences), ``fd-sgd`` (gradient descent on the same differences), and
``backprop-bfgs`` (L-BFGS-B on the exact gradient) as the reference. Printed per method:
runs solved (``f < 1e-8``), the median final ``f`` and evaluations used, and the ratio of
fd-sgd's median ``f`` to fd-bfgs's, measured side by side in one run.

With ``--bbob`` (needs ``cocoex``): bbob f2 and f10 (the same shape through COCO's
rotation and ``T_osz`` oscillation) at d=10 over instances 1-5 (``--instances``), from
the origin in the box [-5, 5]^10, budget ``1000 * d``, each run ended at the final target
``f_opt + 1e-8``: fd-bfgs with each difference ``scheme`` side by side, and fd-sgd.
(``bench_bbob.py --methods fd-bfgs,fd-sgd,scipy-lbfgsb --dims 10 --functions 2,10``
runs instance 1 beside scipy.)

Run: ``python benchmarks/bench_bfgs.py [--quick] [--starts N] [--dim D] [--bbob]`` (seconds).
"""

from __future__ import annotations

import statistics

import numpy as np
from _bench import describe_machine, parser, print_table

import dfo
from dfo import problems

SOLVED = 1e-8
METHODS = ("fd-bfgs", "fd-sgd", "backprop-bfgs")


def bbob(instances: range) -> None:
    """fd-bfgs's schemes and fd-sgd on bbob f2 and f10, d=10, per instance."""
    import cocoex

    dim, budget = 10, 10_000
    box = (np.full(dim, -5.0), np.full(dim, 5.0))
    methods = [(f"fd-bfgs {s}", {"scheme": s}) for s in ("auto", "forward", "central")]
    rows = []
    for fid in (2, 10):
        for label, options in [*methods, ("fd-sgd", {})]:
            method = label.split()[0]
            precisions, used = [], []
            for instance in instances:
                problem = cocoex.BareProblem("bbob", fid, dim, instance)
                f_opt = problem.best_value()
                res = dfo.minimize(
                    problem,
                    np.zeros(dim),
                    method=method,
                    budget=budget,
                    bounds=box,
                    target=f_opt + SOLVED,
                    seed=0,
                    **options,
                )
                precisions.append(max(float(res.fun) - f_opt, 0.0))
                used.append(res.nfev)
            rows.append(
                (
                    f"f{fid}",
                    label,
                    f"{sum(p <= SOLVED for p in precisions)}/{len(precisions)}",
                    f"{max(precisions):.1e}",
                    f"{statistics.median(used):,.0f}",
                )
            )
    print(f"bbob d={dim}, instances {instances.start}-{instances.stop - 1}, budget {budget:,}")
    print_table(("function", "method", "solved", "worst precision", "median evaluations"), rows)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--starts", type=int, default=5, help="random starting points")
    p.add_argument("--dim", type=int, default=10, help="dimension")
    p.add_argument("--bbob", action="store_true", help="bbob f2 and f10 (needs cocoex)")
    p.add_argument("--instances", type=int, default=5, help="bbob instances 1..N")
    args = p.parse_args()
    if args.bbob:
        print(describe_machine())
        bbob(range(1, (2 if args.quick else args.instances) + 1))
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
