"""Wall time of the default ``dfo compare``: this checkout against another, side by side.

Each repeat runs ``dfo compare`` once with this checkout and once with the checkout
given by ``--base`` (a folder holding another version of dfo), alternating which goes
first, each in a fresh temporary folder (its working directory and its ``--out``) with
``PYTHONPATH`` set to that checkout, so that each process and its workers import that
version alone. For each run it prints the wall time, the CPU time of the compare's own
process and of its worker processes, and the load average; then the medians and the
ratios, this checkout over the base. CPU time does not count the time a process waits
for a core, so on a shared machine it is the steadier figure.

Last, for the (method, seed) runs both versions made, it shows per method how many
are identical (final training loss, test metric, evaluations, gradients, iterations,
status), the largest relative difference of the final training loss, and whether
the counts agree: a change that only saves time leaves every run identical.

Target: this checkout's median wall time <= 0.8x the base's. With ``--base-methods``
both compares run the methods the base runs by default (its digits task's), so that the
ratio measures the same work; without it each runs its own default methods, and
methods added since the base count against this checkout.

With ``--per-method``, it measures instead where the time goes: per repeat, each
checkout runs every run of one seed of the default compare (``run_one``, monitoring
included) in one fresh process, one method after another (pycma and scipy.optimize
imported first), alternating which checkout goes first; it prints each method's CPU
seconds for both and their ratio, the sum over the methods both run, and what the
methods only this checkout runs add.

Run: ``python benchmarks/bench_compare.py --base DIR [--repeats N] [--base-methods]
[-- COMPARE ARGS]``,
e.g. ``-- --methods backprop-sgd fd-sgd spsa cma-es nelder-mead random-search``
(arguments after ``--`` are passed to both compares).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import describe_machine, parser, print_table, verdict

TARGET = 0.8
ROOT = Path(__file__).resolve().parent.parent

#: runs ``dfo compare`` in this process and writes its own and its children's CPU time
_WRAPPER = """\
import json, resource, sys
from dfo.cli import main
status = main(sys.argv[2:])
me = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    json.dump({"status": status, "parent": me.ru_utime + me.ru_stime,
               "workers": kids.ru_utime + kids.ru_stime}, f)
sys.exit(status)
"""

_COMPARED = ("train_loss", "test_metric", "nfev", "ngev", "nit", "status")

#: runs each run of one seed of the default compare and prints its CPU seconds (JSON)
_PER_METHOD = """\
import json, sys, time
import cma, scipy.optimize
from dfo.compare.runner import CompareConfig, plan_runs, run_one
seed = int(sys.argv[1])
_, specs = plan_runs(CompareConfig(seeds=(seed,)))
cpu = {}
for spec in specs:
    start = time.process_time()
    run_one(spec)
    cpu[spec.method] = time.process_time() - start
print(json.dumps(cpu))
"""


def per_method(checkout: Path, seed: int) -> dict[str, float]:
    """CPU seconds of each method's run of ``seed`` with ``checkout`` on ``PYTHONPATH``."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "MPLBACKEND": "Agg"}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")  # as in a compare's workers
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", _PER_METHOD, str(seed)],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        sys.exit(f"the runs failed with {checkout}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def main_per_method(versions: dict[str, Path], repeats: int, seed: int) -> None:
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    for i in range(repeats):
        order = list(versions) if i % 2 == 0 else list(versions)[::-1]
        for name in order:
            samples[name].append(per_method(versions[name], seed))
    med = {
        name: {m: statistics.median(run[m] for run in runs) for m in runs[0]}
        for name, runs in samples.items()
    }
    this, base = med["this"], med["base"]
    rows = []
    for m in this:
        if m in base:
            ratios = [a[m] / b[m] for a, b in zip(samples["this"], samples["base"], strict=True)]
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
            rows.append((m, this[m], base[m], this[m] / base[m], spread))
        else:
            rows.append((m, this[m], "-", "-", "only this"))
    common = [m for m in this if m in base]
    both_this, both_base = sum(this[m] for m in common), sum(base[m] for m in common)
    rows.append(("methods in both", both_this, both_base, both_this / both_base, ""))
    extra = sum(this[m] for m in this if m not in base)
    rows.append(("methods only here", extra, "-", "-", ""))
    print(f"CPU seconds per run, seed {seed}, median of {repeats}")
    print_table(("method", "this", "base", "this / base", "per repeat"), rows)


def run_once(checkout: Path, args: list[str]) -> dict[str, Any]:
    """One compare with ``checkout`` on ``PYTHONPATH``; times and its records."""
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(checkout), "MPLBACKEND": "Agg"}
        cpu_file = Path(tmp) / "cpu.json"
        out = Path(tmp) / "run"
        command = [sys.executable, "-c", _WRAPPER, str(cpu_file), "compare", "-q"]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.run(
            [*command, "--out", str(out), *args],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"dfo compare failed with {checkout}:\n{proc.stderr[-2000:]}")
        cpu = json.loads(cpu_file.read_text())
        records = {}
        for line in (out / "runs.jsonl").read_text().splitlines():
            r = json.loads(line)
            records[(r["method"], r["seed"])] = {k: r.get(k) for k in _COMPARED}
    return {
        "wall": wall,
        "parent": cpu["parent"],
        "workers": cpu["workers"],
        "load": load,
        "records": records,
    }


