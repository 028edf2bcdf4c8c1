"""dfo scaling: gradient costs, fits, FD step error and estimate cosines, on tiny sweeps."""

from __future__ import annotations

import argparse
import csv
import math

import numpy as np
import pytest

import dfo.scaling as scaling
from dfo.exceptions import InvalidOptionError
from dfo.nn.network_objective import NetworkObjective
from dfo.numdiff import finite_difference
from dfo.scaling.accuracy import CosineRecord, StepErrorRecord, estimates
from dfo.scaling.costs import (
    EXPECTED_SLOPES,
    GradientTiming,
    fit_slopes,
    measure_gradient_costs,
)
from dfo.scaling.plots import write_csv
from dfo.scaling.workload import CoordinateSample, digits_batch, network_for, sweep_sizes


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    scaling.add_arguments(parser)
    return parser.parse_args(list(argv))


# -- workload ---------------------------------------------------------------------------
@pytest.mark.parametrize("target", [1, 85, 100, 760, 10_000, 100_000])
def test_network_for_is_64_h_10_with_the_closest_width(target):
    net = network_for(target)
    n_in, h, n_out = net.sizes
    assert (n_in, n_out) == (64, 10)
    assert net.n_params == 64 * h + h + h * 10 + 10  # weights and biases, counted by hand
    # the closest size the family has: one width step is 75 parameters
    assert abs(net.n_params - target) <= 37.5 or (h == 1 and target < 85)


def test_sweep_sizes_are_distinct_ascending_and_span_the_range():
    sizes = sweep_sizes(20_000, count=7)
    assert sizes == sorted(set(sizes))
    assert sizes[0] == 85
    assert abs(sizes[-1] - 20_000) <= 75
    ratios = np.diff(np.log(sizes))
    assert np.allclose(ratios, ratios.mean(), rtol=0.2)  # evenly spaced in log n
    with pytest.raises(InvalidOptionError, match="max_params"):
        sweep_sizes(10)
    with pytest.raises(InvalidOptionError, match="count"):
        sweep_sizes(1000, count=1)


def test_coordinate_sample_fd_is_the_full_fd_on_those_coordinates():
    X, y = digits_batch(16, seed=3)
    net = network_for(310)
    obj = NetworkObjective(net, X, y)
    theta = net.init_params(np.random.default_rng(1))
    coords = np.array([0, 7, 100, 200, 309])
    for scheme in ("forward", "central"):
        full = finite_difference(obj, theta, scheme=scheme)
        sub = finite_difference(CoordinateSample(obj, theta, coords), theta[coords], scheme=scheme)
        np.testing.assert_array_equal(sub.step, full.step[coords])
        # same probe rows; only the batching of the evaluations differs (rounding / h)
        np.testing.assert_allclose(sub.grad, full.grad[coords], rtol=1e-6, atol=1e-9)
        assert sub.nfev == (coords.size + 1 if scheme == "forward" else 2 * coords.size)


def test_spsa_estimate_is_dfos_spsa_and_a_central_difference_along_its_direction():
    # the estimate dfo scaling uses is the spsa method's own: (f+ - f-) / (2 c_k) d
    X, y = digits_batch(16, seed=0)
    net = network_for(85)
    obj = NetworkObjective(net, X, y)
    theta = net.init_params(np.random.default_rng(2))
    g = next(estimates("spsa", obj, theta, 3, 1e-4))
    d = np.sign(g) * np.sign(g[0])  # the +-1 direction, up to its sign
    _, grad = obj.value_and_grad(theta)
    # a central difference along d of size c: g = (grad . d) d to O(c^2)
    np.testing.assert_allclose(g, (grad @ d) * d, rtol=1e-5)


# -- the cost sweep ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_costs():
    return measure_gradient_costs(
        [85, 310], batch=16, repeats=1, min_time=0.0, fd_exact_max=100, fd_block=16, seed=0
    )


