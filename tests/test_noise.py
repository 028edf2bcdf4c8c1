"""dfo.estimate_noise (ECnoise) and the noise-aware finite-difference step."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dfo
from dfo.exceptions import InvalidOptionError
from dfo.noise import NoiseProbe, ecnoise, noise_aware_step
from dfo.problems import Noisy, SkewedQuartic
from dfo.result import Status


def _smooth(x: np.ndarray) -> float:
    return float(np.sum(np.sin(x)) + x @ x + 4.0)


def _noisy(sigma: float, seed: int):
    rng = np.random.default_rng(seed)
    return lambda x: _smooth(x) + sigma * float(rng.standard_normal())


@pytest.mark.parametrize("sigma", [1e-1, 1e-3, 1e-6])
def test_estimate_matches_known_additive_noise(sigma):
    # 9 values give a rough estimate: each one within a factor 3, the median over
    # 40 directions and noise streams within 25% of the true standard deviation
    levels = []
    for s in range(40):
        est = dfo.estimate_noise(_noisy(sigma, 1000 + s), np.ones(5), seed=s)
        assert est.reliable, est.message
        assert sigma / 3 < est.level < 3 * sigma
        levels.append(est.level)
    assert abs(np.median(levels) / sigma - 1) < 0.25


def test_noise_free_function_shows_rounding_level():
    for s in range(10):
        est = dfo.estimate_noise(_smooth, np.ones(5), seed=s)
        # a smooth function's only noise is rounding: a few eps times |f| (here ~13)
        assert est.level < 100 * np.finfo(float).eps * abs(_smooth(np.ones(5)))
        assert est.nfev <= 27


def test_noisy_objective_is_measured_on_one_realization():
    est = dfo.estimate_noise(Noisy(SkewedQuartic(10), 0.1), np.ones(10), seed=3)
    assert est.reliable and 0.1 / 3 < est.level < 0.3
    # common noise cancels in differences: the realization has no noise to find
    common = dfo.estimate_noise(Noisy(SkewedQuartic(10), 0.1, common=True), np.ones(10))
    assert common.level < 1e-12


def test_ecnoise_flags():
    assert ecnoise(np.full(9, 2.0)) == (0.0, 2)  # h too small: no change at all
    assert ecnoise(np.linspace(0.0, 100.0, 9))[1] == 3  # h too large: values vary by > 10%
    smooth = 1000.0 + np.arange(9.0) ** 2  # an exact parabola: differences vanish, no noise
    assert ecnoise(smooth)[1] == 3


def test_flat_function_is_unreliable():
    est = dfo.estimate_noise(lambda x: 5.0, np.zeros(3))
    assert not est.reliable
    assert "no difference table settled" in est.message
    assert est.level == np.finfo(float).eps * 5.0
    assert est.nfev == 27


def test_bad_arguments_raise_before_evaluating():
    calls = []

    def f(x):
        calls.append(x)
        return 0.0

    for kwargs in ({"h": 0.0}, {"n_points": 3}, {"max_tries": 0}, {"h": math.inf}):
        with pytest.raises(InvalidOptionError):
            dfo.estimate_noise(f, np.zeros(2), **kwargs)
    with pytest.raises(ValueError):
        dfo.estimate_noise(f, np.zeros((2, 2)))
    assert not calls


def test_noise_aware_step_minimizes_the_error_model():
    # forward: (mu h / 2)^2 + 2 eps^2 / h^2, central: (mu h^2 / 6)^2 + eps^2 / (2 h^2)
    eps, mu = 1e-4, 3.0
    grid = np.geomspace(1e-5, 1.0, 200_001)
    fwd = (mu * grid / 2) ** 2 + 2 * eps**2 / grid**2
    cen = (mu * grid**2 / 6) ** 2 + eps**2 / (2 * grid**2)
    assert noise_aware_step(eps, mu) == pytest.approx(grid[fwd.argmin()], rel=1e-3)
    assert noise_aware_step(eps, mu, "central") == pytest.approx(grid[cen.argmin()], rel=1e-3)


def test_probe_estimates_curvature_of_a_noisy_quadratic():
    # f = 1.5 |x|^2 + noise: second derivative 3 along every unit direction
    rng = np.random.default_rng(0)
    mus = []
    for s in range(20):
        probe = NoiseProbe(np.ones(4), np.random.default_rng(s))
        while not probe.done:
            X = probe.ask()
            probe.tell(1.5 * np.sum(X**2, axis=1) + 1e-3 * rng.standard_normal(len(X)))
        assert probe.estimate.reliable
        mus.append(probe.curvature)
    assert abs(np.median(mus) / 3.0 - 1) < 0.2


# -- noise-aware steps, noisy results and stalls in the methods ------------------------


def _quartic_loss(res) -> float:
    base = SkewedQuartic(10)
    return base(res.x) / base(np.ones(10))


def test_spsa_default_c_comes_from_the_measured_noise():
    res = dfo.minimize(Noisy(SkewedQuartic(10), 0.1), np.ones(10), method="spsa", budget=2000)
    noise = res.noise
    assert noise["reliable"] and 0.1 / 3 < noise["level"] < 0.3
    assert res.options["c"] == noise["step"] == max(0.01, 2 * noise["level"])
    # a noise-free objective keeps the small perturbation
    plain = dfo.minimize(SkewedQuartic(10), np.ones(10), method="spsa", budget=2000)
    assert plain.options["c"] == 0.01 and plain.noise["level"] < 1e-13


def test_fd_sgd_auto_step_from_noise_and_curvature():
    res = dfo.minimize(
        Noisy(SkewedQuartic(10), 0.1), np.ones(10), method="fd-sgd", budget=3000, h="auto"
    )
    noise = res.noise
    assert noise["step"] == noise_aware_step(noise["level"], noise["curvature"])
    assert res.options["h"] == noise["step"] and 0.1 < noise["step"] < 2
    noisy = Noisy(SkewedQuartic(10), 0.1)
    eps_step = dfo.minimize(noisy, np.ones(10), method="fd-sgd", budget=3000)
    assert _quartic_loss(res) < 0.1 < _quartic_loss(eps_step)
    with pytest.raises(InvalidOptionError, match="'auto'"):
        dfo.make_optimizer("fd-sgd", np.ones(2), h="automatic")


def test_small_budget_does_not_measure():
    res = dfo.minimize(lambda x: float(x @ x), np.ones(3), method="spsa", budget=100)
    assert res.noise["message"].startswith("not measured")


def test_noisy_callable_reports_the_estimate_not_the_luckiest_draw():
    base = SkewedQuartic(10)
    rng = np.random.default_rng(0)
    res = dfo.minimize(
        lambda x: base(x) + 0.1 * float(rng.standard_normal()),
        np.ones(10),
        method="cma-es",
        budget=2000,
        seed=0,
    )
    assert "noise detected" in res.message
    # the lowest draw of the run is far below the truth; the result is not that draw
    assert res.history["best"][-1] < res.fun
    assert res.history["best"][-1] < base(res.x) - 0.1
    # a deterministic function is not re-measured: the best value is the result
    det = dfo.minimize(base, np.ones(10), method="cma-es", budget=2000, seed=0)
    assert "noise" not in det.message and det.fun <= det.history["best"][-1]


def _floor(x: np.ndarray) -> float:
    return float(np.floor(np.sum((x - 3.0) ** 2)))


@pytest.mark.parametrize("method", ["spsa", "fd-sgd"])
def test_piecewise_constant_objective_stalls(method):
    res = dfo.minimize(_floor, np.zeros(10), method=method, budget=2000, seed=0)
    assert res.status == Status.STALLED and not res.success
    assert "exactly zero" in res.message and "larger perturbation" in res.message
    assert res.nfev < 2000


def test_exact_zero_gradient_is_not_a_stall_for_backprop():
    obj = dfo.as_objective(lambda x: float(x @ x), dim=2, grad=lambda x: 2 * x)
    res = dfo.minimize(obj, np.zeros(2), method="backprop-sgd", budget=50)
    assert res.success and res.status != Status.STALLED


def test_probe_keeps_inside_a_box():
    from dfo.bounds import parse_bounds

    box = parse_bounds([(0.0, 0.05)] + [(-1.0, 1.0)] * 3, 4)
    rng = np.random.default_rng(0)
    probe = NoiseProbe(np.zeros(4), np.random.default_rng(1), box=box)
    while not probe.done:
        X = probe.ask()
        assert box.contains(X)
        probe.tell(1.5 * np.sum(X**2, axis=1) + 1e-3 * rng.standard_normal(len(X)))
    assert probe.estimate.reliable and 1e-3 / 3 < probe.estimate.level < 3e-3


def test_noise_around_the_value_zero_is_measured():
    # the values' spread is far above 10% of their size: noise, not a too large h
    rng = np.random.default_rng(5)
    est = dfo.estimate_noise(lambda x: float(x @ x) + 1e-3 * rng.standard_normal(), np.zeros(3))
    assert est.reliable and 1e-3 / 3 < est.level < 3e-3
