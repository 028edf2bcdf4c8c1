"""SPSA against finite-difference SGD on Spall's noisy skewed quartic, same measurements.

Spall's test problem: the skewed quartic loss ``L`` in ``p = 10`` variables, from
``x0 = (1, ..., 1)`` (``L(x0) = 4.178``), where every measurement carries its own
additive Gaussian noise of standard deviation ``sigma``
(:class:`dfo.problems.Noisy`). Each method gets the same number of measurements
(``--budget``, default 10,000); the score is the noise-free normalized loss
``L(x) / L(x0)`` of the point it returns.

As in Spall's comparisons of SPSA with finite-difference stochastic approximation,
both methods perturb by the same amount ``delta``: SPSA's ``c = delta`` (its
perturbation ``c_k = c / (k + 1)**0.101`` moves every coordinate by ``+-c_k``) and
FD-SGD's ``h = delta``. For each ``delta`` each method gets its best remaining
setting from a grid (SPSA: the gain ``a``; FD-SGD: forward or central
differences and the constant learning rate), chosen on tuning seeds 100-102 and
scored on ten other seeds 0-9 (paired: seed ``s`` gives both methods the same
noise stream). Also shown, untuned: SPSA with Spall's guideline ``c = sigma`` and
the automatic choice of ``a``, and FD-SGD with its default ``h`` (from the float
epsilon, meant for noise-free functions) and the best learning rate.

**Defaults, untuned** (printed first): each method exactly as a new user runs it,
median and quartiles of the normalized loss over seeds 0-4 — SPSA (its ``c="auto"``
measures the noise), FD-SGD with ``h="auto"`` (Moré & Wild's step from the measured
noise and curvature) and FD-SGD with its default eps-sized step.

Run: ``python benchmarks/bench_spsa_vs_fd.py [--quick] [--defaults] [--budget N]
[--sigma S ...]`` (about 5 minutes; ``--quick``: one ``delta``, one noise level, a smaller
grid; ``--defaults``: the untuned table only, about 20 seconds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import dfo
from dfo.problems import Noisy, SkewedQuartic
from dfo.threads import describe_blas

P = 10
TUNE_SEEDS = (100, 101, 102)
TEST_SEEDS = tuple(range(10))
DEFAULT_SEEDS = tuple(range(5))
#: the untuned runs: (label, method, options)
DEFAULTS = (
    ("spsa, defaults (c='auto')", "spsa", {}),
    ("fd-sgd, h='auto'", "fd-sgd", {"h": "auto"}),
    ("fd-sgd, defaults (eps step)", "fd-sgd", {}),
)


def normalized_loss(method: str, sigma: float, budget: int, seed: int, **options: Any) -> float:
    """``L(x) / L(x0)`` (noise-free) of the point ``method`` returns after ``budget``."""
    base = SkewedQuartic(P)
    x0 = np.ones(P)
    objective = Noisy(base, sigma) if sigma > 0 else base
    res = dfo.minimize(objective, x0, method=method, budget=budget, seed=seed, **options)
    return base(res.x) / base(x0)


def tune(method: str, grid: list[dict[str, Any]], sigma: float, budget: int) -> dict[str, Any]:
    """The setting of ``grid`` with the lowest median loss on the tuning seeds."""

    def median_loss(options: dict[str, Any]) -> float:
        return statistics.median(
            normalized_loss(method, sigma, budget, s, **options) for s in TUNE_SEEDS
        )

    return min(grid, key=median_loss)


def score(method: str, sigma: float, budget: int, options: dict[str, Any]) -> np.ndarray:
    """Losses on the test seeds."""
    return np.array([normalized_loss(method, sigma, budget, s, **options) for s in TEST_SEEDS])


def describe(losses: np.ndarray) -> str:
    q1, med, q3 = np.quantile(losses, [0.25, 0.5, 0.75])
    return f"{med:9.2e} [{q1:8.2e}, {q3:8.2e}]"


def defaults_table(sigmas: list[float], budget: int) -> None:
    """The untuned methods: median [quartiles] over DEFAULT_SEEDS, and the noise they saw."""
    print(f"\ndefaults, untuned: median [quartiles] over seeds {DEFAULT_SEEDS}")
    for sigma in sigmas:
        print(f"  noise sigma = {sigma:g}")
        medians = {}
        for label, method, options in DEFAULTS:
            losses = np.array(
                [normalized_loss(method, sigma, budget, s, **options) for s in DEFAULT_SEEDS]
            )
            medians[label] = float(np.median(losses))
            print(f"    {label:<30}{describe(losses)}")
        auto, eps = medians["fd-sgd, h='auto'"], medians["fd-sgd, defaults (eps step)"]
        print(f"    fd-sgd h='auto' / eps step: {auto / eps:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=10_000, help="measurements per run")
    parser.add_argument(
        "--sigma", type=float, nargs="+", default=None, help="noise standard deviations"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--defaults", action="store_true", help="only the untuned table")
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")  # one BLAS thread, as dfo runs
    print(f"BLAS threads: {describe_blas()}")
    if args.quick:
        sigmas = args.sigma or [1.0]
        deltas = [0.2]
        gains = (0.1, 0.3)
        rates = (0.01, 0.03)
    else:
        sigmas = args.sigma or [0.1, 1.0]
        deltas = [0.1, 0.2, 0.5, 1.0]
        gains = (0.1, 0.3, 1.0, 3.0)
        rates = (0.003, 0.01, 0.03, 0.1)
    schemes = ("forward", "central")

    t0 = time.perf_counter()
    print(
        f"Skewed quartic, p = {P}, x0 = ones, L(x0) = {SkewedQuartic(P)(np.ones(P)):.3f}; "
        f"{args.budget:,} measurements per run"
    )
    print(
        f"normalized loss L(x)/L(x0), noise-free: median [quartiles] over seeds "
        f"{TEST_SEEDS[0]}-{TEST_SEEDS[-1]}; settings tuned on seeds {TUNE_SEEDS}"
    )
    defaults_table(args.sigma or [0.1], args.budget)
    if args.defaults:
        print(f"\n({time.perf_counter() - t0:.0f} s)")
        return
    for sigma in sigmas:
        print(f"\nnoise sigma = {sigma:g}")
        print(
            f"  {'delta':>5}  {'SPSA, c = delta: median [quartiles]':<38}"
            f"{'FD-SGD, h = delta':<44}{'SPSA/FD':>7}  SPSA lower"
        )
        best: dict[str, tuple[float, str]] = {}
        for delta in deltas:
            spsa_opt = tune("spsa", [{"c": delta, "a": a} for a in gains], sigma, args.budget)
            fd_grid = [
                {"h": delta, "scheme": s, "learning_rate": lr} for s in schemes for lr in rates
            ]
            fd_opt = tune("fd-sgd", fd_grid, sigma, args.budget)
            spsa = score("spsa", sigma, args.budget, spsa_opt)
            fd = score("fd-sgd", sigma, args.budget, fd_opt)
            wins = int(np.sum(spsa < fd))
            fd_setting = f"{fd_opt['scheme']} lr={fd_opt['learning_rate']:g}"
            print(
                f"  {delta:5g}  {describe(spsa)} a={spsa_opt['a']:<5g}"
                f"{describe(fd)} {fd_setting:<13}"
                f"{np.median(spsa) / np.median(fd):7.2f}  {wins} of {len(TEST_SEEDS)}"
            )
            for name, losses in (("SPSA", spsa), ("FD-SGD", fd)):
                if name not in best or np.median(losses) < best[name][0]:
                    best[name] = (float(np.median(losses)), f"delta={delta:g}")
        guideline = score("spsa", sigma, args.budget, {"c": sigma})
        fd_eps_opt = tune("fd-sgd", [{"learning_rate": lr} for lr in rates], sigma, args.budget)
        fd_eps = score("fd-sgd", sigma, args.budget, fd_eps_opt)
        print(f"  SPSA untuned (c = sigma, automatic a):    {describe(guideline)}")
        print(
            f"  FD-SGD, default h from eps, lr={fd_eps_opt['learning_rate']:<7g}"
            f"   {describe(fd_eps)}"
        )
        print(
            f"  best of each: SPSA {best['SPSA'][0]:.2e} ({best['SPSA'][1]}), "
            f"FD-SGD {best['FD-SGD'][0]:.2e} ({best['FD-SGD'][1]})"
        )
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
