"""dfo: derivative-free optimization, and why backpropagation wins when it can.

One :class:`Objective` interface; five methods (finite-difference SGD, SPSA,
CMA-ES, Nelder-Mead, backprop SGD) plus random search behind one ask/tell
interface and one :func:`minimize`; a from-scratch numpy network to train.

Public names are imported lazily, so ``import dfo`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Objective": "dfo.objective",
    "FunctionObjective": "dfo.objective",
    "as_objective": "dfo.objective",
    "MLP": "dfo.nn.network",
    "NetworkObjective": "dfo.nn.network_objective",
    "estimate_noise": "dfo.noise",
    "finite_difference": "dfo.numdiff",
    "gradcheck": "dfo.numdiff",
    "Result": "dfo.result",
    "load_result": "dfo.result_io",
    "plot_result": "dfo.result_plot",
    "scipy_method": "dfo.scipy_interop",
    "minimize": "dfo.run.minimize",
    "make_optimizer": "dfo.optimizers",
    "methods": "dfo.optimizers",
    "method_options": "dfo.optimizers",
    "register": "dfo.optimizers",
    "Optimizer": "dfo.optimizers",
    "ShapeError": "dfo.exceptions",
    "InvalidOptionError": "dfo.exceptions",
    "ObjectiveOutputError": "dfo.exceptions",
    "ObjectiveOutputTypeError": "dfo.exceptions",
    "GradientNotAvailableError": "dfo.exceptions",
    "NotAskTellError": "dfo.exceptions",
    "AskTellError": "dfo.exceptions",
    "OptionTypeError": "dfo.exceptions",
}
# public submodule name -> module
_SUBMODULES = {
    "problems": "dfo.problems",
    "datasets": "dfo.datasets",
    "exceptions": "dfo.exceptions",
    "options": "dfo.options",
    "step_rules": "dfo.optimizers.step_rules",
}

__all__ = sorted([*_LAZY, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'dfo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
