"""Quasi-Newton on finite differences against finite-difference SGD, same budget.

The ill-conditioned 10-D ellipsoid ``f(x) = sum_i 1e6^(i/9) x_i^2`` (condition number
1e6, :class:`dfo.problems.Ellipsoid`) from random starts in ``[-5, 5]^10``, budget
``1000 * dim`` evaluations, library defaults: ``fd-bfgs`` (scipy's L-BFGS-B on dfo's
batched forward differences), ``fd-sgd`` (gradient descent on the same differences), and
``backprop-bfgs`` (L-BFGS-B on the exact gradient) as the reference. Printed per method:
runs solved (``f < 1e-8``), the median final ``f`` and evaluations used, and the ratio of
fd-sgd's median ``f`` to fd-bfgs's, measured side by side in one run.

bbob f2 and f10 (the same shape, with COCO's transformations) are in
``bench_bbob.py --methods fd-bfgs,fd-sgd,scipy-lbfgsb --dims 10 --functions 2,10``.

Run: ``python benchmarks/bench_bfgs.py [--quick] [--starts N] [--dim D]`` (seconds).
"""

from __future__ import annotations

import statistics

import numpy as np
from _bench import describe_machine, parser, print_table

import dfo
from dfo import problems

SOLVED = 1e-8
METHODS = ("fd-bfgs", "fd-sgd", "backprop-bfgs")


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--starts", type=int, default=5, help="random starting points")
    p.add_argument("--dim", type=int, default=10, help="dimension")
    args = p.parse_args()
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