def test_cost_records_count_evaluations_and_mark_extrapolation(tiny_costs):
    by = {(r.n_params, r.method): r for r in tiny_costs}
    assert sorted({r.method for r in tiny_costs}) == sorted(scaling.METHODS)
    for n in (85, 310):
        assert by[n, "forward-fd"].evaluations == n + 1
        assert by[n, "central-fd"].evaluations == 2 * n
        assert by[n, "spsa"].evaluations == 2
        assert by[n, "backprop"].evaluations == 1
        assert by[n, "forward-mode"].evaluations == n
        assert by[n, "forward-gradient"].evaluations == 1
        assert by[n, "loss"].forward_equivalents == pytest.approx(1.0)
        for r in (by[n, m] for m in scaling.METHODS):
            assert r.seconds > 0 and r.wall_seconds > 0
            assert r.seconds == r.cpu_seconds  # the default clock
    # 85 <= fd_exact_max: timed in full, with the sampled estimate as a check
    exact = by[85, "forward-fd"]
    assert not exact.extrapolated and exact.probes_timed == 86
    assert exact.sample_estimate > 0
    # 310 > fd_exact_max: one block of 16 rows timed, scaled by the rows
    fwd, cen = by[310, "forward-fd"], by[310, "central-fd"]
    assert fwd.extrapolated and cen.extrapolated
    assert fwd.probes_timed == 16 and cen.probes_timed == 16
    # one time per probe row for both schemes (same work per row)
    assert fwd.seconds / 311 == pytest.approx(cen.seconds / 620)
    # forward mode: timed in full at 85, extrapolated from sampled unit vectors at 310
    assert not by[85, "forward-mode"].extrapolated and by[310, "forward-mode"].extrapolated


def test_cost_records_fd_errors_are_those_of_finite_differences(tiny_costs):
    for r in tiny_costs:
        if r.method == "forward-fd":
            assert 1e-10 < r.rel_error < 1e-5  # ~sqrt(eps) at the default step
        elif r.method == "central-fd":
            assert r.rel_error < 1e-8  # ~eps^(2/3)
        elif r.method == "forward-mode":
            assert r.rel_error < 1e-13  # exact: rounding only
        else:
            assert math.isnan(r.rel_error)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sizes": []}, InvalidOptionError),
        ({"sizes": "85"}, TypeError),
        ({"sizes": [85], "batch": 5000}, InvalidOptionError),
        ({"sizes": [85], "repeats": 0}, InvalidOptionError),
        ({"sizes": [85], "fd_block": 1}, InvalidOptionError),
        ({"sizes": [85], "clock": "sundial"}, InvalidOptionError),
        ({"sizes": [85], "min_time": -1.0}, InvalidOptionError),
    ],
)
def test_measure_gradient_costs_rejects_bad_options(kwargs, error):
    with pytest.raises(error):
        measure_gradient_costs(**kwargs)


# -- fits -------------------------------------------------------------------------------
def synthetic_costs(sizes, overhead=0.0, extrapolate_above=math.inf):
    """Records whose times follow the expected power laws exactly (plus an overhead)."""
    out = []
    for n in sizes:
        for method, evals, t in (
            ("loss", 1, 1e-8 * n),
            ("forward-fd", n + 1, 1e-8 * n * (n + 1)),
            ("central-fd", 2 * n, 2e-8 * n * n),
            ("forward-mode", n, 2e-8 * n * n),
            ("forward-gradient", 1, 2e-8 * n),
            ("spsa", 2, 2e-8 * n),
            ("backprop", 1, 3e-8 * n),
        ):
            t += overhead
            ext = (method.endswith("fd") or method == "forward-mode") and n > extrapolate_above
            out.append(
                GradientTiming(
                    n, 1, method, evals, t, ext, evals, 1.0, wall_seconds=t, cpu_seconds=t
                )
            )
    return out


def test_fit_slopes_recovers_the_powers_of_exact_power_laws():
    sizes = [1000, 2000, 4000, 8000, 16000]
    slopes = fit_slopes(synthetic_costs(sizes, extrapolate_above=3000), fit_from=1)
    assert {(s.method, s.quantity) for s in slopes} == set(EXPECTED_SLOPES)
    for s in slopes:
        # n + 1 instead of n bends the FD evaluation count by ~1e-4
        assert s.slope == pytest.approx(s.expected, abs=2e-3), (s.method, s.quantity)
        assert s.ok(0.01)
        assert (s.n_min, s.n_max, s.n_points) == (1000, 16000, 5)
    by = {(s.method, s.quantity): s for s in slopes}
    assert by["forward-fd", "seconds"].n_extrapolated == 3
    assert by["forward-mode", "seconds"].n_extrapolated == 3
    assert by["backprop", "seconds"].n_extrapolated == 0
    assert by["backprop", "seconds"].slope_cpu == pytest.approx(1.0)
    assert math.isnan(by["backprop", "evaluations"].slope_cpu)


