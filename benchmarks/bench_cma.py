"""CMA-ES through dfo beside a bare pycma ask/tell loop on the same objective and seed.

dfo runs CMA-ES on pycma (it never reimplements it); this measures what the
toolkit adds around it: the ask/tell adapter, the counted evaluator, best-so-far
tracking, history and the run loop. The bare loop is the one pycma documents::

    es = cma.CMAEvolutionStrategy(x0, sigma0, options)
    while not es.stop():
        X = es.ask()
        es.tell(X, [f(x) for x in X])

with the same options dfo passes (pycma's ``randn`` drawn from a generator seeded
like dfo's), so both runs make the same generations and the same evaluations (the
script checks that the final means agree). The objective is Rosenbrock written as
a plain Python function of one point, called once per candidate in both.

Target: dfo's time per evaluation within 1.2x of the bare loop's.

Run: ``python benchmarks/bench_cma.py [--quick]``.
"""

from __future__ import annotations

import numpy as np
from _bench import apply_threads, describe_machine, parser, print_table, side_by_side, verdict

import dfo
from dfo.optimizers.cma_es import GeneratorRandn

TARGET = 1.2
SIGMA0 = 0.5
SEED = 3


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


class Recorder:
    """Rosenbrock that remembers every value it returned (for the same-run check)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def __call__(self, x: np.ndarray) -> float:
        value = rosenbrock(x)
        self.values.append(value)
        return value


def bare_pycma(f, x0: np.ndarray, budget: int) -> int:  # type: ignore[no-untyped-def]
    """The documented pycma loop; returns the number of evaluations made."""
    import cma

    # the generator dfo.minimize gives the method for seed=SEED
    rng = np.random.default_rng(np.random.SeedSequence(SEED).spawn(2)[0])
    options = {
        "randn": GeneratorRandn(rng),
        "seed": np.nan,
        "verbose": -9,
        "verb_disp": 0,
        "verb_log": 0,
        "maxfevals": np.inf,
    }
    es = cma.CMAEvolutionStrategy(x0, SIGMA0, options)
    nfev = 0
    while not es.stop() and nfev + es.popsize <= budget:
        X = es.ask()
        es.tell(X, [f(x) for x in X])
        nfev += len(X)
    return nfev


def through_dfo(f, x0: np.ndarray, budget: int) -> int:  # type: ignore[no-untyped-def]
    """The same run through dfo.minimize; returns the number of evaluations made."""
    return dfo.minimize(f, x0, "cma-es", budget, seed=SEED, sigma0=SIGMA0).nfev


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    apply_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 9)
    print(describe_machine())
    import cma

    print(f"pycma {cma.__version__}; Rosenbrock, sigma0 = {SIGMA0}; median of {repeats}")
    print()
    rows = []
    for dim, generations in ((10, 300), (100, 60)):
        x0 = np.zeros(dim)
        popsize = 4 + int(3 * np.log(dim))
        budget = generations * popsize
        dfo_budget = budget + 1  # dfo keeps one evaluation for the final mean

        # the same run: the same values in the same order (dfo adds the final mean's)
        bare_values, dfo_values = Recorder(), Recorder()
        bare_pycma(bare_values, x0, budget)
        through_dfo(dfo_values, x0, dfo_budget)
        same = dfo_values.values[: len(bare_values.values)] == bare_values.values
        counts: dict[str, int] = {}

        def run_bare(x0: np.ndarray = x0, budget: int = budget, counts: dict = counts) -> None:
            counts["bare"] = bare_pycma(rosenbrock, x0, budget)

        def run_dfo(x0: np.ndarray = x0, budget: int = dfo_budget, counts: dict = counts) -> None:
            counts["dfo"] = through_dfo(rosenbrock, x0, budget)

        t = side_by_side({"bare": run_bare, "dfo": run_dfo}, repeats=repeats)
        per_bare = t["bare"] / counts["bare"]
        per_dfo = t["dfo"] / counts["dfo"]
        ratio = per_dfo / per_bare
        rows.append(
            (
                dim,
                popsize,
                counts["bare"],
                counts["dfo"],
                "yes" if same else "NO",
                per_bare * 1e6,
                per_dfo * 1e6,
                ratio,
                f"<= {TARGET:g}: {verdict(ratio, TARGET, at_least=False)}",
            )
        )
    print_table(
        (
            "n",
            "popsize",
            "evals bare",
            "evals dfo",
            "same run",
            "bare us/eval",
            "dfo us/eval",
            "ratio",
            "target",
        ),
        rows,
    )
    print("ratio = dfo's time per evaluation / the bare loop's")
    print("(dfo's evaluations include one of the final mean, which it reports)")


if __name__ == "__main__":
    main()
