"""Step rules: how a gradient (exact or estimated) becomes a step.

A step rule is an ``(init, update)`` pair of pure functions over a small
:class:`~typing.NamedTuple` state, in the style of optax:

>>> import numpy as np
>>> rule = adam()
>>> state = rule.init(np.zeros(3))
>>> step, state = rule.update(np.ones(3), state, 0.1)
>>> step
array([-0.1, -0.1, -0.1])

``update(grad, state, learning_rate)`` returns the *step to add* to the
parameters and the new state. The learning rate is passed on every call so that
schedules (such as SPSA's decaying gain ``a_k``) stay outside the rule. Every
rule pickles (the functions are module-level; hyperparameters are bound with
:func:`functools.partial`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from dfo.exceptions import InvalidOptionError, suggest

__all__ = [
    "STEP_RULES",
    "StepRule",
    "adam",
    "describe",
    "get_step_rule",
    "is_plain_sgd",
    "momentum",
    "sgd",
]


class StepRule(NamedTuple):
    """An ``(init, update)`` pair of pure functions that turns gradients into steps.

    Build one with :func:`sgd`, :func:`momentum` or :func:`adam` (or by hand, from
    two module-level functions, so that it pickles); see the module docstring.

    Attributes
    ----------
    init : callable
        ``init(x) -> state``: the rule's initial state for parameters shaped like
        ``x`` (a :class:`~typing.NamedTuple`; ``x`` itself is not modified).
    update : callable
        ``update(grad, state, learning_rate) -> (step, new_state)``: the step to
        *add* to the parameters (already scaled by ``-learning_rate``) and the
        next state. It does not modify ``state``.

    Examples
    --------
    >>> import numpy as np
    >>> rule = sgd()
    >>> step, state = rule.update(np.array([1.0, -2.0]), rule.init(np.zeros(2)), 0.5)
    >>> step
    array([-0.5,  1. ])
    """

    init: Callable[[np.ndarray], Any]
    update: Callable[[np.ndarray, Any, float], tuple[np.ndarray, Any]]


class EmptyState(NamedTuple):
    """State of rules that keep none."""


class MomentumState(NamedTuple):
    velocity: np.ndarray


class AdamState(NamedTuple):
    count: int  # type: ignore[assignment]  # a field, shadowing tuple.count
    mu: np.ndarray
    nu: np.ndarray


def _sgd_init(x: np.ndarray) -> EmptyState:
    return EmptyState()


def _sgd_update(grad: np.ndarray, state: EmptyState, lr: float) -> tuple[np.ndarray, EmptyState]:
    return -lr * grad, state


def sgd() -> StepRule:
    """Plain gradient descent: ``step = -lr * g``.

    The rule keeps no state (its state is an empty tuple).

    Returns
    -------
    StepRule
    """
    return StepRule(_sgd_init, _sgd_update)


def _momentum_init(x: np.ndarray) -> MomentumState:
    return MomentumState(np.zeros_like(x))


def _momentum_update(
    grad: np.ndarray, state: MomentumState, lr: float, *, beta: float, nesterov: bool
) -> tuple[np.ndarray, MomentumState]:
    velocity = beta * state.velocity + grad
    direction = grad + beta * velocity if nesterov else velocity
    return -lr * direction, MomentumState(velocity)


def momentum(*, beta: float = 0.9, nesterov: bool = False) -> StepRule:
    """Heavy-ball momentum: ``v = beta v + g``, ``step = -lr v`` (Nesterov optional).

    The velocity ``v`` starts at zero, so the first step equals plain gradient
    descent's.

    Parameters
    ----------
    beta : float, default 0.9
        Momentum coefficient, in ``[0, 1)``; 0 gives plain gradient descent.
    nesterov : bool, default False
        Step along ``g + beta v`` (with the updated ``v``) instead of ``v``.

    Returns
    -------
    StepRule
        Its state is a ``MomentumState(velocity)``.

    Raises
    ------
    InvalidOptionError
        If ``beta`` is not in ``[0, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> rule = momentum(beta=0.5)
    >>> state = rule.init(np.zeros(2))
    >>> step, state = rule.update(np.ones(2), state, 0.1)
    >>> step, state = rule.update(np.ones(2), state, 0.1)  # v = 0.5 * 1 + 1
    >>> step
    array([-0.15, -0.15])
    """
    if not 0.0 <= beta < 1.0:
        raise InvalidOptionError(f"momentum beta must be in [0, 1); got {beta!r}")
    return StepRule(_momentum_init, partial(_momentum_update, beta=beta, nesterov=nesterov))


def _adam_init(x: np.ndarray) -> AdamState:
    return AdamState(0, np.zeros_like(x), np.zeros_like(x))


def _adam_update(
    grad: np.ndarray, state: AdamState, lr: float, *, b1: float, b2: float, eps: float
) -> tuple[np.ndarray, AdamState]:
    count = state.count + 1
    mu = b1 * state.mu + (1.0 - b1) * grad
    nu = b2 * state.nu + (1.0 - b2) * (grad * grad)
    mu_hat = mu / (1.0 - b1**count)
    nu_hat = nu / (1.0 - b2**count)
    return -lr * mu_hat / (np.sqrt(nu_hat) + eps), AdamState(count, mu, nu)


def adam(*, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> StepRule:
    """Adam (Kingma & Ba, 2015) with bias correction.

    With ``m`` and ``v`` the running averages of ``g`` and ``g**2`` (both starting
    at zero) and ``t`` the number of updates so far, the step is
    ``-lr * m_hat / (sqrt(v_hat) + eps)`` where ``m_hat = m / (1 - b1**t)`` and
    ``v_hat = v / (1 - b2**t)``. The first step is thus about ``-lr * sign(g)``
    in each coordinate, whatever the gradient's scale.

    Parameters
    ----------
    b1 : float, default 0.9
        Decay rate of the gradient's running average, in ``[0, 1)``.
    b2 : float, default 0.999
        Decay rate of the squared gradient's running average, in ``[0, 1)``.
    eps : float, default 1e-8
        Added to ``sqrt(v_hat)`` in the denominator; must be > 0.

    Returns
    -------
    StepRule
        Its state is an ``AdamState(count, mu, nu)``.

    Raises
    ------
    InvalidOptionError
        If ``b1`` or ``b2`` is not in ``[0, 1)`` or ``eps`` is not > 0.

    Examples
    --------
    >>> import numpy as np
    >>> rule = adam()
    >>> step, state = rule.update(np.array([2.0, -0.5]), rule.init(np.zeros(2)), 0.1)
    >>> step
    array([-0.1,  0.1])
    >>> state.count
    1
    """
    for name, value in (("b1", b1), ("b2", b2)):
        if not 0.0 <= value < 1.0:
            raise InvalidOptionError(f"adam {name} must be in [0, 1); got {value!r}")
    if not eps > 0:
        raise InvalidOptionError(f"adam eps must be > 0; got {eps!r}")
    return StepRule(_adam_init, partial(_adam_update, b1=b1, b2=b2, eps=eps))


STEP_RULES: dict[str, Callable[..., StepRule]] = {"sgd": sgd, "momentum": momentum, "adam": adam}


def get_step_rule(rule: str | StepRule) -> StepRule:
    """Return the :class:`StepRule` named ``rule`` (or ``rule`` itself).

    Parameters
    ----------
    rule : {"sgd", "momentum", "adam"} or StepRule
        A name from ``STEP_RULES``, built with its default hyperparameters, or a
        :class:`StepRule` (such as ``momentum(beta=0.5)``), returned unchanged.

    Returns
    -------
    StepRule

    Raises
    ------
    InvalidOptionError
        If ``rule`` is neither a :class:`StepRule` nor the name of one (the
        message suggests the closest names).

    Examples
    --------
    >>> rule = momentum(beta=0.5)
    >>> get_step_rule(rule) is rule
    True
    >>> get_step_rule("adma")
    Traceback (most recent call last):
    ...
    dfo.exceptions.InvalidOptionError: unknown step rule 'adma'; ... Did you mean 'adam'?
    """
    if isinstance(rule, StepRule):
        return rule
    if not isinstance(rule, str) or rule not in STEP_RULES:
        raise InvalidOptionError(
            f"unknown step rule {rule!r}; expected one of {sorted(STEP_RULES)}."
            + suggest(str(rule), STEP_RULES)
        )
    return STEP_RULES[rule]()


_UPDATES = {_sgd_update: "sgd", _momentum_update: "momentum", _adam_update: "adam"}


def _qualified(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def describe(rule: str | StepRule) -> dict[str, Any]:
    """A step rule as its name and parameters: the same in every process.

    Parameters
    ----------
    rule : str or StepRule
        A name from ``STEP_RULES`` (described with its default parameters) or a rule.

    Returns
    -------
    dict
        ``{"name": ..., **parameters}`` for the built-in rules; for a rule built by
        hand, the qualified names of its ``init`` and ``update`` functions and the
        keywords bound with :func:`functools.partial`.

    Raises
    ------
    InvalidOptionError
        If ``rule`` is neither a step rule nor the name of one.

    Examples
    --------
    >>> describe(momentum(beta=0.5))
    {'name': 'momentum', 'beta': 0.5, 'nesterov': False}
    >>> describe("sgd")
    {'name': 'sgd'}
    """
    rule = get_step_rule(rule)
    update = rule.update
    fn = update.func if isinstance(update, partial) else update
    params = dict(update.keywords) if isinstance(update, partial) else {}
    name = _UPDATES.get(fn)
    if name is not None:
        return {"name": name, **params}
    return {"init": _qualified(rule.init), "update": _qualified(fn), **params}


def is_plain_sgd(rule: StepRule) -> bool:
    """Whether ``rule`` is plain gradient descent (its step is ``-lr * g``, no state).

    Parameters
    ----------
    rule : StepRule

    Returns
    -------
    bool
    """
    return rule.update is _sgd_update