def test_fit_slopes_fits_only_above_fit_from():
    # a constant overhead flattens the small sizes; the upper range is fitted
    sizes = [10, 100, 1000, 10_000, 100_000, 1_000_000]
    records = synthetic_costs(sizes, overhead=1e-5)
    by = {(s.method, s.quantity): s for s in fit_slopes(records, fit_from=100_000)}
    bp = by["backprop", "seconds"]
    assert (bp.n_min, bp.n_points) == (100_000, 2)
    # slope between the two points, computed by hand
    t = [3e-8 * n + 1e-5 for n in (100_000, 1_000_000)]
    assert bp.slope == pytest.approx(math.log(t[1] / t[0]) / math.log(10))
    assert bp.slope_all < bp.slope - 0.2  # the overhead-dominated sizes pull it down
    # fewer than two sizes above fit_from: the two largest are used
    assert fit_slopes(records, fit_from=10**9)[0].n_points == 2


# -- FD step error ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def step_errors():
    steps = np.logspace(-12, 0, 25)
    return scaling.fd_step_error_curve(n_params=85, steps=steps, batch=32, seed=1)


def best(records, dtype, scheme):
    rs = [r for r in records if r.dtype == dtype and r.scheme == scheme]
    return min(rs, key=lambda r: r.rel_error), rs


def test_fd_step_error_is_a_v_with_its_bottom_near_the_rules_of_thumb(step_errors):
    for dtype in ("float64", "float32"):
        eps = float(np.finfo(dtype).eps)
        for scheme, rule, err_scale in (
            ("forward", math.sqrt(eps), math.sqrt(eps)),
            ("central", eps ** (1 / 3), eps ** (2 / 3)),
        ):
            low, rs = best(step_errors, dtype, scheme)
            assert rule / 100 < low.h < rule * 100, (dtype, scheme, low.h)
            assert err_scale / 100 < low.rel_error < err_scale * 100, (dtype, scheme)
            # both arms rise: too small a step is worse, not better
            assert rs[0].rel_error > 100 * low.rel_error
            assert rs[-1].rel_error > 100 * low.rel_error
    assert best(step_errors, "float32", "forward")[0].rel_error > 1e3 * (
        best(step_errors, "float64", "forward")[0].rel_error
    )


def test_fd_step_error_records_are_the_error_of_finite_difference(step_errors):
    # recompute one float64 point independently
    X, y = digits_batch(32, seed=1)
    net = network_for(85)
    obj = NetworkObjective(net, X, y)
    x = net.init_params(np.random.default_rng(1)).astype(np.float32).astype(np.float64)
    g = net.loss_and_grad(x, X, y)[1]
    rec = next(r for r in step_errors if r.dtype == "float64" and r.scheme == "central")
    g_fd = finite_difference(obj, x, scheme="central", h=rec.h).grad
    assert rec.rel_error == pytest.approx(np.linalg.norm(g_fd - g) / np.linalg.norm(g))
    # float32 steps below the float32 resolution of some coordinate are skipped
    assert min(r.h for r in step_errors if r.dtype == "float32") > 1e-9


def test_fd_step_error_rejects_bad_options():
    with pytest.raises(InvalidOptionError, match="dtypes"):
        scaling.fd_step_error_curve(dtypes=("float16",))
    with pytest.raises(InvalidOptionError, match="schemes"):
        scaling.fd_step_error_curve(schemes=("backward",))
    with pytest.raises(InvalidOptionError, match="steps"):
        scaling.fd_step_error_curve(steps=[1e-3, -1.0])


# -- estimate cosines ---------------------------------------------------------------------
def test_estimate_cosine_follows_sqrt_q_over_q_plus_n():
    records = scaling.estimate_cosine([85], qs=[1, 16, 64, 256], repeats=6, batch=16, seed=4)
    n = records[0].n_params
    for method, shift in (("spsa", -1), ("forward-gradient", 1)):
        by = {r.q: r for r in records if r.method == method}
        for q, r in by.items():
            assert r.theory == pytest.approx(math.sqrt(q / (q + n + shift)))
            assert r.repeats == 6
        for q in (16, 64, 256):  # the approximation is for q large enough
            assert by[q].cosine_mean == pytest.approx(by[q].theory, rel=0.25)
        means = [by[q].cosine_mean for q in sorted(by)]
        assert means == sorted(means)  # more directions, better aligned
        assert by[1].cosine_mean < 0.3  # one direction in 85 dimensions: a poor guess


