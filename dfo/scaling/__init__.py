"""dfo scaling: why backprop is cheaper than tweaking each weight, measured.

Three measurements on ``64-h-10`` networks over the bundled digits:

1. The cost of one gradient as the network widens from about 100 to 100,000
   parameters (:func:`measure_gradient_costs`): evaluations and time of a
   forward and a central finite difference, of forward mode (``n`` exact directional
   derivatives), of a forward gradient and SPSA (one random direction), and of
   backprop, with fitted log-log slopes (:func:`fit_slopes`). Finite differences and
   forward mode need ``n`` passes of ``O(n)`` each, so ``O(n^2)`` time, exact or not;
   backprop (reverse mode) one forward and one backward pass, ``O(n)``.
2. The error of a finite-difference gradient against the step ``h``
   (:func:`fd_step_error_curve`), forward and central, float64 and float32: a V
   with its bottom near ``sqrt(eps)`` or ``eps^(1/3)``.
3. How well SPSA's and the forward gradient's estimates, averaged over ``q``
   directions, point along the gradient, against ``q`` and against ``n``
   (:func:`estimate_cosine`).

:func:`run` (the ``dfo scaling`` subcommand; options in :func:`add_arguments`)
prints the tables and slopes and writes CSV files and PNG figures. The functions
live in :mod:`dfo.scaling.costs`, :mod:`dfo.scaling.accuracy`,
:mod:`dfo.scaling.plots` and :mod:`dfo.scaling.workload` and are re-exported here.

Examples
--------
>>> import argparse
>>> from dfo import scaling
>>> parser = argparse.ArgumentParser(prog="dfo scaling")
>>> scaling.add_arguments(parser)
>>> args = parser.parse_args(["--quick", "--out", "scaling-out"])
>>> args.quick, args.out
(True, 'scaling-out')
"""

from __future__ import annotations

from dfo.scaling.accuracy import (
    CosineRecord,
    StepErrorRecord,
    estimate_cosine,
    fd_step_error_curve,
    spsa_cosine,
)
from dfo.scaling.command import add_arguments, run
from dfo.scaling.costs import (
    EXPECTED_SLOPES,
    METHODS,
    GradientTiming,
    Slope,
    fit_slopes,
    measure_gradient_costs,
)
from dfo.scaling.workload import network_for, sweep_sizes

__all__ = [
    "EXPECTED_SLOPES",
    "METHODS",
    "CosineRecord",
    "GradientTiming",
    "Slope",
    "StepErrorRecord",
    "add_arguments",
    "estimate_cosine",
    "fd_step_error_curve",
    "fit_slopes",
    "measure_gradient_costs",
    "network_for",
    "run",
    "spsa_cosine",
    "sweep_sizes",
]