def default_methods(checkout: Path) -> list[str]:
    """The methods ``checkout``'s ``dfo compare`` runs by default (its digits task's)."""
    code = "from dfo.compare.tasks import get_task; print(' '.join(get_task('digits').methods))"
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=checkout,  # ``-c`` puts the working directory first on the path
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"could not read the default methods of {checkout}:\n{proc.stderr[-2000:]}")
    return proc.stdout.split()


def main() -> None:
    argv = sys.argv[1:]
    passed: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, passed = argv[:at], argv[at + 1 :]
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--base", required=True, type=Path, help="folder of the other checkout")
    p.add_argument(
        "--per-method", action="store_true", help="CPU of each method's run of one seed"
    )
    p.add_argument("--seed", type=int, default=0, help="the seed of --per-method")
    p.add_argument(
        "--base-methods",
        action="store_true",
        help="both compares run the base's default methods (the same work)",
    )
    args = p.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    base = args.base.resolve()
    if not (base / "dfo" / "__init__.py").is_file():
        sys.exit(f"--base must be a checkout of dfo (a folder holding dfo/); got {base}")
    versions = {"this": ROOT, "base": base}
    if args.base_methods:
        if "--methods" in passed:
            sys.exit("--base-methods and --methods after -- exclude each other")
        passed = ["--methods", *default_methods(base), *passed]
    print(describe_machine())
    print(f"dfo compare -q {' '.join(passed)}".rstrip() + f"; this: {ROOT}, base: {base}")
    print(f"{repeats} repeats, alternating; seconds")
    print()
    if args.per_method:
        main_per_method(versions, repeats, args.seed)
        return
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in versions}
    rows = []
    for i in range(repeats):
        order = list(versions) if i % 2 == 0 else list(versions)[::-1]
        for name in order:
            s = run_once(versions[name], passed)
            samples[name].append(s)
            rows.append((i + 1, name, s["wall"], s["parent"], s["workers"], s["load"]))
    print_table(("repeat", "version", "wall", "parent CPU", "worker CPU", "load"), rows)
    print()
    med = {
        name: {k: statistics.median(s[k] for s in runs) for k in ("wall", "parent", "workers")}
        for name, runs in samples.items()
    }
    print_table(
        ("median", "wall", "parent CPU", "worker CPU"),
        [(name, m["wall"], m["parent"], m["workers"]) for name, m in med.items()]
        + [
            (
                "this / base",
                med["this"]["wall"] / med["base"]["wall"],
                med["this"]["parent"] / med["base"]["parent"],
                med["this"]["workers"] / med["base"]["workers"],
            )
        ],
    )
    ratio = med["this"]["wall"] / med["base"]["wall"]
    pairs = [a["wall"] / b["wall"] for a, b in zip(samples["this"], samples["base"], strict=True)]
    cpu = [
        (a["parent"] + a["workers"]) / (b["parent"] + b["workers"])
        for a, b in zip(samples["this"], samples["base"], strict=True)
    ]
    print()
    what = "the base's default methods" if args.base_methods else "each version's defaults"
    print(
        f"wall time this / base, {what}: {ratio:.3f} (target <= {TARGET}): "
        f"{verdict(ratio, TARGET, at_least=False)}; per repeat "
        + ", ".join(f"{r:.2f}" for r in pairs)
    )
    print(
        "CPU time (compare and workers) this / base, per repeat: "
        + ", ".join(f"{r:.2f}" for r in cpu)
        + " (on a loaded machine the wall-time ratio tends to it)"
    )
    mine, theirs = samples["this"][0]["records"], samples["base"][0]["records"]
    common = sorted(set(mine) & set(theirs))
    print(f"runs in both: {len(common)} (this: {len(mine)}, base: {len(theirs)})")
    rows = []
    for method in dict.fromkeys(m for m, _ in common):
        keys = [k for k in common if k[0] == method]
        same = sum(mine[k] == theirs[k] for k in keys)
        rel = max(
            abs(mine[k]["train_loss"] - theirs[k]["train_loss"]) / abs(theirs[k]["train_loss"])
            for k in keys
        )
        counts = all(
            mine[k][c] == theirs[k][c] for k in keys for c in ("nfev", "ngev", "nit", "status")
        )
        rows.append((method, f"{same}/{len(keys)}", f"{rel:.1e}", "yes" if counts else "no"))
    print_table(("method", "identical runs", "max rel. diff. final loss", "same counts"), rows)


if __name__ == "__main__":
    main()