def test_one_direction_cosine_has_rms_one_over_sqrt_n():
    # E[cos^2] = 1/n exactly for one uniformly random direction; 200 draws: within 25%
    records = scaling.estimate_cosine([310], qs=[1], repeats=200, batch=16, seed=1)
    for r in records:
        assert r.cosine_rms == pytest.approx(1 / math.sqrt(310), rel=0.25), r.method


# -- run and the command line -----------------------------------------------------------
def test_add_arguments_options_and_argparse_errors():
    args = parse("--quick", "--out", "x", "--max-params", "500", "--quiet")
    assert (args.quick, args.out, args.max_params, args.quiet) == (True, "x", 500, True)
    assert args.clock == "cpu" and args.tolerance == 0.25 and not args.check
    for bad in (["--max-params", "0"], ["--repeats", "two"], ["--clock", "sundial"]):
        with pytest.raises(SystemExit):
            parse(*bad)


@pytest.mark.parametrize(
    ("argv", "match"), [(["--max-params", "50"], "max-params"), (["--sizes", "1"], "sizes")]
)
def test_run_rejects_options_it_cannot_use(tmp_path, argv, match):
    with pytest.raises(InvalidOptionError, match=match):
        scaling.run(parse("--quick", "--quiet", "--out", str(tmp_path), *argv))


def test_run_quick_prints_tables_and_writes_csv_and_figures(tmp_path, capsys):
    out = tmp_path / "res"
    argv = ["--quick", "--quiet", "--out", str(out), "--max-params", "400", "--sizes", "3"]
    # with a tolerance nothing meets, --check turns the verdict into the exit status
    assert scaling.run(parse(*argv, "--check", "--tolerance", "1e-12")) == 1
    text = capsys.readouterr().out
    for heading in (
        "Cost of one gradient",
        "FD gradient error against the step",
        "Stochastic estimates: cosine",
        "One direction (q = 1) against n",
    ):
        assert heading in text
    assert "NO" in text
    with (out / "gradient_costs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    sizes = sorted({int(r["n_params"]) for r in rows})
    assert len(sizes) == 3 and len(rows) == 3 * len(scaling.METHODS)
    for r in rows:  # the printed table shows the same evaluations
        assert f"{int(r['n_params']):>7}" in text
    for name in ("gradient_costs", "fd_step_error", "estimate_cosine", "estimate_cosine_vs_n"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (out / "slopes.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(EXPECTED_SLOPES)


def test_run_exit_status_follows_the_slopes(tmp_path, monkeypatch, capsys):
    # exact power laws in place of measurements: every slope is as expected
    monkeypatch.setattr(
        scaling.command, "measure_gradient_costs", lambda sizes, **kw: synthetic_costs(sizes)
    )
    monkeypatch.setattr(
        scaling.command,
        "fd_step_error_curve",
        lambda **kw: [
            StepErrorRecord(d, s, h, h + 1e-16 / h, 85)
            for d in ("float64", "float32")
            for s in ("forward", "central")
            for h in (1e-8, 1e-4, 1.0)
        ],
    )
    monkeypatch.setattr(
        scaling.command,
        "estimate_cosine",
        lambda sizes, qs, **kw: [CosineRecord(85, q, 0.5, 0.1, 0.5, 2) for q in qs],
    )
    argv = ["--quick", "--quiet", "--out", str(tmp_path), "--check", "--no-plots"]
    assert scaling.run(parse(*argv, "--fit-from", "1000")) == 0
    assert "outside" not in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "estimate_cosine.csv",
        "estimate_cosine_vs_n.csv",
        "fd_step_error.csv",
        "gradient_costs.csv",
        "slopes.csv",
    ]


def test_write_csv_round_trips_numbers_and_nan(tmp_path):
    rec = GradientTiming(85, 1, "loss", 1, 1 / 3, False, 1, 1.0)
    path = write_csv(tmp_path / "r.csv", [rec])
    with path.open() as fh:
        (row,) = csv.DictReader(fh)
    assert float(row["seconds"]) == 1 / 3
    assert row["rel_error"] == ""  # nan
    assert row["extrapolated"] == "False"
