"""The cost of one gradient as the network grows: forward methods against reverse mode.

Measurements behind ``dfo scaling`` (see :mod:`dfo.scaling`). On a family of
``64-h-10`` networks (the bundled 8x8 digits, a fixed batch of rows,
``n = 75 h + 10`` parameters, widened from ``h = 1``) :func:`measure_gradient_costs`
times one gradient by

- a forward difference, :func:`dfo.finite_difference` with ``scheme="forward"``:
  ``n + 1`` evaluations, the probes in batched ``evaluate_batch`` calls;
- a central difference: ``2 n`` evaluations;
- forward mode, :meth:`dfo.MLP.jvp` along the ``n`` unit vectors (``fd_block`` of
  them per pass): ``n`` directional derivatives, the exact gradient;
- a forward gradient, one iteration of dfo's ``forward-gradient`` method (ask, one
  :meth:`~dfo.objective.Objective.value_and_jvp` along a random direction, tell): an
  unbiased estimate from one forward pass with a tangent;
- SPSA, one iteration of dfo's ``spsa`` method (ask, 2 evaluations along one random
  +-1 direction, tell): an estimate, not the gradient;
- backpropagation, :meth:`~dfo.objective.Objective.value_and_grad`: one forward and
  one backward pass;

and one evaluation of the loss, the common unit. An evaluation on a fixed batch
costs ``O(n)`` (every weight is used once per row), so finite differences and forward
mode cost ``O(n^2)`` per gradient (``n`` passes, exact or not), backprop ``O(n)`` (one
reverse pass), and the one-direction estimates ``O(n)``. :func:`fit_slopes` fits the
log-log slopes.

Finite-difference probes are evaluated in blocks of ``fd_block`` rows (64 by
default; ``finite_difference(..., chunk_size=fd_block)``), one batched
``evaluate_batch`` call per block, so every block is the same work whether the
gradient is computed in full or not. For large ``n`` a whole gradient would take
minutes, so a forward and a central block are timed on sampled coordinates
(full-length probe rows, built as :func:`dfo.finite_difference` builds them); their
rows are the same work, so the faster time per row of the two, times the number of
rows (``n + 1`` or ``2 n``), is the estimate; forward mode likewise times one pass
of ``fd_block`` sampled unit vectors and scales it by ``n / fd_block``. Such records
have ``extrapolated=True``. Where the whole gradient is timed, the sampled estimate is
computed too, as a check of the extrapolation.

Each time is measured on two clocks: the process's CPU time
(``time.process_time``, the default for the analysis) and wall-clock time. With
single-threaded BLAS on an idle machine they agree; on a shared machine wall time
also counts the time other processes hold the cores, which says nothing about
the cost of a gradient (on a machine with more runnable processes than cores it
flattened the fitted slopes from 1 to about 0.7, while the CPU-time slopes stayed
within 0.07 of theory). Both are the minimum over rounds that interleave all
sizes and methods (other processes only ever add time, and interleaving keeps a
burst of load from skewing one size).

Examples
--------
>>> from dfo.scaling.costs import measure_gradient_costs
>>> records = measure_gradient_costs([85, 760], batch=32, repeats=1, min_time=0.0)
>>> sorted({r.method for r in records})
['backprop', 'central-fd', 'forward-fd', 'forward-gradient', 'forward-mode', 'loss', 'spsa']
>>> [r.evaluations for r in records if r.method == "forward-fd"]
[86, 761]
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.nn.network_objective import NetworkObjective
from dfo.numdiff import finite_difference
from dfo.optimizers import make_optimizer
from dfo.scaling.workload import (
    CoordinateSample,
    digits_batch,
    int_option,
    network_for,
    real_option,
    rel_error,
    sizes_option,
    sweep_sizes,
)

__all__ = [
    "CLOCKS",
    "EXPECTED_SLOPES",
    "METHODS",
    "GradientTiming",
    "Slope",
    "fit_slopes",
    "measure_gradient_costs",
    "network_for",
    "sweep_sizes",
]

CLOCKS = ("cpu", "wall")
"""Clocks every time is measured on; see the module docstring."""

METHODS = (
    "loss",
    "forward-fd",
    "central-fd",
    "forward-mode",
    "forward-gradient",
    "spsa",
    "backprop",
)
"""Methods timed per size; ``"loss"`` is one evaluation, the common unit."""

EXPECTED_SLOPES: dict[tuple[str, str], float] = {
    ("forward-fd", "evaluations"): 1.0,
    ("central-fd", "evaluations"): 1.0,
    ("forward-mode", "evaluations"): 1.0,
    ("forward-gradient", "evaluations"): 0.0,
    ("spsa", "evaluations"): 0.0,
    ("backprop", "evaluations"): 0.0,
    ("loss", "seconds"): 1.0,
    ("forward-fd", "seconds"): 2.0,
    ("central-fd", "seconds"): 2.0,
    ("forward-mode", "seconds"): 2.0,
    ("forward-gradient", "seconds"): 1.0,
    ("spsa", "seconds"): 1.0,
    ("backprop", "seconds"): 1.0,
}
"""Expected log-log slope of each (method, quantity) against the number of parameters."""


# -- records ----------------------------------------------------------------------------
@dataclass(frozen=True)
class GradientTiming:
    """The cost of one gradient by one method at one network size.

    Attributes
    ----------
    n_params : int
        Parameters of the network ``64-hidden-10``.
    hidden : int
        Hidden width.
    method : str
        One of :data:`METHODS`.
    evaluations : int
        Loss evaluations per gradient: ``n + 1`` (forward FD), ``2 n`` (central),
        ``n`` (forward mode: forward passes with a tangent), 1 (forward gradient),
        2 (SPSA), 1 (backprop: one forward pass, plus one backward pass), 1 (loss).
    seconds : float
        Time per gradient on the analysis clock (``clock``); extrapolated for
        sampled finite differences.
    extrapolated : bool
        Whether the times were scaled up from ``probes_timed`` probe rows.
    probes_timed : int
        Probe rows evaluated in the timed call (``evaluations`` unless extrapolated).
    forward_equivalents : float
        ``seconds`` divided by the time of one loss evaluation (same clock).
    rel_error : float
        ``||g - g_backprop|| / ||g_backprop||`` over the coordinates computed
        (finite differences and forward mode; nan for the other methods).
    sample_estimate : float
        Finite differences timed in full: the time (analysis clock) estimated from
        one sampled block, a check of the extrapolation; nan otherwise.
    wall_seconds, cpu_seconds : float
        The time per gradient on each clock.
    clock : str
        Which of them ``seconds`` is: ``"cpu"`` or ``"wall"``.
    """

    n_params: int
    hidden: int
    method: str
    evaluations: int
    seconds: float
    extrapolated: bool
    probes_timed: int
    forward_equivalents: float
    rel_error: float = math.nan
    sample_estimate: float = math.nan
    wall_seconds: float = math.nan
    cpu_seconds: float = math.nan
    clock: str = "cpu"


@dataclass(frozen=True)
class Slope:
    """A fitted log-log slope of a cost against the number of parameters.

    Attributes
    ----------
    method, quantity : str
        The method and ``"evaluations"`` or ``"seconds"``.
    slope : float
        Least-squares slope of ``log(quantity)`` on ``log(n)`` over the fit range.
    expected : float
        The slope theory predicts (:data:`EXPECTED_SLOPES`).
    n_min, n_max : int
        Smallest and largest size in the fit range.
    n_points : int
        Sizes in the fit range.
    slope_all : float
        The same fit over all sizes (small sizes are dominated by fixed per-call
        overhead, so this is lower for times).
    n_extrapolated : int
        Points of the fit range whose value was extrapolated from sampled coordinates.
    slope_cpu, slope_wall : float
        For times: the fit-range slope on each clock (``slope`` is one of them);
        nan for evaluations.
    """

    method: str
    quantity: str
    slope: float
    expected: float
    n_min: int
    n_max: int
    n_points: int
    slope_all: float
    n_extrapolated: int
    slope_cpu: float = math.nan
    slope_wall: float = math.nan

    def ok(self, tolerance: float = 0.25) -> bool:
        """Whether the slope is within ``tolerance`` of the expected one."""
        return abs(self.slope - self.expected) <= tolerance


def _fd(obj: Any, x: np.ndarray, scheme: str, block: int) -> Any:
    return finite_difference(obj, x, scheme=scheme, chunk_size=block)


class _Timer:
    """Time per call of ``fn`` on both clocks: the minimum over interleaved rounds.

    :meth:`calibrate` makes the first call (a warm-up, kept as :attr:`result`) and
    fixes how many calls one timing loops over so that it lasts ``min_time``; a call
    slower than that counts as the first timing. :meth:`time_once` adds one timing.
    """

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.number = 1
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.result: Any = None

    def calibrate(self, min_time: float) -> None:
        w0, c0 = time.perf_counter(), time.process_time()
        self.result = self.fn()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if wall >= min_time:
            self.wall.append(wall)
            self.cpu.append(cpu)
        else:
            self.number = min(100_000, max(1, math.ceil(min_time / max(wall, 1e-7))))

    def time_once(self) -> None:
        fn, number = self.fn, self.number
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(number):
            fn()
        self.wall.append((time.perf_counter() - w0) / number)
        self.cpu.append((time.process_time() - c0) / number)

    def seconds(self, clock: str) -> float:
        return min(self.cpu if clock == "cpu" else self.wall)


def _run_timers(
    timers: Sequence[_Timer], *, repeats: int, min_time: float, progress: bool, desc: str
) -> None:
    """Calibrate every timer, then time them in ``repeats`` interleaved rounds.

    Interleaving spreads each measurement over the whole run, so a burst of load
    from other processes does not skew one size against the others.
    """
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(timers) * (repeats + 1), desc=desc, leave=False, file=sys.stderr)
    try:
        for t in timers:
            t.calibrate(min_time)
            if bar is not None:
                bar.update()
        for _ in range(repeats):
            for t in timers:
                if len(t.wall) < repeats:
                    t.time_once()
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()


# -- the sweep --------------------------------------------------------------------------
def measure_gradient_costs(
    sizes: Sequence[int],
    *,
    batch: int = 256,
    repeats: int = 3,
    min_time: float = 0.02,
    fd_exact_max: int = 3_000,
    fd_block: int = 64,
    spsa_c: float = 1e-4,
    clock: str = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> list[GradientTiming]:
    """Time one gradient by each method at each network size.

    Parameters
    ----------
    sizes : sequence of int
        Approximate parameter counts; each becomes :func:`network_for` ``(n)``.
    batch : int, default 256
        Digit images in the fixed batch the loss is evaluated on (an evaluation
        costs about ``2 * batch * n`` flops).
    repeats : int, default 3
        Timings per measurement, made in interleaved rounds over all sizes and
        methods; the minimum is reported.
    min_time : float, default 0.02
        Seconds (wall) each timing lasts at least (fast calls are looped).
    fd_exact_max : int, default 3000
        Largest ``n`` at which a whole finite-difference gradient is timed; above
        it the time is extrapolated from one block of sampled coordinates.
    fd_block : int, default 64
        Probe rows per ``evaluate_batch`` call of a finite difference
        (``chunk_size`` of :func:`dfo.finite_difference`), and rows of the sampled
        block: ``fd_block - 1`` coordinates plus the center (forward),
        ``fd_block // 2`` coordinates (central).
    spsa_c : float, default 1e-4
        SPSA perturbation size.
    clock : {"cpu", "wall"}, default "cpu"
        The clock of ``seconds`` (both are recorded); see the module docstring.
    seed : int, default 0
        Seeds the batch, the parameters, the sampled coordinates and SPSA directions.
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    list of GradientTiming
        One record per size and method of :data:`METHODS`, sizes ascending.

    Raises
    ------
    InvalidOptionError
        If an option is out of range.
    """
    sizes = sorted({network_for(n).n_params for n in sizes_option(sizes)})
    repeats = int_option(repeats, "repeats")
    min_time = real_option(min_time, "min_time")
    fd_exact_max = int_option(fd_exact_max, "fd_exact_max", 0)
    fd_block = int_option(fd_block, "fd_block", 2)
    spsa_c = real_option(spsa_c, "spsa_c", strict=True)
    if clock not in CLOCKS:
        raise InvalidOptionError(f"clock must be one of {list(CLOCKS)}; got {clock!r}")
    Xb, yb = digits_batch(batch, seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    plans = [
        _SizePlan(NetworkObjective(network_for(n), Xb, yb), rng, fd_exact_max, fd_block, spsa_c)
        for n in sizes
    ]
    timers = [t for plan in plans for t in plan.timers.values()]
    _run_timers(
        timers, repeats=repeats, min_time=min_time, progress=progress, desc="gradient costs"
    )
    return [r for plan in plans for r in plan.records(clock)]


#: forward mode pushes the tangents of this many bytes at most through one pass
_TANGENT_BYTES = 16 * 2**20

#: learning rate of the timed iterations: the iterate stays (to rounding) where it is
_STILL = 1e-300


def _spsa_iteration(
    obj: NetworkObjective, theta: np.ndarray, seed: int, c: float
) -> Callable[[], Any]:
    """One iteration of dfo's ``spsa`` (ask, 2 evaluations, tell) at ``theta``."""
    opt: Any = make_optimizer("spsa", theta, seed=seed, a=_STILL, c=c)

    def iteration() -> Any:
        X = opt.ask()
        opt.tell(X, obj.evaluate_batch(X))
        return opt.gradient

    return iteration


