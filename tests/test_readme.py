"""The README's Python snippets run, in order, as one script, where processes are spawned.

The script runs as ``python script.py`` with the "spawn" start method (macOS's and
Windows' default), so that a process pool without an ``if __name__ == "__main__":``
guard fails here as it would there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
PRELUDE = """import multiprocessing
import matplotlib

matplotlib.use("Agg")
multiprocessing.set_start_method("spawn", force=True)

"""


def _run(source: str, folder: Path) -> subprocess.CompletedProcess[str]:
    script = folder / "readme_snippets.py"
    script.write_text(PRELUDE + source, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", str(script)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_readme_snippets_run_where_processes_are_spawned(tmp_path):
    assert len(SNIPPETS) >= 2 and any("ProcessPoolExecutor" in s for s in SNIPPETS)
    proc = _run("\n".join(SNIPPETS), tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "OptimizeResult" in proc.stdout
    assert (tmp_path / "run.json").is_file()  # what the snippet saved


def test_an_unguarded_pool_fails_there(tmp_path):
    # the check above can fail: the same pool without its guard does
    pool = next(s for s in SNIPPETS if "ProcessPoolExecutor" in s)
    lines = pool.splitlines()
    guard = next(i for i, line in enumerate(lines) if line.startswith("if __name__"))
    unguarded = "\n".join(
        lines[:guard]
        + [line[4:] if line.startswith("    ") else line for line in lines[guard + 1 :]]
    )
    first = SNIPPETS[0].split("res = dfo.minimize", 1)[0]  # imports and simulate only
    proc = _run(first + "\n" + unguarded, tmp_path)
    assert proc.returncode != 0
    assert "bootstrapping phase" in proc.stderr or "BrokenProcessPool" in proc.stderr
