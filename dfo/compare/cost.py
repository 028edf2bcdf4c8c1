"""The cost of one gradient in forward-evaluation equivalents, measured on the task.

The common unit of cost in ``dfo compare`` is one forward evaluation of the
objective at one point (on one minibatch for a minibatch task). A gradient
evaluation (``value_and_grad``, backpropagation for a network) costs ``ratio``
units, where ``ratio`` is *measured*: the median time of ``value_and_grad(x)``
divided by the median time of ``evaluate_batch(x[None])`` on the same
minibatch at the same point, timed alternately; a directional derivative (forward
mode, ``value_and_jvp``) costs ``jvp_ratio`` units, measured the same way. A run's
cost is then::

    cost = (nfev - ngev - njvp) + ratio * ngev + jvp_ratio * njvp

(``nfev`` counts every evaluation, those that also returned a gradient or a
directional derivative included).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.objective import Objective

__all__ = ["GradientCost", "measure_gradient_cost", "run_cost"]


@dataclass(frozen=True)
class GradientCost:
    """A measured gradient-to-forward cost ratio and how it was measured.

    Attributes
    ----------
    ratio : float
        Seconds per gradient evaluation / seconds per forward evaluation.
    forward_seconds, gradient_seconds : float
        The two medians, per call.
    repeats : int
        Timings of each kind (each timing averages ``number`` calls).
    number : int
        Calls per timing.
    batch_size : int or None
        Rows of the minibatch the timings used (None: the full objective).
    source : {"measured", "given"}
        Whether the ratio was timed or given by the user (:meth:`given`).
    jvp_ratio : float or None
        Seconds per value with one directional derivative (``value_and_jvp``) /
        seconds per forward evaluation, timed alongside; None when the objective has
        no forward mode. A given cost uses ``ratio`` for it too.
    jvp_seconds : float
        The median time of ``value_and_jvp``, per call (0 when not measured).
    """

    ratio: float
    forward_seconds: float
    gradient_seconds: float
    repeats: int
    number: int
    batch_size: int | None
    source: str = "measured"
    jvp_ratio: float | None = None
    jvp_seconds: float = 0.0

    @classmethod
    def given(cls, ratio: float) -> GradientCost:
        """A ratio chosen by the user instead of measured (reproducible cost columns)."""
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < np.inf:
            raise InvalidOptionError(
                "the gradient cost must be a positive number of forward evaluations; "
                f"got {ratio!r}"
            )
        return cls(float(ratio), 0.0, 0.0, 0, 0, None, "given", float(ratio))

    def describe(self) -> str:
        """One sentence saying what was measured and how."""
        if self.source == "given":
            return f"one gradient = {self.ratio:.2f} forward evaluations, as given (not measured)"
        on = "the objective" if self.batch_size is None else f"one minibatch of {self.batch_size}"
        jvp = ""
        if self.jvp_ratio is not None:
            jvp = (
                f"; one directional derivative (value and JVP, forward mode) = "
                f"{self.jvp_ratio:.2f} ({self.jvp_seconds * 1e6:.0f} us)"
            )
        return (
            f"one gradient (value and gradient, backprop) = {self.ratio:.2f} forward "
            f"evaluations{jvp}, measured on {on} at the starting point: median of "
            f"{self.repeats} alternating timings of {self.number} calls each "
            f"({self.gradient_seconds * 1e6:.0f} us / {self.forward_seconds * 1e6:.0f} us)"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradientCost:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _time(fun: Any, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fun()
    return (time.perf_counter() - start) / number


def measure_gradient_cost(
    objective: Objective,
    x: np.ndarray,
    *,
    repeats: int = 15,
    min_seconds: float = 2e-3,
    seed: int = 0,
) -> GradientCost | None:
    """Measure the cost of one gradient in forward evaluations at ``x``.

    Parameters
    ----------
    objective : Objective
        A stochastic objective is measured on one realization (minibatch).
    x : ndarray, shape (dim,)
    repeats : int, default 15
        Timings of each kind, alternated; their medians are compared.
    min_seconds : float, default 0.002
        Each timing repeats the call until about this long.
    seed : int, default 0
        Seeds the realization.

    Returns
    -------
    GradientCost or None
        None when the objective has no gradient.
    """
    if not objective.has_gradient:
        return None
    sample = objective.realization(np.random.default_rng(seed))
    batch = getattr(sample, "X", None)
    batch_size = (
        int(batch.shape[0])
        if batch is not None and getattr(objective, "batch_size", None)
        else None
    )
    X1 = np.asarray(x, dtype=np.float64)[None, :]

    def forward() -> None:
        sample.evaluate_batch(X1)

    def gradient() -> None:
        sample.value_and_grad(X1[0])

    direction = np.random.default_rng(seed).standard_normal(X1.shape[1])

    def jvp() -> None:
        sample.value_and_jvp(X1[0], direction)

    timed = [forward, gradient] + ([jvp] if objective.has_jvp else [])
    # warm up and choose calls per timing
    one = max(*(_time(fun, 3) for fun in timed), 1e-7)
    number = max(1, min(10_000, int(min_seconds / one)))
    times: list[list[float]] = [[] for _ in timed]
    for _ in range(repeats):
        for fun, out in zip(timed, times, strict=True):
            out.append(_time(fun, number))
    f, g = float(np.median(times[0])), float(np.median(times[1]))
    j = float(np.median(times[2])) if len(times) > 2 else None
    return GradientCost(
        ratio=g / f,
        forward_seconds=f,
        gradient_seconds=g,
        repeats=repeats,
        number=number,
        batch_size=batch_size,
        jvp_ratio=None if j is None else j / f,
        jvp_seconds=0.0 if j is None else j,
    )


def run_cost(
    nfev: Any, ngev: Any, ratio: float | None, njvp: Any = 0, jvp_ratio: float | None = None
) -> Any:
    """Cost in forward-evaluation equivalents: ``(nfev - ngev - njvp) + ratio * ngev +
    jvp_ratio * njvp``.

    Parameters
    ----------
    nfev : int or array_like
        Evaluations, those that also returned a gradient or a directional derivative
        included.
    ngev : int or array_like
        Gradient evaluations.
    ratio : float or None
        Cost of one gradient in forward evaluations; None (no gradients): cost is ``nfev``.
    njvp : int or array_like, default 0
        Evaluations with a directional derivative (forward mode).
    jvp_ratio : float, optional
        Cost of one of those in forward evaluations (default: ``ratio``).

    Returns
    -------
    float or ndarray
        Elementwise for arrays.

    Examples
    --------
    >>> float(run_cost(100, 40, 2.5))
    160.0
    """
    nfev = np.asarray(nfev, dtype=np.float64)
    ngev = np.asarray(ngev, dtype=np.float64)
    njvp = np.asarray(njvp, dtype=np.float64)
    if ratio is None:
        return nfev
    jvp_ratio = ratio if jvp_ratio is None else jvp_ratio
    return nfev - ngev - njvp + ratio * ngev + jvp_ratio * njvp
