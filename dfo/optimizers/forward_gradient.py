"""Forward gradient descent (Baydin et al., 2022, "Gradients without backpropagation").

Each iteration draws ``q = n_directions`` random directions ``v_j ~ N(0, I)`` and
asks for the directional derivatives ``d_j = grad f(x) . v_j`` (forward mode: one
forward pass that carries a tangent, about the cost of one or two evaluations
whatever ``n`` is). The estimate

    g = mean_j d_j v_j

is unbiased (``E[v v^T] = I``), like SPSA's, but exact in every direction it
measures: no step ``c``, no rounding error of a difference. Its cosine with the
gradient is about ``sqrt(q / (q + n + 1))`` (the same law as SPSA's), so in large
``n`` it is a noisy step, and the learning rate must be smaller than plain SGD's.

Evaluations: ``q`` per iteration (each a value with one directional derivative,
counted in ``nfev`` and ``njvp``), whatever ``n`` is.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from dfo.objective import all_finite, square_norm
from dfo.optimizers import register
from dfo.optimizers.gradient import STEP_RULE, GradientStepOptimizer
from dfo.optimizers.step_rules import StepRule
from dfo.options import (
    Optional,
    Options,
    PositiveInt,
    PositiveReal,
    RealRange,
    declare_options,
    option,
)

__all__ = ["ForwardGradient", "ForwardGradientOptions"]


@declare_options
class ForwardGradientOptions(Options):
    """Options of :class:`ForwardGradient`."""

    learning_rate: float = option(0.01, PositiveReal())
    n_directions: int = option(1, PositiveInt())
    step_rule: str | StepRule = option("sgd", STEP_RULE)
    patience: int = option(10, PositiveInt())
    divergence: float = option(1e4, PositiveReal(allow_inf=True))
    xtol: float | None = option(None, Optional(RealRange(0.0)))


@register("forward-gradient")
class ForwardGradient(GradientStepOptimizer):
    """Gradient descent on forward gradients ``mean_j (grad f . v_j) v_j``, ``v_j ~ N(0, I)``.

    Needs an objective with forward mode (``has_jvp``, such as
    :class:`dfo.NetworkObjective`). Driven by hand, :meth:`directions` gives the
    direction of each asked point and ``tell(X, values, dderivs)`` takes the
    directional derivatives along them.

    Parameters
    ----------
    learning_rate : float, default 0.01
    n_directions : int, default 1
        Directions per gradient estimate (one evaluation each).
    step_rule : {"sgd", "momentum", "adam"} or StepRule, default "sgd"
    patience, divergence, xtol
        As for :class:`dfo.optimizers.gradient.BackpropSGD`.

    Examples
    --------
    >>> import numpy as np, dfo
    >>> opt = dfo.make_optimizer("forward-gradient", np.ones(3), seed=0, learning_rate=0.1)
    >>> X = opt.ask(); V = opt.directions()
    >>> opt.tell(X, 0.5 * (X**2).sum(axis=1), np.einsum("ij,ij->i", X, V))  # grad = x
    >>> opt.nit
    1
    """

    Options = ForwardGradientOptions
    config: ForwardGradientOptions
    needs_jvp: ClassVar[bool] = True
    # every step makes a new iterate: the asked view of x is never changed
    immutable_asks: ClassVar[bool] = True

    def _setup(self) -> None:
        super()._setup()
        self.q = self.config.n_directions
        self._V = np.empty((0, self.dim))  # none drawn yet

    def _draw(self) -> np.ndarray:
        """The next iteration's ``q`` directions, drawn into the same array every time.

        ``tell`` reads them only to make the step's estimate, and :meth:`directions`
        hands out a copy, so the array is the optimizer's own.
        """
        V = self._V
        if V.shape[0] != self.q:  # the first draw
            V = self._V = np.empty((self.q, self.dim))
        self.rng.standard_normal(out=V)
        return V

    def _ask(self) -> np.ndarray:
        self._draw()
        if self.q == 1:
            return self.x[None, :]
        return np.repeat(self.x[None, :], self.q, axis=0)

    def directions(self) -> np.ndarray:
        return self._V.copy()

    def _tell(self, X: np.ndarray, values: np.ndarray, grads: np.ndarray | None) -> float:
        assert grads is not None  # the directional derivatives, checked by tell
        value = float(values[0])
        if not (math.isfinite(value) and all_finite(grads)):
            return self._step(value, None)
        # mean_j d_j v_j (one direction: d v, the same bits)
        g = self._V[0] * grads[0] if self.q == 1 else grads @ self._V / self.q
        # one read of g: finite, and a bound on |g_i| for the overflow test
        square = square_norm(g)
        if math.isfinite(square):
            return self._step(value, g, finite=True, grad_bound=math.sqrt(square))
        return self._step(value, g)

    def lean_direction(self) -> np.ndarray:
        """The next iteration's direction, drawn as :meth:`ask` draws it (one direction).

        For the run's lean loop (:mod:`dfo.run.lean`), which evaluates ``self.x``
        along it without asking, then calls :meth:`tell_jvp`.
        """
        if self._n_pending is None:  # else stop() has asked: the pending direction
            self._draw()
        return self._V[0]  # (a view made here: a pickled copy keeps no view of its own)

    def tell_jvp(self, value: float, dderiv: float) -> None:
        """:meth:`tell_evaluated` of the value and directional derivative, in scalars.

        The lean loop's (after :meth:`lean_direction`): the same step and the same
        bookkeeping as ``ask`` and ``tell`` (``tests/test_lean_loop.py`` checks the
        bits), without the arrays of a batch of one point.
        """
        x, v = self.x, self._V[0]
        if math.isfinite(value) and math.isfinite(dderiv):
            g = v * dderiv  # d v, as _tell
            square = square_norm(g)
            if math.isfinite(square):
                reported = self._step(value, g, finite=True, grad_bound=math.sqrt(square))
            else:
                reported = self._step(value, g)
        else:
            reported = self._step(value, None)
        self._pending = self._n_pending = None
        if self._handed:
            self._handed = []
        ledger = self.ledger
        if not ledger.book_jvp(x, value, dderiv):  # not finite: counted as tell does
            ledger.book(x[None, :], np.array([value]), dderivs=np.array([dderiv]), copy=False)
        ledger.close_iteration(reported)