def _forward_gradient_iteration(
    obj: NetworkObjective, theta: np.ndarray, seed: int
) -> Callable[[], Any]:
    """One iteration of dfo's ``forward-gradient`` (ask, one JVP, tell) at ``theta``."""
    opt: Any = make_optimizer("forward-gradient", theta, seed=seed, learning_rate=_STILL)

    def iteration() -> Any:
        X = opt.ask()
        value, dderiv = obj.value_and_jvp(X[0], opt.directions()[0])
        opt.tell(X, [value], [dderiv])
        return opt.gradient

    return iteration


def _forward_mode(
    obj: NetworkObjective, theta: np.ndarray, coords: np.ndarray, block: int
) -> np.ndarray:
    """The gradient's entries ``coords`` by forward mode, ``block`` unit vectors a pass."""
    out = np.empty(coords.size)
    for start in range(0, coords.size, block):
        rows = coords[start : start + block]
        V = np.zeros((rows.size, obj.dim))
        V[np.arange(rows.size), rows] = 1.0
        out[start : start + rows.size] = obj.net.jvp(
            theta, V, obj.X, obj.y, obj.loss, check=False
        )[1]
    return out


class _SizePlan:
    """The timers of :func:`measure_gradient_costs` for one network, and its records."""

    def __init__(
        self,
        obj: NetworkObjective,
        rng: np.random.Generator,
        fd_exact_max: int,
        fd_block: int,
        spsa_c: float,
    ) -> None:
        net = obj.net
        n = net.n_params
        theta = net.init_params(rng)
        self.n, self.hidden = n, net.sizes[1]
        self.g_ref = obj.value_and_grad(theta)[1]
        seed = int(rng.integers(2**63))
        timers = {
            "loss": _Timer(lambda: obj(theta)),
            "backprop": _Timer(lambda: obj.value_and_grad(theta)),
            "spsa": _Timer(_spsa_iteration(obj, theta, seed, spsa_c)),
            "forward-gradient": _Timer(_forward_gradient_iteration(obj, theta, seed)),
        }
        # One block of probe rows on sampled coordinates: fd_block - 1 coordinates
        # and the center (forward), fd_block // 2 coordinates (central).
        self.coords: dict[str, np.ndarray] = {}
        for s, k in (("forward", fd_block - 1), ("central", fd_block // 2)):
            if k < n:
                coords = np.sort(rng.choice(n, size=k, replace=False))
                sub = CoordinateSample(obj, theta, coords)
                x_sub = theta[coords]
                self.coords[s] = coords
                timers[f"{s}-sample"] = _Timer(partial(_fd, sub, x_sub, s, fd_block))
        self.exact = n <= fd_exact_max or len(self.coords) < 2
        # forward mode: k unit vectors per pass (k bounded by the tangents' memory)
        self.jvp_block = max(
            1, min(fd_block, _TANGENT_BYTES // (8 * obj.X.shape[0] * sum(net.sizes[1:])))
        )
        self.jvp_coords = np.sort(rng.choice(n, size=min(n, self.jvp_block), replace=False))
        coords, block = self.jvp_coords, self.jvp_block
        timers["forward-mode-sample"] = _Timer(lambda: _forward_mode(obj, theta, coords, block))
        if self.exact:
            for s in ("forward", "central"):
                timers[f"{s}-fd"] = _Timer(partial(_fd, obj, theta, s, fd_block))
            timers["forward-mode"] = _Timer(lambda: _forward_mode(obj, theta, np.arange(n), block))
        self.timers = timers

    def records(self, clock: str) -> list[GradientTiming]:
        n, timers = self.n, self.timers

        def times(timer: _Timer) -> dict[str, float]:
            return {c: timer.seconds(c) for c in CLOCKS}

        loss = times(timers["loss"])

        def record(
            method: str, evaluations: int, t: dict[str, float], **kw: Any
        ) -> GradientTiming:
            kw.setdefault("extrapolated", False)
            kw.setdefault("probes_timed", evaluations)
            return GradientTiming(
                n,
                self.hidden,
                method,
                evaluations,
                t[clock],
                forward_equivalents=t[clock] / loss[clock] if loss[clock] > 0 else math.nan,
                wall_seconds=t["wall"],
                cpu_seconds=t["cpu"],
                clock=clock,
                **kw,
            )

        # Seconds per probe row from the sampled blocks: forward and central rows are
        # the same work (a full-length row in a block of fd_block), so the minimum
        # over both blocks' timings is kept.
        samples = {s: timers[f"{s}-sample"] for s in self.coords}
        per_row = {c: min(t.seconds(c) / t.result.nfev for t in samples.values()) for c in CLOCKS}
        out = [record("loss", 1, loss)]
        for s in ("forward", "central"):
            rows = n + 1 if s == "forward" else 2 * n
            estimate = {c: per_row[c] * rows for c in CLOCKS} if samples else None
            if self.exact:
                full = timers[f"{s}-fd"]
                error = rel_error(full.result.grad, self.g_ref)
                out.append(
                    record(
                        f"{s}-fd",
                        full.result.nfev,
                        times(full),
                        rel_error=error,
                        sample_estimate=math.nan if estimate is None else estimate[clock],
                    )
                )
            elif estimate is not None:  # not exact: both sampled blocks exist
                sample = samples[s]
                error = rel_error(sample.result.grad, self.g_ref[self.coords[s]])
                out.append(
                    record(
                        f"{s}-fd",
                        rows,
                        estimate,
                        extrapolated=True,
                        probes_timed=sample.result.nfev,
                        rel_error=error,
                    )
                )
        sample = timers["forward-mode-sample"]
        per_direction = {c: sample.seconds(c) / self.jvp_coords.size for c in CLOCKS}
        estimate = {c: per_direction[c] * n for c in CLOCKS}
        if self.exact:
            full = timers["forward-mode"]
            out.append(
                record(
                    "forward-mode",
                    n,
                    times(full),
                    rel_error=rel_error(full.result, self.g_ref),
                    sample_estimate=estimate[clock],
                )
            )
        else:
            out.append(
                record(
                    "forward-mode",
                    n,
                    estimate,
                    extrapolated=True,
                    probes_timed=self.jvp_coords.size,
                    rel_error=rel_error(sample.result, self.g_ref[self.jvp_coords]),
                )
            )
        out.append(record("forward-gradient", 1, times(timers["forward-gradient"])))
        out.append(record("spsa", 2, times(timers["spsa"])))
        out.append(record("backprop", 1, times(timers["backprop"])))
        return out


def fit_slopes(records: Sequence[GradientTiming], *, fit_from: int = 3_000) -> list[Slope]:
    """Least-squares log-log slopes of evaluations and time against ``n``.

    Parameters
    ----------
    records : sequence of GradientTiming
        From :func:`measure_gradient_costs`.
    fit_from : int, default 3000
        The fit range is the sizes ``n >= fit_from``: below it a call's fixed
        overhead (Python, argument checks, small-matrix inefficiency) rivals the
        ``O(n)`` arithmetic and flattens the curve. If fewer than two sizes reach it,
        the two largest are used. ``slope_all`` is the fit over every size.

    Returns
    -------
    list of Slope
        One per (method, quantity) of :data:`EXPECTED_SLOPES` present in ``records``.
    """
    fit_from = int_option(fit_from, "fit_from", 0)
    slopes = []
    for (method, quantity), expected in EXPECTED_SLOPES.items():
        recs = sorted((r for r in records if r.method == method), key=lambda r: r.n_params)
        if len(recs) < 2:
            continue
        upper = [r for r in recs if r.n_params >= fit_from]
        if len(upper) < 2:
            upper = recs[-2:]

        def slope(rs: Sequence[GradientTiming], quantity: str = quantity) -> float:
            y = np.array([float(getattr(r, quantity)) for r in rs])
            if not np.all(np.isfinite(y) & (y > 0)):
                return math.nan  # e.g. a clock too coarse for a fast call
            return float(np.polyfit(np.log([r.n_params for r in rs]), np.log(y), 1)[0])

        by_clock = {}
        if quantity == "seconds":
            by_clock = {
                "slope_cpu": slope(upper, "cpu_seconds"),
                "slope_wall": slope(upper, "wall_seconds"),
            }
        slopes.append(
            Slope(
                method,
                quantity,
                slope(upper),
                expected,
                upper[0].n_params,
                upper[-1].n_params,
                len(upper),
                slope(recs),
                sum(r.extrapolated for r in upper),
                **by_clock,
            )
        )
    return slopes
