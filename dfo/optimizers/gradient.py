"""Gradient-step methods: a gradient estimator plus a step rule.

=================  ==============================  ============================
method             gradient                        evaluations per iteration
=================  ==============================  ============================
``backprop-sgd``   the objective's exact gradient  1 (and 1 gradient)
``fd-sgd``         forward / central differences   n + 1 / 2n
``spsa``           simultaneous perturbation       2 per direction, whatever n
=================  ==============================  ============================

Every estimator works with every step rule of :mod:`dfo.optimizers.step_rules`
(``"sgd"``, ``"momentum"``, ``"adam"``).

**Safeguard.** An iteration whose value or gradient is not finite, or whose value
exceeds the first one by more than ``divergence * max(1, |first value|)``, is a
failed step: the iterate goes back to the iterate with the lowest value so far,
the step rule's state is reset and the learning rate is halved for the rest of
the run (``n_backtracks`` counts these). ``patience`` failed steps in a row, or a
learning rate halved 40 times, stop the run with reason ``"nonfinite"``. A
learning rate that is too large thus costs a few evaluations, not the run.

**Non-finite probes.** A probe of a gradient estimate whose value is not finite is
left out of the estimate, not counted as a failed step: fd-sgd leaves out that
coordinate (its component is 0 for this step), spsa that direction (when no
direction of an iteration is usable, new ones are drawn at the same iterate, with
half the perturbation ``c`` from then on: the iterate lies next to non-finite values).
``n_excluded`` counts them and the result's message reports them. Only a run that
cannot find finite values stops (``REDRAW_LIMIT`` draws in a row, or ``patience``
iterates whose own value is not finite), and its reason says that the values were
not finite.

**Stall.** A gradient estimate that is exactly zero ``patience`` times in a row
(fd-sgd, spsa: a flat or piecewise-constant objective, or a perturbation too small
to change its value) stops the run with reason ``"stalled"`` (status
``STALLED``, ``success`` False).

**Noise-aware steps.** ``h="auto"`` (fd-sgd) and ``c="auto"`` (spsa) spend the
first iterations on :class:`dfo.noise.NoiseProbe` at ``x0`` (an ECnoise table of
9 evaluations, retried at most twice, then 2 to 4 for the curvature) and set the
step from the noise level: fd-sgd's ``h`` by Moré & Wild (2012), spsa's ``c``
as ``max(0.01, 2 eps_f)``. ``noise`` holds the estimate, and the result records it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.limits import check_rows
from dfo.noise import NoiseProbe, noise_aware_step
from dfo.numdiff import PROBE_BLOCK_BYTES, fd_gradient, fd_probe_block, fd_probe_parts, fd_steps
from dfo.objective import all_finite, check_dtype, square_norm
from dfo.optimizers import register
from dfo.optimizers.base import Optimizer
from dfo.optimizers.step_rules import StepRule, get_step_rule, is_plain_sgd
from dfo.options import (
    Choice,
    Custom,
    Either,
    Flag,
    Optional,
    Options,
    PositiveInt,
    PositiveReal,
    RealRange,
    declare_options,
    option,
)

__all__ = [
    "SPSA",
    "BackpropSGD",
    "BackpropSGDOptions",
    "FiniteDifferenceSGD",
    "FiniteDifferenceSGDOptions",
    "GradientStepOptimizer",
    "GradientStepOptions",
    "SPSAOptions",
]

#: sums of two numbers below this cannot overflow (the fast path of a plain SGD step),
#: per float type of the iterate
_NO_OVERFLOW = {np.dtype(np.float64): 1e300, np.dtype(np.float32): 1e30}

#: a run stops when backtracking has divided the learning rate by more than this
MIN_LR_SCALE = 2.0**-40

#: spsa stops after this many draws in a row whose every direction met non-finite values
#: (each one halves the perturbation)
REDRAW_LIMIT = 40

#: log of the largest float64: a power beyond it overflows
_LOG_FLOAT_MAX = math.log(float(np.finfo(np.float64).max))

#: the reason of a failed step whose value or gradient was not finite
_NONFINITE = "non-finite value or gradient"

#: ``c="auto"``: SPSA's perturbation is this many noise standard deviations, at least
#: :data:`C_MIN` (Spall's guideline: about the noise level, never below it)
C_NOISE_FACTOR = 2.0
C_MIN = 0.01

#: below this budget ``h="auto"`` / ``c="auto"`` do not measure the noise (noise-free)
AUTO_MIN_BUDGET = 200


#: the signs 1 - 2 b of the eight bits b of each byte, most significant first (unpackbits)
_SIGNS = 1.0 - 2.0 * np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)


def random_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``rng.integers(0, 256, size=n, dtype=np.uint8)``: the same bytes, the same stream.

    numpy fills such an array a byte at a time from 32-bit draws, which PCG64 makes
    from the low and then the high half of each 64-bit output; so, when no half of
    an output is pending and ``n`` bytes take an even number of 32-bit draws, the
    bytes are those of ``ceil(n / 8)`` raw outputs, and the generator moves on as
    far (about 2.4 times faster from a hundred bytes up). Otherwise it calls
    ``rng.integers``. Only the unused remainder field of the generator's state may
    differ (numpy leaves it stale), which no later draw reads.
    """
    bitgen = rng.bit_generator
    if (
        type(bitgen) is np.random.PCG64
        and (n + 3) // 4 % 2 == 0
        and not bitgen.state["has_uint32"]
    ):
        return bitgen.random_raw(n // 8 + (n % 8 > 0)).view(np.uint8)[:n]
    return rng.integers(0, 256, size=n, dtype=np.uint8)


def _check_step_rule(name: str, value: Any) -> str | StepRule:
    get_step_rule(value)  # raises for anything but a step rule or the name of one
    return value


def _finite_mean(values: np.ndarray) -> float:
    """The mean of the finite entries of ``values`` (nan if none), without overflow."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return math.nan
    with np.errstate(over="ignore"):
        mean = float(finite.mean())
    if math.isinf(mean):  # values near the float64 limit: their sum overflowed
        mean = float(np.sum(finite / finite.size))
    return mean


#: the option kind of ``step_rule``
STEP_RULE = Custom(_check_step_rule, "'sgd', 'momentum', 'adam' or a StepRule")


def _step_rule() -> Any:
    return option("sgd", STEP_RULE)


def _patience() -> Any:
    return option(10, PositiveInt())


def _divergence() -> Any:
    return option(1e4, PositiveReal(allow_inf=True))


@declare_options
class GradientStepOptions(Options):
    """Options of :class:`BackpropSGD` (and the shared ones of every gradient step)."""

    learning_rate: float = option(0.1, PositiveReal())
    step_rule: str | StepRule = _step_rule()
    patience: int = _patience()
    divergence: float = _divergence()
    xtol: float | None = option(None, Optional(RealRange(0.0)))


class GradientStepOptimizer(Optimizer):
    """Shared machinery: iterate, step rule, learning rate, non-finite handling.

    The base of :class:`BackpropSGD`, :class:`FiniteDifferenceSGD` and
    :class:`SPSA`; it is not registered as a method itself. Subclasses ask for the
    points their gradient estimate needs in ``_ask``, and in ``_tell`` call
    ``_step(value, grad)`` with the value at the iterate and the gradient (None
    when it is not finite); ``_step`` applies the step rule with the learning rate
    (``_rate()``, which SPSA overrides with its gain ``a_k``) times ``lr_scale``,
    and the safeguard described in the module docstring. :meth:`recommend` is the
    current iterate ``x`` (SPSA with ``average=True`` reports an average instead).

    Parameters
    ----------
    x0 : array_like, shape (dim,)
        Starting point.
    seed : int or None
        Seed of the optimizer's random generator.
    budget : int or None
        The run's evaluation budget, when known (not enforced here).
    learning_rate : float, default 0.1
        Step size given to the step rule; a positive, finite number.
    step_rule : {"sgd", "momentum", "adam"} or StepRule, default "sgd"
        How a gradient becomes a step; see :mod:`dfo.optimizers.step_rules`.
    patience : int, default 10
        Failed steps in a row before :meth:`stop` gives the reason ``"nonfinite"``
        (and, for fd-sgd and spsa, exactly zero gradient estimates in a row before
        it gives ``"stalled"``).
    divergence : float, default 1e4
        A value above the first value by more than ``divergence * max(1, |first
        value|)`` is a failed step; ``inf`` turns the check off.
    xtol : float, optional
        Stop (reason ``"xtol"``) once ``patience`` steps in a row move ``x`` by less
        than ``xtol * (1 + max |x_i|)`` in every coordinate; what ``tol=`` sets.

    Attributes
    ----------
    x : ndarray, shape (dim,)
        The current iterate.
    noise : dict or None
        The noise estimate behind ``h="auto"`` / ``c="auto"`` (see the module's
        *Noise-aware steps*), once measured.
    lr_scale : float
        Factor on the learning rate, halved by every failed step.
    n_backtracks : int
        Failed steps so far.
    gradient : ndarray or None
        The gradient (or estimate) of the last iteration, as the step rule got it;
        None before the first one or when it was not finite.

    Raises
    ------
    InvalidOptionError
        If ``learning_rate`` or ``divergence`` is not a positive number (only
        ``divergence`` may be ``inf``), ``patience`` is not a positive integer, or
        ``step_rule`` is not a step rule or the name of one.

    Examples
    --------
    A non-finite value sends the iterate back and halves the learning rate:

    >>> import numpy as np
    >>> import dfo
    >>> opt = dfo.make_optimizer("backprop-sgd", np.array([4.0]), learning_rate=0.5)
    >>> X = opt.ask()
    >>> opt.tell(X, [np.nan], X)
    >>> opt.x, opt.n_backtracks, opt.lr_scale
    (array([4.]), 1, 0.5)
    >>> X = opt.ask()
    >>> opt.tell(X, 0.5 * (X**2).sum(axis=1), X)  # gradient x: x - 0.25 * x
    >>> opt.x
    array([3.])
    """

    Options: ClassVar[type[Options]] = GradientStepOptions
    TOL = ("xtol",)
    TOL_MEANING = (
        "``patience`` steps in a row move ``x`` by less than ``tol * (1 + max |x_i|)`` "
        "in every coordinate"
    )
    recommends_unevaluated: ClassVar[bool] = True

    def _setup(self) -> None:
        cfg: Any = self.config  # every gradient method declares these options
        self.learning_rate: float = getattr(cfg, "learning_rate", 1.0)
        self.patience: int = cfg.patience
        self.divergence: float = cfg.divergence
        self.xtol: float | None = getattr(cfg, "xtol", None)
        self.small_steps = 0  # steps in a row below xtol
        self.anchor_before = self.x0  # the iterate before the last step
        step_rule = cfg.step_rule
        self.step_rule_name = step_rule if isinstance(step_rule, str) else "custom"
        self.rule = get_step_rule(step_rule)
        self._plain = is_plain_sgd(self.rule)
        self.x = self.x0.copy()
        self.gradient: np.ndarray | None = None
        self.rule_state = self.rule.init(self.x)
        self.lr_scale = 1.0
        self.anchor = self.x.copy()  # the iterate with the lowest value so far
        # an upper bound on the current |x_i| (inf: not known; see _step's fast path)
        self._x_bound = math.inf
        self.anchor_value = math.inf
        self.bad_steps = 0
        self.n_backtracks = 0
        self.first_value: float | None = None
        self._diverged = math.inf  # a value above this is a failed step (from first_value)
        self.last_bad = ""
        self.n_excluded = 0  # probes left out of estimates for non-finite values
        self.redraws = 0  # spsa: draws in a row without a usable direction
        self.zero_grads = 0  # exactly zero gradient estimates in a row
        self.noise: dict[str, Any] | None = None
        self._probe: NoiseProbe | None = None
        self._probe_fresh = True

    #: whether an exactly zero gradient means a stall (an estimate, not the gradient)
    stalls: ClassVar[bool] = False

    # -- measuring the noise first (h="auto", c="auto") ------------------------------
    def _start_probe(self, *, with_curvature: bool) -> bool:
        """Measure the noise at ``x0`` in the first iterations, if the budget allows."""
        if self.budget is not None and self.budget < AUTO_MIN_BUDGET:
            message = f"not measured: budget < {AUTO_MIN_BUDGET}"
            self.noise = {"reliable": False, "message": message}
            return False
        self._probe = NoiseProbe(self.x, self.rng, with_curvature=with_curvature)
        return True

    def _probe_ask(self) -> np.ndarray:
        assert self._probe is not None
        self._probe_fresh = self._probe.nfev == 0  # every round on one realization
        self._probe.box = self.box
        return self._probe.ask()

    def wants_new_sample(self) -> bool:
        return self._probe_fresh if self._probe is not None else True

    def _probe_tell(self, values: np.ndarray) -> float:
        probe = self._probe
        assert probe is not None
        probe.tell(values)
        if probe.done:
            assert probe.estimate is not None
            self._probe = None
            self.noise = {**probe.estimate.as_dict(), "curvature": probe.curvature}
            self._use_noise(probe.estimate.level, probe.curvature)
        return probe.f0

    def _use_noise(self, level: float, curvature: float) -> None:
        """Set the method's step from the measured noise (subclasses)."""

    def _recommend(self) -> np.ndarray:
        return self.x

    def _rate(self) -> float:
        return self.learning_rate

    def _step(
        self,
        value: float,
        grad: np.ndarray | None,
        *,
        finite: bool = False,
        grad_bound: float | None = None,
    ) -> float:
        """Take a step from the current iterate with ``grad`` (None: not finite).

        ``value`` is the objective's value at the current iterate. ``finite=True``
        says the caller has already checked that ``grad`` is finite; ``grad_bound``,
        when the caller knows it, bounds ``|grad_i|`` (SPSA's estimate has the same
        size in every coordinate), which lets a plain SGD step that cannot overflow
        skip the overflow check.
        """
        self.gradient = grad
        bad = ""
        if grad is None or not math.isfinite(value) or not (finite or np.isfinite(grad).all()):
            bad = _NONFINITE
        elif self.first_value is None:
            self.first_value = value
            self._diverged = self.divergence * max(1.0, abs(value))
        elif value - self.first_value > self._diverged:
            bad = f"the value grew from {self.first_value:.3g} to {value:.3g}"
        if bad:
            self._backtrack(bad)
            return value
        self.bad_steps = 0
        if self.stalls:
            zero = grad_bound == 0.0 if grad_bound is not None else not np.any(grad)
            self.zero_grads = self.zero_grads + 1 if zero else 0
        if value < self.anchor_value:
            self.anchor_value = value
            self.anchor = self.x
        self.anchor_before = self.x  # the iterate before the step (for xtol)
        rate = self._rate() * self.lr_scale
        assert grad is not None  # checked above
        if grad_bound is not None and self._plain:
            if self._x_bound == math.inf:
                self._x_bound = float(np.abs(self.x).max())
            size = rate * grad_bound  # |step_i| <= size: |x_i + step_i| <= bound + size
            if size + self._x_bound < _NO_OVERFLOW[self.x.dtype]:
                x = grad * -rate  # the plain SGD rule's step, a new array: x + step in place
                x += self.x
                self.x = x
                self._x_bound += size
                if self.box is not None or self.xtol is not None:
                    self._project()
                return value
        with np.errstate(over="ignore", invalid="ignore"):
            step, self.rule_state = self.rule.update(grad, self.rule_state, rate)
            x = self.x + step
        if not np.isfinite(x).all():  # a huge gradient or rate overflowed the step
            self._backtrack("the step overflowed")
            return value
        self.x = x
        self._x_bound = math.inf
        self._project()
        return value

    def _project(self) -> None:
        """Bounds: the iterate projected onto the box (projected gradient steps)."""
        if self.box is not None:
            self.x = self.box.clip(self.x)
            self._x_bound = math.inf
        if self.xtol is not None:  # tol: steps that stay below xtol * (1 + |x|)
            size = float(np.max(np.abs(self.x - self.anchor_before)))
            small = size <= self.xtol * (1.0 + float(np.max(np.abs(self.x))))
            self.small_steps = self.small_steps + 1 if small else 0

    def _backtrack(self, reason: str) -> None:
        """Go back to the best iterate so far with half the learning rate."""
        self.bad_steps += 1
        self.n_backtracks += 1
        self.last_bad = reason
        self.lr_scale *= 0.5
        self.x = self.anchor.copy()
        self._x_bound = math.inf
        self.rule_state = self.rule.init(self.x)

    def _stop(self) -> dict[str, Any]:
        if self.xtol is not None and self.small_steps >= self.patience:
            return {
                "xtol": f"{self.small_steps} steps in a row moved x by less than "
                f"xtol={self.xtol:g} (relative to 1 + |x|)"
            }
        if self.zero_grads >= self.patience:
            return {
                "stalled": f"the gradient estimate was exactly zero {self.zero_grads} times "
                "in a row: the objective is flat at the scale of the perturbation (flat or "
                "piecewise constant). Try a larger perturbation (fd-sgd's h, spsa's c) or a "
                "method that ranks values (cma-es, nelder-mead, random-search)"
            }
        # a step that met nan or inf says nothing about the learning rate
        why = (
            "the objective's values (or gradients) were not finite (nan or inf) around the iterate"
            if self.last_bad == _NONFINITE
            else "the learning rate may be too large"
        )
        if self.redraws >= REDRAW_LIMIT:
            return {
                "nonfinite": f"{self.redraws} draws of perturbations in a row met "
                "non-finite values (nan or inf) on every direction: no finite values were "
                "found around the iterate"
            }
        if self.bad_steps >= self.patience:
            return {
                "nonfinite": f"{self.bad_steps} steps in a row failed ({self.last_bad}); {why}"
            }
        if self.lr_scale < MIN_LR_SCALE:
            why = "it may be far too large" if self.last_bad != _NONFINITE else why
            return {
                "nonfinite": f"the learning rate was halved {self.n_backtracks} times "
                f"(last: {self.last_bad}); {why}"
            }
        return {}

    def notes(self) -> list[str]:
        out = []
        if self.n_excluded:
            out.append(
                f"{self.n_excluded} probes gave non-finite values (or differences beyond "
                "float64) and were left out of the gradient estimates"
            )
        if self.n_backtracks:
            out.append(
                f"{self.n_backtracks} failed steps sent the iterate back to the best one with "
                f"half the learning rate (last: {self.last_bad})"
            )
        return out


def _check_dtype(name: str, value: Any) -> str:
    return check_dtype(value).name


@declare_options
class BackpropSGDOptions(GradientStepOptions):
    """Options of :class:`BackpropSGD`."""

    dtype: str | None = option(None, Optional(Custom(_check_dtype, "'float64' or 'float32'")))


@register("backprop-sgd")
class BackpropSGD(GradientStepOptimizer):
    """Gradient descent with the objective's exact gradient (backpropagation).

    Each iteration asks for one point and needs its value and gradient
    (``tell(X, values, grads)``).

    Parameters
    ----------
    learning_rate : float, default 0.1
    step_rule : {"sgd", "momentum", "adam"} or StepRule, default "sgd"
    patience : int, default 10
        Failed steps in a row before the run stops (see the module's *Safeguard*).
    divergence : float, default 1e4
        A step whose value exceeds the first value by this factor (times
        ``max(1, |first value|)``) has failed: it is undone and the learning rate
        halved. ``inf`` turns the check off.
    xtol : float, optional
        Stop (reason ``"xtol"``) once ``patience`` steps in a row move ``x`` by less
        than ``xtol * (1 + max |x_i|)`` in every coordinate; what ``tol=`` sets.
    dtype : {"float64", "float32"}, optional
        The float type of the iterate, its steps and the step rule's state (default
        float64). :func:`dfo.minimize` passes a float32 objective's type (a float32
        network), so that points and gradients cross the objective interface in it,
        without conversions. With ``bounds`` the iterate stays float64 (the box is).
        The asked points, ``best_x`` and ``opt.x`` are of this type; ``recommend()``
        and the result's ``x`` are float64 (exactly the float32 numbers).
    """

    Options = BackpropSGDOptions
    config: BackpropSGDOptions
    needs_gradient: ClassVar[bool] = True
    # every step makes a new iterate: the asked view of x is never changed
    immutable_asks: ClassVar[bool] = True

    def _setup(self) -> None:
        super()._setup()
        dtype = self.config.dtype
        if dtype is not None and self.box is None and dtype != self.x.dtype:
            self.x = self.x.astype(dtype)
            self.anchor = self.x.copy()
            self.rule_state = self.rule.init(self.x)

    def _ask(self) -> np.ndarray:
        return self.x[None, :]

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        assert grads is not None
        return self._gradient_step(values.item(), grads[0])

    def _gradient_step(self, value: float, grad: np.ndarray) -> float:
        """The step from the value and gradient at the iterate; the value to report."""
        if grad.dtype != self.x.dtype:  # a gradient of another type: the iterate's
            grad = grad.astype(self.x.dtype)
        # one read of the gradient: finite, and a bound on |g_i| for the overflow test
        square = square_norm(grad)
        if math.isfinite(square):
            return self._step(value, grad, finite=True, grad_bound=math.sqrt(square))
        return self._step(value, grad if all_finite(grad) else None)

    def _grads_finite(self) -> bool:
        return self.gradient is not None  # _tell tested it: None when not finite

    def tell_gradient(self, value: float, grad: np.ndarray) -> None:
        """:meth:`tell_evaluated` of the value and gradient at the iterate, in scalars.

        For the run's lean loop (:mod:`dfo.run.lean`), which evaluates ``self.x``
        without asking: the same step and the same bookkeeping as ``ask`` and
        ``tell`` (``tests/test_lean_loop.py`` checks the bits), without the arrays
        of a batch of one point. ``value`` is a float, ``grad`` an array of shape
        ``(dim,)`` that the objective returned.
        """
        x = self.x
        reported = self._gradient_step(value, grad)
        self._pending = self._n_pending = None
        if self._handed:
            self._handed = []
        ledger = self.ledger
        finite = self.gradient is not None
        if not ledger.book_gradient(x, value, finite):  # not finite: counted as tell does
            values, grads = np.array([value]), grad[None, :]
            ledger.book(x[None, :], values, grads, copy=False, grads_finite=finite)
        ledger.close_iteration(reported)

    def lean_tell(self) -> Callable[[float, np.ndarray], None]:
        """:meth:`tell_gradient` for the lean loop, with its common case in one call.

        The case: after the first iteration, a plain SGD rule without a box, ``xtol``
        or a pending ask, a gradient of the iterate's type, the value and the gradient
        finite, the value not diverged, and a step that cannot overflow. There it takes
        the same step, state and booking as :meth:`tell_gradient` (``_step``'s fast
        path); every other call goes to :meth:`tell_gradient` itself.
        """
        general = self.tell_gradient
        if not self._plain or self.box is not None or self.xtol is not None or self.stalls:
            return general
        limit, dtype = _NO_OVERFLOW[self.x.dtype], self.x.dtype
        book, close = self.ledger.book_gradient, self.ledger.close_iteration
        isfinite, sqrt, vdot = math.isfinite, math.sqrt, np.vdot

        def tell(value: float, grad: np.ndarray) -> None:
            x, first = self.x, self.first_value
            if first is None or grad.dtype != dtype or self._n_pending is not None:
                return general(value, grad)
            square = float(vdot(grad, grad))  # square_norm: finite, and a bound on |g_i|
            if not (isfinite(square) and isfinite(value)) or value - first > self._diverged:
                return general(value, grad)
            rate = self._rate() * self.lr_scale
            bound = self._x_bound
            if bound == math.inf:
                bound = float(np.abs(x).max())
            size = rate * sqrt(square)  # |step_i| <= size
            if not size + bound < limit:
                return general(value, grad)
            self.gradient = grad
            self.bad_steps = 0
            if value < self.anchor_value:
                self.anchor_value = value
                self.anchor = x
            self.anchor_before = x
            step = grad * -rate  # a new array: x + step in place
            step += x
            self.x = step
            self._x_bound = bound + size
            if self._handed:
                self._handed = []
            book(x, value, True)
            close(value)
            return None

        return tell


def _check_h(name: str, value: Any) -> Any:
    if isinstance(value, str) and value != "auto":
        raise InvalidOptionError(f"h must be a positive number, 'auto' or None; got {value!r}")
    return value  # a number or an array of shape (n,): fd_steps checks it against x0


@declare_options
class FiniteDifferenceSGDOptions(Options):
    """Options of :class:`FiniteDifferenceSGD`."""

    learning_rate: float = option(0.1, PositiveReal())
    scheme: str = option("forward", Choice("forward", "central"))
    h: Any = option(None, Custom(_check_h, "None, 'auto', a positive number or an array of them"))
    max_probes: int | None = option(None, Optional(PositiveInt()))
    dtype: str | None = option(None, Optional(Custom(_check_dtype, "'float64' or 'float32'")))
    step_rule: str | StepRule = _step_rule()
    patience: int = _patience()
    divergence: float = _divergence()
    xtol: float | None = option(None, Optional(RealRange(0.0)))


@register("fd-sgd")
class FiniteDifferenceSGD(GradientStepOptimizer):
    """Gradient descent on a finite-difference gradient ("tweak each weight").

    Forward differences cost ``n + 1`` evaluations per gradient, central ``2n``;
    all probes of one gradient are asked together and evaluated on the same sample
    of a stochastic objective. For large ``n`` the probes are asked in blocks of at
    most ``max_probes`` rows (default: what fits in ``PROBE_BLOCK_BYTES``, 8 MiB)
    that still share one sample.

    Parameters
    ----------
    learning_rate : float, default 0.1
    scheme : {"forward", "central"}, default "forward"
    h : float or "auto", optional
        Step; by default ``sqrt(eps) * max(1, |x_i|)`` (forward) or
        ``eps**(1/3) * max(1, |x_i|)`` (central), eps of float64, right for a
        noise-free objective. ``"auto"`` measures the noise and the curvature at
        ``x0`` first and takes Moré & Wild's step for them (see the module's
        *Noise-aware steps*); for a noisy objective.
    max_probes : int, optional
        Rows per ask.
    dtype : {"float64", "float32"}, optional
        The float type the objective computes in: the default steps come from its
        epsilon and the probes are rounded to it (the iterate stays float64).
        :func:`dfo.minimize` passes a float32 objective's type.
    step_rule, patience, divergence, xtol
        As for :class:`BackpropSGD`.
    """

    Options = FiniteDifferenceSGDOptions
    config: FiniteDifferenceSGDOptions

    def _setup(self) -> None:
        super()._setup()
        self.dtype = self.config.dtype
        self.scheme = self.config.scheme
        self.h_auto = isinstance(self.config.h, str)
        self.h = None if self.h_auto else self.config.h
        n_probes = self.dim + 1 if self.scheme == "forward" else 2 * self.dim
        max_probes = self.config.max_probes
        if max_probes is None:
            max_probes = PROBE_BLOCK_BYTES // (8 * self.dim)
        self.max_probes = max(2, max_probes)
        self.n_probes = n_probes
        self._start_estimate(strict=True)
        if self.h_auto:
            self._start_probe(with_curvature=True)

    stalls: ClassVar[bool] = True

    def _use_noise(self, level: float, curvature: float) -> None:
        self.h = noise_aware_step(level, curvature, self.scheme)
        assert self.noise is not None
        self.noise["step"] = self.h
        self._start_estimate()

    def _start_estimate(self, strict: bool = False) -> None:
        # the centre in the objective's float type: steps and probes exact in it
        self.centre = self.x if self.dtype is None else self.x.astype(self.dtype)
        try:
            self.steps = fd_steps(self.centre, scheme=self.scheme, h=self.h)
        except InvalidOptionError:
            if strict:  # a step h that does not move x0: the caller's option
                raise
            # the iterate has grown so large that x + h == x: a relative step instead
            self.steps = fd_steps(self.centre, scheme=self.scheme)
        self.values = np.empty(self.n_probes)
        self.done = 0  # probes of the current estimate already told
        self._parts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # of the probes

    def _resolved_options(self) -> dict[str, Any]:
        return {"h": self.h} if self.h_auto else {}

    def wants_new_sample(self) -> bool:
        if self._probe is not None:
            return super().wants_new_sample()
        return self.done == 0  # the later blocks of one gradient share its realization

    def _ask(self) -> np.ndarray:
        if self._probe is not None:
            return self._probe_ask()
        if self.box is not None and self.done == 0:  # probes around the nearest point
            inset = self.box.inset(self.x, self.steps)  # a step inside the box
            self.centre = inset if self.dtype is None else inset.astype(self.dtype)
            self._parts = None
        return self._probe_rows(self.done, min(self.n_probes, self.done + self.max_probes))

    def _rebuilds(self) -> bool:
        return self._probe is None  # the probes, from the centre, the steps and done

    def _probe_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of the current estimate's probes (``fd_probes``' rows)."""
        if self._parts is None:  # made once per estimate, not per block
            self._parts = fd_probe_parts(self.centre, self.steps, self.scheme)
        X = fd_probe_block(self._parts, start, stop, scheme=self.scheme)
        return X if self.box is None else self.box.clip(X)  # clip: rounding only

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_parts"] = None  # made again from the centre and the steps
        return state

    def _asked_row(self, i: int) -> np.ndarray:
        return self._probe_rows(self.done + i, self.done + i + 1)[0]

    def _asked_rows(self) -> np.ndarray:
        return self._probe_rows(self.done, min(self.n_probes, self.done + self.max_probes))

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        if self._probe is not None:
            return self._probe_tell(values)
        stop = self.done + X.shape[0]
        self.values[self.done : stop] = values
        self.done = stop
        if stop < self.n_probes:
            return self.last_value
        grad = fd_gradient(self.values, self.steps, scheme=self.scheme)
        # the value at x: f(x) (forward), or the mean of the finite +-h probes (central)
        if self.scheme == "forward":
            value = float(self.values[0])
        else:
            value = _finite_mean(self.values)
        # a coordinate whose probe met a non-finite value is left out of this estimate
        excluded = ~np.isfinite(grad)
        if math.isfinite(value) and excluded.any() and not excluded.all():
            self.n_excluded += int(np.count_nonzero(excluded))
            grad[excluded] = 0.0
        ok = math.isfinite(value) and not excluded.all()
        reported = self._step(value, grad if ok else None)
        self._start_estimate()
        return reported


@declare_options
class SPSAOptions(Options):
    """Options of :class:`SPSA`."""

    a: float | None = option(None, Optional(PositiveReal()))
    c: float | str = option("auto", Either(PositiveReal(), Choice("auto")))
    A: float | None = option(None, Optional(RealRange(0.0)))
    alpha: float = option(0.602, PositiveReal())
    gamma: float = option(0.101, PositiveReal())
    n_directions: int = option(1, PositiveInt())
    initial_step: float = option(0.1, PositiveReal())
    calibration: int = option(5, PositiveInt())
    average: bool = option(False, Flag())
    regenerate: bool = option(False, Flag())
    step_rule: str | StepRule = _step_rule()
    patience: int = _patience()
    divergence: float = _divergence()
    xtol: float | None = option(None, Optional(RealRange(0.0)))


@register("spsa")
class SPSA(GradientStepOptimizer):
    """Simultaneous perturbation stochastic approximation (Spall, 1992).

    Each iteration perturbs all coordinates at once along ``q = n_directions``
    random Rademacher (+-1) directions ``d`` and measures ``f(x + c_k d)`` and
    ``f(x - c_k d)``: ``2q`` evaluations whatever the dimension. The estimate is
    ``g = mean_j (f(x + c_k d_j) - f(x - c_k d_j)) / (2 c_k) * d_j``, and the step
    uses the gain ``a_k = a / (k + 1 + A)**alpha`` as learning rate; the
    perturbation shrinks as ``c_k = c / (k + 1)**gamma``.

    **Choice of a.** When ``a`` is None, the first iteration measures
    ``calibration`` directions ``d_j`` at ``x0`` (``2 * calibration`` evaluations,
    which also make the first gradient estimate) and sets ``a`` so that the first
    step moves each coordinate by about ``initial_step``, following Spall (1998,
    "Implementation of the simultaneous perturbation algorithm for stochastic
    optimization"): with ``m = mean_j |f(x0 + c d_j) - f(x0 - c d_j)| / (2 c)``,
    the mean size of a component of the estimates,
    ``a = initial_step * (A + 1)**alpha / m``. With ``step_rule="adam"``, whose
    first step is ``a_0 * sign(g)``, ``a = initial_step * (A + 1)**alpha``.
    ``options()["a"]`` reports the value chosen.

    Parameters
    ----------
    a : float, optional
        Gain numerator; chosen automatically when None (see above).
    c : float or "auto", default "auto"
        Perturbation size; about the noise's standard deviation for noisy objectives.
        ``"auto"`` measures the noise at ``x0`` first (9 to 27 evaluations) and takes
        ``max(C_MIN, C_NOISE_FACTOR * eps_f)`` = ``max(0.01, 2 eps_f)``; with a budget
        below :data:`AUTO_MIN_BUDGET` it takes 0.01 without measuring.
    A : float, optional
        Stability constant; default 10% of the iterations the budget allows (or 10).
    alpha, gamma : float, default 0.602, 0.101
        Spall's practical exponents.
    n_directions : int, default 1
        Directions averaged per gradient estimate.
    initial_step : float, default 0.1
        Desired size of the first step per coordinate, for the choice of ``a``.
    calibration : int, default 5
        Directions measured at ``x0`` for the choice of ``a``.
    average : bool, default False
        Report the running average of the iterates of the second half of the run
        (Polyak-Ruppert) instead of the last iterate.
    regenerate : bool, default False
        Keep only a seed for the perturbation between ask and tell and regenerate it
        (memory ~ one vector, as needed for very large ``n``).
    step_rule : {"sgd", "momentum", "adam"} or StepRule, default "sgd"
        With "sgd" the step is ``-a_k g``; other rules take ``a_k`` as learning rate.
    patience, divergence, xtol
        As for :class:`BackpropSGD`.
    """

    Options = SPSAOptions
    config: SPSAOptions

    def _setup(self) -> None:
        super()._setup()
        cfg = self.config
        self.q = cfg.n_directions
        self.calibration = cfg.calibration
        check_rows("n_directions", self.q, self.dim, per=2)
        check_rows("calibration", self.calibration, self.dim, per=2)
        self.a = cfg.a
        self.c_auto = cfg.c == "auto"
        self.c: float = C_MIN if self.c_auto else float(cfg.c)
        self.alpha, self.gamma = cfg.alpha, cfg.gamma
        self.initial_step = cfg.initial_step
        self.average, self.regenerate = cfg.average, cfg.regenerate
        self.A, self.average_from = self._budget_schedule()
        self._check_schedule()
        self.k = 0  # gain index
        # the running sum of iterates, only when averaging (one vector less otherwise)
        self.x_sum = np.zeros(self.dim) if self.average else np.zeros(0)
        self.n_avg = 0
        self.c_scale = 1.0  # halved by draws that met non-finite values on every direction
        self._delta: np.ndarray | None = None  # the directions between ask and tell
        self._delta_seed = 0
        self._ck = 0.0
        if self.c_auto:
            self._start_probe(with_curvature=False)

    stalls: ClassVar[bool] = True

    def _use_noise(self, level: float, curvature: float) -> None:
        self.c = max(C_MIN, C_NOISE_FACTOR * level)
        assert self.noise is not None
        self.noise["step"] = self.c

    def _budget_schedule(self) -> tuple[float, int]:
        """``A`` (10% of the iterations the budget allows, unless given) and the
        iteration from which ``average`` sums iterates (a quarter of them)."""
        budget = self.ledger.budget
        A = self.config.A
        if A is None:
            A = 0.1 * ((budget // (2 * self.q)) if budget else 100)
        return float(A), (budget // (4 * self.q)) if budget else 0

    def _check_schedule(self) -> None:
        """Refuse exponents whose gains overflow float64 in the iterations the budget allows."""
        budget = self.ledger.budget
        k = budget // 2 if budget else 10**9  # the most iterations (2 evaluations each)
        for name, value, base, spall in (
            ("gamma", self.gamma, k + 1.0, 0.101),
            ("alpha", self.alpha, k + 1.0 + self.A, 0.602),
        ):
            if value * math.log(base) >= _LOG_FLOAT_MAX:
                raise InvalidOptionError(
                    f"{name} must be a positive number below {_LOG_FLOAT_MAX / math.log(base):.4g}"
                    f" (Spall's: {spall}); got {value!r}, for which the gain's denominator "
                    f"overflows float64 within the {k} iterations the budget allows"
                )

    def _budget_changed(self) -> None:
        A_old = self.A
        self.A, self.average_from = self._budget_schedule()
        self._check_schedule()
        if self.config.a is None and self.a is not None:
            # a calibrated for the old A: the same first gain a_0 with the new A
            self.a *= ((self.A + 1.0) / (A_old + 1.0)) ** self.alpha

    # -- Spall's update, top to bottom --------------------------------------------------
    def _ask(self) -> np.ndarray:
        if self._probe is not None:
            return self._probe_ask()
        q = self.calibration if self.a is None else self.q
        self._ck = self.c * self.c_scale / (self.k + 1) ** self.gamma  # c_k = c / (k + 1)^gamma
        if self.regenerate:  # keep a seed, not the directions, until tell
            self._delta_seed = int(self.rng.integers(2**63))
        delta = self._directions(q)  # (q, n) Rademacher +-1
        self._delta = None if self.regenerate else delta
        # bounds: perturb around the nearest point c_k inside the box
        centre = self.x if self.box is None else self.box.inset(self.x, self._ck)
        X = np.empty((2 * q, self.dim))  # written in place: no (2q, n) temporaries
        np.multiply(delta, self._ck, out=X[:q])  # c_k d_j
        np.subtract(centre, X[:q], out=X[q:])  # x - c_k d_j
        X[:q] += centre  # x + c_k d_j
        return X if self.box is None else np.clip(X, self.box.lower, self.box.upper, out=X)

    def _rebuilds(self) -> bool:
        return self._probe is None  # Spall's pairs, from x, c_k and the directions

    def _asked_row(self, i: int) -> np.ndarray:
        """Row ``i`` of the last ask, ``x + c_k d_j`` or ``x - c_k d_j``, as ``_ask`` made it."""
        q = self.calibration if self.a is None else self.q
        delta = self._directions(q) if self.regenerate else self._delta
        assert delta is not None
        centre = self.x if self.box is None else self.box.inset(self.x, self._ck)
        row = delta[i % q] * self._ck
        row = centre + row if i < q else centre - row
        return row if self.box is None else np.clip(row, self.box.lower, self.box.upper, out=row)

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        if self._probe is not None:
            return self._probe_tell(values)
        if X.shape[0] == 2 and not self.regenerate:  # the fast path of the lines below
            reported = self._tell_pair(values)
            if reported is not None:
                return reported
        q = X.shape[0] // 2
        delta = self._directions(q) if self.regenerate else self._delta
        assert delta is not None
        self._delta = None
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: a failed pair
            diff = (values[:q] - values[q:]) / (2.0 * self._ck)  # f'(x; d_j), estimated
            ok = np.isfinite(diff)
            finite = np.isfinite(values)
        value = _finite_mean(values)
        if not ok.any():
            return self._failed_pairs(finite, q, value)
        self.redraws = 0
        if not ok.all():  # the directions that met non-finite values are left out
            self.n_excluded += q - int(np.count_nonzero(ok))
            diff, delta = diff[ok], delta[ok]
        with np.errstate(over="ignore"):  # derivatives near the float64 limit
            bound = float(np.abs(diff).mean())  # |g_i| <= mean_j |f'(x; d_j)|
            if not math.isfinite(bound):
                bound = float(np.abs(diff).max())
            if self.a is None:
                self._calibrate(bound)
            grad = diff @ delta  # g = mean_j f'(x; d_j) d_j
            if diff.size > 1:
                grad = grad / diff.size if np.isfinite(grad).all() else (diff / diff.size) @ delta
        # the step -a_k g (or the step rule's with rate a_k)
        reported = self._step(value, grad, finite=diff.size == 1, grad_bound=bound)
        self._advance()
        return reported

    def _rate(self) -> float:
        assert self.a is not None
        return self.a / (self.k + 1.0 + self.A) ** self.alpha  # a_k = a / (k + 1 + A)^alpha

    # -- details ------------------------------------------------------------------------
    def _tell_pair(self, values: np.ndarray) -> float | None:
        """:meth:`_tell` for one direction and finite values, in scalars: the same bits.

        None when the general path is needed (a non-finite value or difference).
        ``tests/test_resume_identity.py`` checks the bits against the general path.
        """
        plus, minus = values.tolist()
        d = (plus - minus) / (2.0 * self._ck)
        value = (plus + minus) / 2
        if not (math.isfinite(d) and math.isfinite(value)):
            return None
        delta = self._delta
        assert delta is not None
        self._delta = None
        self.redraws = 0
        if self.a is None:
            self._calibrate(abs(d))
        # d * delta, exactly as the matrix product above (which has no negative zeros)
        grad = d * delta[0] if d != 0.0 else np.zeros(self.dim)
        reported = self._step(value, grad, finite=True, grad_bound=abs(d))
        self._advance()
        return reported

    # -- the lean loop (dfo.run.lean) ----------------------------------------------------
    def lean_ready(self) -> bool:
        """Whether the next iteration is one of Spall's pairs, as the lean loop runs them.

        Not while the noise is measured (``c="auto"``) or ``a`` calibrated (the first
        iteration's ``2 * calibration`` points): the run loop's ask/tell does those.
        """
        return self._probe is None and self.a is not None

    def lean_pair(self) -> np.ndarray:
        """The pair ``ask`` would hand out now: ``x + c_k d`` and ``x - c_k d``, ``(2, n)``.

        For the run's lean loop (:mod:`dfo.run.lean`), when :meth:`lean_ready`: the
        pair a stop check asked already, else a new one, drawn as ``ask`` draws it.
        The array is the caller's (never read again), as ``ask``'s.
        """
        X = self._pending_points()
        self._pending = None  # handed out: a row that becomes the best is rebuilt
        return X

    def tell_lean(self, values: np.ndarray) -> None:
        """:meth:`tell_evaluated` of the values at :meth:`lean_pair`'s pair, in scalars.

        The same step and the same bookkeeping as ``ask`` and ``tell``
        (``tests/test_lean_loop.py`` checks the bits); a pair with a value or a
        difference that is not finite takes :meth:`tell_evaluated` itself. ``values``
        is float64, shape ``(2,)``.
        """
        plus, minus = values.tolist()
        ledger = self.ledger
        if not (math.isfinite(plus) and math.isfinite(minus)):
            self.tell_evaluated(values)
            return
        low = minus if minus < plus else plus  # the first of the lowest, as the ledger keeps
        # the row that becomes the best point, rebuilt before the step moves x
        best = self._asked_row(0 if plus <= minus else 1) if low < ledger.best_f else None
        reported = self._tell_pair(values)
        if reported is None:  # a difference beyond float64, nothing changed: the general path
            self.tell_evaluated(values)
            return
        self._n_pending = None
        if self._handed:
            self._handed = []
        ledger.book_finite(best, low, 2)
        ledger.close_iteration(reported)

    def _directions(self, q: int) -> np.ndarray:
        """``q`` Rademacher (+-1) directions ``(q, n)``, one random bit per coordinate.

        Bits of ``rng.integers(0, 256)`` bytes (:func:`random_bytes`), unpacked, most
        significant first: 1 - 2 bit (eight coordinates per byte drawn, an order of
        magnitude cheaper than signs of normal draws).
        """
        rng = np.random.default_rng(self._delta_seed) if self.regenerate else self.rng
        width = (self.dim + 7) // 8
        packed = random_bytes(rng, q * width)
        # each byte's eight signs from a table: the +-1 of unpackbits, without its passes
        delta = _SIGNS.take(packed, axis=0).reshape(q, 8 * width)[:, : self.dim]
        return delta if delta.flags.c_contiguous else delta.copy()

    def _failed_pairs(self, finite: np.ndarray, q: int, value: float) -> float:
        """No pair gave a finite difference: skip the step or backtrack."""
        self.n_excluded += q
        if np.all(finite[:q] | finite[q:]):
            # finite values on one side of every perturbation: the iterate is next to
            # non-finite values, not in them: skip the step, draw new directions half
            # as far away (a smaller learning rate would not move the probes)
            self.redraws += 1
            self.c_scale *= 0.5
            return value
        return self._step(np.nan, None)

    def _calibrate(self, magnitude: float) -> None:
        """Choose ``a`` from the mean size of the measured directional derivatives."""
        if magnitude == 0.0 or self.step_rule_name == "adam":
            # a flat start: any a will do; Adam's first step is a_0 * sign(g) anyway
            magnitude = 1.0
        self.a = self.initial_step * (self.A + 1.0) ** self.alpha / magnitude

    def _advance(self) -> None:
        self.k += 1
        if self.average and self.k > self.average_from:
            self.x_sum += self.x
            self.n_avg += 1

    def _recommend(self) -> np.ndarray:
        if self.average and self.n_avg:
            return self.x_sum / self.n_avg
        return self.x

    def _resolved_options(self) -> dict[str, Any]:
        return {"a": self.a, "c": self.c, "A": self.A}
