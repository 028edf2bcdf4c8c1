"""Step rules: pure (init, update) pairs checked against independent references."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from dfo.exceptions import InvalidOptionError
from dfo.optimizers.step_rules import STEP_RULES, StepRule, adam, get_step_rule, momentum, sgd

RNG_SEED = 20240601


def _grads(n_steps: int, dim: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    return [rng.standard_normal(dim) for _ in range(n_steps)]


def _run(rule: StepRule, grads: list[np.ndarray], lr: float) -> list[np.ndarray]:
    state = rule.init(np.zeros_like(grads[0]))
    steps = []
    for g in grads:
        step, state = rule.update(g, state, lr)
        steps.append(step)
    return steps


def test_sgd_step_is_minus_lr_times_gradient():
    for g, step in zip(_grads(3), _run(sgd(), _grads(3), 0.3), strict=True):
        np.testing.assert_array_equal(step, -0.3 * g)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_heavy_ball_recurrence(nesterov):
    beta, lr = 0.8, 0.05
    grads = _grads(6)
    steps = _run(momentum(beta=beta, nesterov=nesterov), grads, lr)
    # independent reference: the textbook loop, written out
    v = np.zeros(4)
    for g, step in zip(grads, steps, strict=True):
        v = beta * v + g
        expected = -lr * (g + beta * v) if nesterov else -lr * v
        np.testing.assert_allclose(step, expected, rtol=1e-14, atol=0)


def test_adam_matches_kingma_ba_algorithm_1():
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-2
    grads = _grads(8)
    steps = _run(adam(b1=b1, b2=b2, eps=eps), grads, lr)
    m = np.zeros(4)
    v = np.zeros(4)
    for t, (g, step) in enumerate(zip(grads, steps, strict=True), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        np.testing.assert_allclose(step, -lr * m_hat / (np.sqrt(v_hat) + eps), rtol=1e-12)


def test_adam_first_step_is_lr_times_sign():
    # closed form: m_hat = g, v_hat = g**2, so the first step is -lr * sign(g) (eps -> 0)
    g = np.array([3.0, -0.002, 1e4, -7.0])
    step, _ = adam(eps=1e-300).update(g, adam().init(g), 0.1)
    np.testing.assert_allclose(step, -0.1 * np.sign(g), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(STEP_RULES))
def test_update_is_pure(name):
    rule = get_step_rule(name)
    g = np.array([1.0, -2.0, 0.5])
    state = rule.update(g, rule.init(np.zeros(3)), 0.1)[1]
    g_copy = g.copy()
    state_copy = pickle.loads(pickle.dumps(state))
    step1, new1 = rule.update(g, state, 0.1)
    step2, _ = rule.update(g, state, 0.1)
    np.testing.assert_array_equal(step1, step2)  # same input, same output
    np.testing.assert_array_equal(g, g_copy)  # the gradient is not modified
    for before, after in zip(state_copy, state, strict=True):
        np.testing.assert_array_equal(before, after)  # neither is the state
    assert type(new1) is type(state)


@pytest.mark.parametrize("name", sorted(STEP_RULES))
def test_rules_pickle_and_keep_working(name):
    rule = pickle.loads(pickle.dumps(get_step_rule(name)))
    grads = _grads(3)
    np.testing.assert_array_equal(
        np.array(_run(rule, grads, 0.1)), np.array(_run(get_step_rule(name), grads, 0.1))
    )


@pytest.mark.parametrize("name", sorted(STEP_RULES))
def test_every_rule_minimizes_a_quadratic(name):
    # f(x) = 0.5 x' D x, gradient D x; each rule must shrink f by 1e6 in 500 steps
    d = np.array([1.0, 3.0, 10.0])
    x = np.array([1.0, -1.0, 0.5])
    rule = get_step_rule(name)
    state = rule.init(x)
    lr = {"sgd": 0.1, "momentum": 0.02, "adam": 0.05}[name]
    f0 = 0.5 * x @ (d * x)
    for _ in range(500):
        step, state = rule.update(d * x, state, lr * (1.0 if name != "adam" else 0.99**_))
        x = x + step
    assert 0.5 * x @ (d * x) < 1e-6 * f0


def test_get_step_rule_passes_instances_through():
    rule = momentum(beta=0.5)
    assert get_step_rule(rule) is rule


def test_unknown_rule_name_suggests_the_closest():
    with pytest.raises(InvalidOptionError, match="Did you mean 'adam'"):
        get_step_rule("adma")


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (momentum, {"beta": 1.0}, "beta"),
        (momentum, {"beta": -0.1}, "beta"),
        (adam, {"b1": 1.0}, "b1"),
        (adam, {"b2": -0.5}, "b2"),
        (adam, {"eps": 0.0}, "eps"),
    ],
)
def test_bad_hyperparameters_are_rejected(factory, kwargs, match):
    with pytest.raises(InvalidOptionError, match=match):
        factory(**kwargs)
