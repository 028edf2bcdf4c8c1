"""Every gallery example runs, in a subprocess, with a reduced budget.

``DFO_EXAMPLE_SMOKE=1`` makes each example spend a small fraction of its budget;
the check is that the script runs to the end without an error or a warning and
draws at least one figure (sphinx-gallery puts the figures on the page).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))
NEEDS = {"plot_dask.py": ("dask", "distributed")}

# run the script as `python script.py` would (as __main__), then count its figures
RUNNER = """
import runpy, sys, warnings
warnings.simplefilter("error")  # a warning in an example is a bug in it
warnings.filterwarnings("ignore", category=DeprecationWarning, module="(?!dfo|__main__)")
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
runpy.run_path(sys.argv[1], run_name="__main__")
print("FIGURES", len(plt.get_fignums()))
"""


def test_examples_found() -> None:
    assert len(EXAMPLES) >= 7, [p.name for p in EXAMPLES]


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script: Path, tmp_path: Path) -> None:
    for module in NEEDS.get(script.name, ()):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{script.name} needs {module} (the 'distributed' extra)")
    source = script.read_text(encoding="utf-8")
    assert source.startswith('"""'), "a gallery example starts with its title docstring"
    assert "DFO_EXAMPLE_SMOKE" in source, "examples must honour DFO_EXAMPLE_SMOKE"
    env = {
        **os.environ,
        "DFO_EXAMPLE_SMOKE": "1",
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    figures = int(proc.stdout.rsplit("FIGURES", 1)[1])
    assert figures >= 1, f"{script.name} drew no figure"
    assert list(tmp_path.iterdir()) == [], f"{script.name} left files behind"
