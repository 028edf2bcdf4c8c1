"""``method="auto"``: pick a method from what is known, and say why.

One table, :data:`RULES`, is both what ``auto`` runs and the decision guide of the
documentation (rendered from it when the docs are built). Each :class:`Rule` has a
test on the :class:`Facts` of the run; the first rule that applies picks the first of
its methods that is registered (and drives ask/tell).

The facts come from the caller (gradient available, a stochastic objective, the
dimension, the budget, bounds, workers) and, when the budget allows it
(:data:`PROBE_FROM` evaluations per variable and more), from a measurement at ``x0``
charged to the budget: an ECnoise difference table (:class:`dfo.noise.NoiseProbe`,
9 to 27 evaluations) that gives the noise level, shows plateaus (exactly equal values
at small steps) and, timed, the cost of one evaluation. ``Result.auto`` records the
choice, the rule, the reason and the facts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dfo.noise import NoiseProbe
from dfo.optimizers import build_optimizer, get_method, methods, register
from dfo.optimizers.base import Optimizer
from dfo.options import BOUNDS, Flag, Optional, Options, RealRange, declare_options, option

__all__ = ["RULES", "Auto", "Facts", "Rule", "choose", "decision_table"]

#: a measurement at x0 (noise, plateaus, cost) when the budget is at least this per variable
PROBE_FROM = 300
#: below this many evaluations per variable, a model-based method
SMALL_BUDGET = 300
#: one evaluation taking at least this many seconds is expensive
EXPENSIVE = 0.05
#: up to this many variables model-based methods are affordable
MODEL_DIM = 50
#: above this many variables a noisy objective goes to SPSA
NOISY_LARGE_DIM = 100
#: above this many variables, methods linear in n only
LARGE_DIM = 1000


@dataclass
class Facts:
    """What ``auto`` knows about a run when it chooses.

    Attributes
    ----------
    dim : int
        Number of variables.
    budget : int or None
        Evaluations allowed.
    gradient : bool
        The objective has an exact gradient.
    stochastic : bool
        The objective is declared stochastic (minibatches, a noise generator).
    noisy : bool or None
        Noise was measured above rounding (None: not measured).
    noise_level : float or None
        The measured noise standard deviation.
    plateau : bool
        The values at x0 did not change at small steps (piecewise constant, flat).
    cost : float or None
        Seconds per evaluation, measured (or given).
    bounds : bool
        The run has bounds.
    """

    dim: int
    budget: int | None = None
    gradient: bool = False
    stochastic: bool = False
    noisy: bool | None = None
    noise_level: float | None = None
    plateau: bool = False
    cost: float | None = None
    bounds: bool = False

    @property
    def per_dim(self) -> float:
        """Budget per variable (inf without a budget)."""
        return math.inf if self.budget is None else self.budget / self.dim

    @property
    def noise(self) -> bool:
        """Declared stochastic or measured noisy."""
        return self.stochastic or bool(self.noisy)


@dataclass(frozen=True)
class Rule:
    """One row of the decision table.

    Attributes
    ----------
    situation : str
        When it applies, in words (Markdown; the guide's first column).
    methods : tuple of str
        Candidates in order of preference; ``auto`` takes the first registered one.
    reason : str
        Why, in words (recorded in the result).
    applies : callable
        ``applies(facts) -> bool``, the same condition for ``auto``.
    avoid : str
        What not to use there, and why (the guide only).
    measured : str
        Where the docs measure it (Markdown references).
    """

    situation: str
    methods: tuple[str, ...]
    reason: str
    applies: Callable[[Facts], bool] = field(repr=False)
    avoid: str = ""
    measured: str = ""


def _cost(facts: Facts) -> float:
    return facts.cost if facts.cost is not None else 0.0


RULES: tuple[Rule, ...] = (
    Rule(
        "a gradient exists (differentiable model, autodiff), deterministic",
        ("backprop-bfgs", "backprop-sgd"),
        "the objective has an exact gradient: a gradient method needs a small constant "
        "times one evaluation per gradient, whatever the dimension",
        lambda f: f.gradient and not f.noise,
        "finite differences, every DFO method",
        "{doc}`why-backprop`, {doc}`getting-started`",
    ),
    Rule(
        "a gradient on minibatches (stochastic training)",
        ("backprop-sgd",),
        "exact gradients of a stochastic objective: stochastic gradient descent",
        lambda f: f.gradient,
        "quasi-Newton methods (their line searches trust exact values)",
        "{doc}`getting-started`",
    ),
    Rule(
        "piecewise constant at small steps: step functions, 0–1 loss, quantized weights, "
        "discrete choices",
        ("cma-es",),
        "the values at x0 did not change at small steps (a plateau): a method that ranks "
        "samples drawn at a large scale",
        lambda f: f.plateau and f.dim <= LARGE_DIM,
        "backprop, `fd-sgd`, `spsa` with a small perturbation (their estimates are exactly "
        "zero: they stall)",
        "{doc}`auto_examples/plot_nondifferentiable`",
    ),
    Rule(
        f"noisy, more than {NOISY_LARGE_DIM} parameters",
        ("spsa",),
        "noise and many variables: SPSA spends 2 evaluations per step whatever the "
        "dimension, and sets its perturbation from the measured noise",
        lambda f: f.noise and f.dim > NOISY_LARGE_DIM,
        "`fd-sgd` with a small step (its error is noise / h), `nelder-mead`",
        "{doc}`auto_examples/plot_noisy_spsa`",
    ),
    Rule(
        "noisy objective: Monte Carlo simulation, minibatches, measurements",
        ("cma-es",),
        "noise: CMA-ES ranks whole generations evaluated on common random numbers and "
        "reports its mean, re-measured",
        lambda f: f.noise,
        "`fd-sgd` with a small step (noise / h), `nelder-mead` (it trusts every comparison)",
        "{doc}`auto_examples/plot_noisy_spsa`, {doc}`auto_examples/plot_black_box`",
    ),
    Rule(
        f"more than {LARGE_DIM} parameters and no gradient",
        ("es", "spsa"),
        "many variables: a method whose cost per step is linear in the dimension",
        lambda f: f.dim > LARGE_DIM,
        "full `cma-es`, `nelder-mead`, `fd-sgd`",
        "{doc}`auto_examples/plot_limits`, {doc}`why-backprop`",
    ),
    Rule(
        f"expensive evaluations (a simulation, an external program: {EXPENSIVE:g} s or "
        f"more each), up to {MODEL_DIM} parameters",
        ("cobyqa", "powell", "cma-es"),
        "each evaluation is expensive: a model-based method gets the most out of each one",
        lambda f: _cost(f) >= EXPENSIVE and f.dim <= MODEL_DIM,
        "`random-search`, `fd-sgd` (n + 1 evaluations per gradient)",
        "{doc}`auto_examples/plot_black_box`",
    ),
    Rule(
        f"smooth and a small budget (under {SMALL_BUDGET} evaluations per parameter), up "
        f"to {MODEL_DIM} parameters",
        ("cobyqa", "powell", "cma-es"),
        "a small budget: a model-based method needs a few dozen evaluations where "
        "CMA-ES needs hundreds",
        lambda f: f.per_dim < SMALL_BUDGET and f.dim <= MODEL_DIM,
        "`random-search`, `spsa`",
        "`benchmarks/bench_bbob.py`",
    ),
    Rule(
        "a budget for a global search, up to a few thousand parameters",
        ("cma-es",),
        "budget enough for a global search: CMA-ES (with restarts) is robust on "
        "multimodal and ill-conditioned functions",
        lambda f: True,
        "`nelder-mead` beyond about 10 parameters",
        "`benchmarks/bench_bbob.py`, {doc}`auto_examples/plot_black_box`",
    ),
)
"""The decision table, in order: the first rule that applies decides."""


def _usable(method: str) -> bool:
    if method not in methods():
        return False
    return not getattr(get_method(method), "closed_loop", False)


def choose(facts: Facts, rules: tuple[Rule, ...] = RULES) -> tuple[str, Rule]:
    """The method for ``facts`` and the rule that picked it.

    Parameters
    ----------
    facts : Facts
    rules : tuple of Rule, default RULES

    Returns
    -------
    (str, Rule)

    Examples
    --------
    >>> choose(Facts(dim=10, budget=200_000))[0]
    'cma-es'
    >>> choose(Facts(dim=10, gradient=True))[1].situation.startswith("a gradient exists")
    True
    """
    for rule in rules:
        if not rule.applies(facts):
            continue
        for method in rule.methods:
            if method != "auto" and _usable(method):
                if get_method(method).needs_gradient and not facts.gradient:
                    continue
                return method, rule
    return "cma-es", rules[-1]


def decision_table(rules: tuple[Rule, ...] = RULES) -> str:
    """The decision guide as a Markdown table (what the docs show).

    Parameters
    ----------
    rules : tuple of Rule, default RULES

    Returns
    -------
    str
    """
    lines = [
        "| your situation | use | why | avoid | measured in |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rule in rules:
        use = ", else ".join(f"`{m}`" for m in rule.methods)
        cells = [rule.situation, rule.reason, rule.avoid or "—", rule.measured or "—"]
        situation, reason, avoid, measured = (c.replace("|", "\\|") for c in cells)
        lines.append(f"| {situation} | {use} | {reason} | {avoid} | {measured} |")
    return "\n".join(lines)


@declare_options
class AutoOptions(Options):
    """Options of :class:`Auto`."""

    gradient: bool = option(False, Flag())
    stochastic: bool = option(False, Flag())
    cost: float | None = option(None, Optional(RealRange(0.0)))
    bounds: Any = option(None, BOUNDS)
    tol: float | None = option(None, Optional(RealRange(0.0)))


@register("auto")
class Auto(Optimizer):
    """Choose a method from the facts of the run (see :data:`RULES`) and run it.

    With enough budget (:data:`PROBE_FROM` evaluations per variable) the first
    iterations measure, at ``x0``, the noise level (unless the objective is declared
    stochastic), plateaus and the cost of one evaluation; then the chosen method runs
    on the rest of the budget with ``x0``, the seed and the bounds. ``choice`` (and
    ``Result.auto``) records the method, the rule, the reason and the facts.

    Parameters
    ----------
    gradient : bool, default False
        The objective has an exact gradient (:func:`dfo.minimize` sets it).
    stochastic : bool, default False
        The objective is stochastic (:func:`dfo.minimize` sets it).
    cost : float, optional
        Seconds per evaluation, if known (measured otherwise). A measured cost is a
        wall-clock time, so near :data:`EXPENSIVE` the choice can differ between
        machines or under load; give ``cost`` (``0.0`` for a cheap objective) to make
        the choice depend on the seed and the facts only.
    bounds : optional
        Passed to the chosen method.
    tol : float, optional
        Passed to the chosen method as ``tol=``.
    """

    Options = AutoOptions
    TOL = ("tol",)
    TOL_MEANING = "passed on as ``tol=`` to the method it chooses"
    config: AutoOptions
    #: until the method is chosen (and then as the chosen method says)
    recommends_unevaluated: bool = True  # type: ignore[misc]

    def _setup(self) -> None:
        cfg = self.config
        gradient, stochastic, cost, bounds = cfg.gradient, cfg.stochastic, cfg.cost, cfg.bounds
        self.facts = Facts(
            dim=self.dim,
            budget=self.budget,
            gradient=bool(gradient),
            stochastic=bool(stochastic),
            cost=None if cost is None else float(cost),
            bounds=bounds is not None,
        )
        self.bounds = bounds
        self.inner: Optimizer | None = None
        self.choice: dict[str, Any] | None = None
        self._probe: NoiseProbe | None = None
        self._asked_at = 0.0
        self._probe_fresh = True
        if not gradient and self.facts.per_dim >= PROBE_FROM:
            self._probe = NoiseProbe(self.x0, self.rng, with_curvature=False, box=self.box)
        else:
            self._start()

    def _start(self) -> None:
        method, rule = choose(self.facts)
        spent = self.nfev
        budget = None if self.budget is None else max(1, self.budget - spent)
        # the run's own seed: the chosen method draws what it would draw if run directly
        seed = self.seed
        bounds = None if self.box is None else self.box.pairs()
        tol = self.config.tol if get_method(method).TOL else None
        self.inner = build_optimizer(
            method, self.x0, seed=seed, budget=budget, bounds=bounds, tol=tol
        )
        # the run loop reads it from the instance: gradients if the chosen method needs them
        self.needs_gradient = self.inner.needs_gradient  # type: ignore[misc]
        self.recommends_unevaluated = self.inner.recommends_unevaluated
        self.choice = {
            "method": method,
            "rule": rule.situation,
            "reason": rule.reason,
            "facts": asdict(self.facts),
            "probe_nfev": spent,
        }

    def _ask(self) -> np.ndarray:
        if self._probe is not None:
            self._probe_fresh = self._probe.nfev == 0
            self._asked_at = time.perf_counter()
            return self._probe.ask()
        assert self.inner is not None
        return self.inner.ask()

    def wants_new_sample(self) -> bool:
        if self._probe is not None:
            return self._probe_fresh
        assert self.inner is not None
        return self.inner.wants_new_sample()

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        probe = self._probe
        if probe is None:
            assert self.inner is not None
            self.inner.tell(X, values, grads)
            return self.inner.last_value
        if self.facts.cost is None:
            self.facts.cost = (time.perf_counter() - self._asked_at) / X.shape[0]
        first = probe.nfev == 0
        probe.tell(values)
        if first and np.count_nonzero(np.diff(values) == 0.0) >= values.size / 2:
            self.facts.plateau = True
        if probe.done:
            est = probe.estimate
            assert est is not None
            if not self.facts.stochastic:
                scale = max(1.0, abs(probe.f0)) if math.isfinite(probe.f0) else 1.0
                self.facts.noisy = bool(
                    est.reliable and est.level > 1e3 * np.finfo(np.float64).eps * scale
                )
                self.facts.noise_level = est.level if est.reliable else None
            self._probe = None
            self._start()
        return probe.f0

    def _recommend(self) -> np.ndarray:
        if self.inner is None:
            return self.x0
        if not self.inner.recommends_unevaluated:
            return self.ledger.best_x  # the best point, the probes' included
        return self.inner.recommend()

    def _stop(self) -> dict[str, Any]:
        return {} if self.inner is None else self.inner.stop()

    def close(self) -> None:
        """Release what the chosen method holds (scipy's worker thread)."""
        if self.inner is not None:
            self.inner.close()

    def notes(self) -> list[str]:
        notes = [] if self.inner is None else self.inner.notes()
        if self.choice is not None:
            notes = [f"auto chose {self.choice['method']}: {self.choice['reason']}", *notes]
        return notes

    def _resolved_options(self) -> dict[str, Any]:
        return {"cost": self.facts.cost}

    def extra(self) -> dict[str, Any]:
        """The chosen method's own Result fields (such as CMA-ES's ``restarts``)."""
        return {} if self.inner is None else self.inner.extra()

    def describe(self) -> dict[str, Any] | None:
        """The choice with the chosen method's options (what ``Result.auto`` records)."""
        if self.choice is None or self.inner is None:
            return None
        return {**self.choice, "facts": asdict(self.facts), "options": self.inner.options()}
