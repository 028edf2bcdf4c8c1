"""What dfo adds per evaluation around a scipy loop recast into ask/tell.

scipy's Nelder-Mead runs in a worker thread that hands each point over to ``ask``
(``dfo.optimizers.recast``). This times, at n = 1210 (the compare's digits network),
the documented ask/tell loop of dfo's ``nelder-mead`` beside scipy's Nelder-Mead run
directly, both on an objective that costs nothing and always returns 1.0: scipy then
shrinks its simplex after every two points, so its O(n^2) bookkeeping (an argsort
and a copy of the simplex per iteration) is almost absent and the difference is what
dfo adds per evaluation: the thread handoff, the digest of the points asked, the
checks and the counting. Both make the same evaluations (the script checks it).
CPU time of the process (both threads), alternating the two in each repeat.

Run: ``python benchmarks/bench_recast.py [--quick] [--dim N]``.
"""

from __future__ import annotations

import time

import numpy as np
from _bench import apply_threads, describe_machine, parser, print_table, side_by_side

import dfo


def constant(x: np.ndarray) -> float:
    return 1.0


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=1210, help="dimension (default 1210)")
    args = p.parse_args()
    apply_threads(args.threads)
    print(describe_machine())
    n = args.dim
    repeats = args.repeats or (3 if args.quick else 7)
    budget = 10 * (n + 1)
    x0 = np.zeros(n)
    simplex = np.vstack([x0, x0 + 0.1 * np.eye(n)])
    points: dict[str, list[np.ndarray]] = {"scipy": [], "dfo": []}

    def bare() -> None:
        from scipy.optimize import minimize

        seen = points["scipy"] = []
        options = {"maxfev": budget, "adaptive": True, "initial_simplex": simplex}
        minimize(lambda x: seen.append(x.copy()) or 1.0, x0, method="Nelder-Mead", options=options)

    def ours() -> None:
        seen = points["dfo"] = []
        opt = dfo.make_optimizer("nelder-mead", x0, budget=budget, simplex_scale=0.1)
        while not opt.stop():
            X = opt.ask()
            seen.extend(X)
            opt.tell(X, [constant(x) for x in X])

    times = side_by_side(
        {"scipy directly": bare, "dfo ask/tell": ours},
        repeats=repeats,
        clock=time.process_time,
    )
    same = len(points["scipy"]) == len(points["dfo"]) and all(
        np.array_equal(a, b) for a, b in zip(points["scipy"], points["dfo"], strict=True)
    )
    evals = len(points["dfo"])
    per = {name: t / evals * 1e6 for name, t in times.items()}
    print(f"nelder-mead, n = {n}, {evals} evaluations of a constant; median of {repeats}")
    print()
    print_table(
        ("loop", "us/evaluation", "same points"),
        [(name, f"{us:.1f}", "yes" if same else "NO") for name, us in per.items()],
    )
    added = per["dfo ask/tell"] - per["scipy directly"]
    ratio = per["dfo ask/tell"] / per["scipy directly"]
    print(f"dfo adds {added:.1f} us per evaluation ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
