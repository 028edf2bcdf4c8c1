"""A compare's worker processes import pycma without what it loads for unused extras."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import dfo
from dfo import problems

_CHILD = """
import json, sys
import numpy as np
from dfo.compare.runner import _worker_init
_worker_init(("cma",))
lean = {name: name in sys.modules for name in ("cma", "scipy.stats", "matplotlib.pyplot")}
import dfo
from dfo import problems
res = dfo.minimize(problems.get("rosenbrock", 6), np.full(6, 0.5), "cma-es", budget=600, seed=4)
import scipy.stats, matplotlib.pyplot  # afterwards they import as usual
print(json.dumps({"lean": lean, "x": res.x.tolist(), "nfev": res.nfev,
                  "later": hasattr(scipy.stats, "kendalltau")}))
"""


def test_worker_imports_pycma_lean_and_runs_it_as_anywhere():
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert proc.stderr == ""  # pycma's fallbacks are silent
    out = json.loads(proc.stdout)
    assert out["lean"] == {"cma": True, "scipy.stats": False, "matplotlib.pyplot": False}
    assert out["later"]
    here = dfo.minimize(
        problems.get("rosenbrock", 6), np.full(6, 0.5), "cma-es", budget=600, seed=4
    )
    np.testing.assert_array_equal(out["x"], here.x)
    assert out["nfev"] == here.nfev
