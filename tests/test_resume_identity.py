"""A run's identity in a checkpoint (canonical JSON), resumes in a fresh process, and
the budget of a resumed run; SPSA's draw-ahead fast path against the plain draws."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dfo
from dfo import problems
from dfo.exceptions import InvalidOptionError
from dfo.optimizers import gradient
from dfo.optimizers.step_rules import describe, momentum
from dfo.options import canonical, to_json
from dfo.result import Status

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import dfo
    from dfo import problems
    from dfo.optimizers.step_rules import momentum

    path, out, max_iter = sys.argv[1], sys.argv[2], sys.argv[3]
    res = dfo.minimize(
        problems.get("rosenbrock", 4), np.full(4, 0.3), method="spsa", budget=300, seed=5,
        step_rule=momentum(beta=0.5), c=0.01, checkpoint=path, resume=True,
        max_iter=None if max_iter == "none" else int(max_iter),
    )
    json.dump({"x": [v.hex() for v in res.x], "fun": res.fun.hex(),
               "nfev": res.nfev, "nit": res.nit, "message": res.message,
               "status": int(res.status), "best": [v.hex() for v in res.history["best"]]},
              open(out, "w"))
    """
)


def _in_fresh_process(path, out, max_iter):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), str(out), str(max_iter)],
        check=True,
        env=env,
        timeout=120,
    )
    return json.loads(out.read_text())


def test_resume_in_a_fresh_process_with_a_step_rule_object_is_bit_identical(tmp_path):
    ref = dfo.minimize(
        problems.get("rosenbrock", 4),
        np.full(4, 0.3),
        method="spsa",
        budget=300,
        seed=5,
        step_rule=momentum(beta=0.5),
        c=0.01,
    )
    path = tmp_path / "run.ckpt"
    first = _in_fresh_process(path, tmp_path / "first.json", 20)
    assert first["nit"] == 20 and first["status"] == int(Status.MAX_ITER)
    res = _in_fresh_process(path, tmp_path / "second.json", "none")  # another process
    assert res["x"] == [v.hex() for v in ref.x] and res["fun"] == ref.fun.hex()
    assert (res["nfev"], res["nit"], res["message"]) == (ref.nfev, ref.nit, ref.message)
    assert res["best"] == [v.hex() for v in ref.history["best"]]


def test_the_identity_is_canonical_json_without_addresses():
    opt = dfo.make_optimizer("spsa", np.zeros(2), step_rule=momentum(beta=0.5))
    ident = opt.config.identity()
    assert ident["step_rule"] == {"name": "momentum", "beta": 0.5, "nesterov": False}
    text = canonical(ident)
    assert " at 0x" not in text and json.loads(text) == ident
    # the same rule built again (in this process or another) has the same identity
    assert (
        canonical(
            dfo.make_optimizer("spsa", np.zeros(2), step_rule=momentum(beta=0.5)).config.identity()
        )
        == text
    )
    assert describe("momentum") == {"name": "momentum", "beta": 0.9, "nesterov": False}
    assert to_json({"inf": np.inf, "t": (1, 2)}) == {"inf": "inf", "t": [1, 2]}


def _ckpt_run(path, **kwargs):
    args = {"method": "spsa", "seed": 2, "c": 0.01, "checkpoint": path, **kwargs}
    return dfo.minimize(problems.get("sphere", 3), np.full(3, 0.5), **args)


def test_resume_refuses_another_x0_and_names_it(tmp_path):
    path = tmp_path / "run.ckpt"
    _ckpt_run(path, budget=60)
    with pytest.raises(InvalidOptionError, match=r"x0: checkpoint has '[0-9a-f]{16}'"):
        dfo.minimize(
            problems.get("sphere", 3),
            np.full(3, 0.6),
            method="spsa",
            budget=100,
            seed=2,
            c=0.01,
            checkpoint=path,
            resume=True,
        )
    with pytest.raises(InvalidOptionError, match=r'options: checkpoint has \{"c": 0.01\}'):
        _ckpt_run(path, budget=100, resume=True, **{"c": 0.02})


def test_a_larger_budget_recomputes_spsa_gains_and_counts_right(tmp_path):
    path = tmp_path / "run.ckpt"
    short = _ckpt_run(path, budget=100)
    assert short.status == Status.BUDGET and short.options["A"] == 0.1 * (100 // 2)
    res = _ckpt_run(path, budget=400, resume=True)
    assert res.options["A"] == 0.1 * (400 // 2)
    assert res.nfev <= 400 and res.nfev > short.nfev
    assert res.message.startswith(f"budget exhausted: {res.nfev} of 400 evaluations spent")
    # the first gain a_0 = a / (A + 1)^alpha stays what the calibration chose
    a0_short = short.options["a"] / (short.options["A"] + 1) ** 0.602
    a0 = res.options["a"] / (res.options["A"] + 1) ** 0.602
    assert a0 == pytest.approx(a0_short, rel=1e-12)


def test_a_budget_below_what_was_spent_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    _ckpt_run(path, budget=100)  # the checkpoint: 98 evaluations, before the final ones
    with pytest.raises(InvalidOptionError, match=r"budget=10 is less than the 98 evaluations"):
        _ckpt_run(path, budget=10, resume=True)


@pytest.mark.parametrize("regenerate", [False, True])
def test_spsa_directions_are_fair_random_bits(regenerate):
    """Rademacher directions from random bits: +-1 only, balanced, one bit per coordinate."""
    n = 100_000
    opt = dfo.make_optimizer("spsa", np.zeros(n), seed=9, c=0.5, a=1.0, regenerate=regenerate)
    X = opt.ask()
    d = (X[0] - X[1]) / (2 * opt._ck)
    np.testing.assert_array_equal(np.abs(d), 1.0)
    assert abs(d.mean()) < 5 / np.sqrt(n)  # five standard deviations of a fair coin
    assert abs(np.mean(d[1:] * d[:-1])) < 5 / np.sqrt(n)  # neighbouring bits independent
    again = dfo.make_optimizer("spsa", np.zeros(n), seed=9, c=0.5, a=1.0, regenerate=regenerate)
    np.testing.assert_array_equal(again.ask(), X)


@pytest.mark.parametrize("step_rule", ["sgd", "adam"])
def test_spsa_pair_fast_path_gives_the_bits_of_the_general_path(step_rule, monkeypatch):
    """The scalar fast path of one direction against the general (vector) path, on an
    objective with plateaus (zero differences) and non-finite values."""

    def f(X):  # piecewise constant (cells of 1/4), nan above 0.9 in the second coordinate
        v = np.sum(np.floor(4 * X) ** 2, axis=1)
        v[X[:, 1] > 0.9] = np.nan
        return v

    def trajectory():
        opt = dfo.make_optimizer(
            "spsa",
            np.array([0.6, 0.87, 0.3, 0.1]),
            seed=3,
            c=0.05,
            step_rule=step_rule,
            budget=400,
            patience=1000,
        )
        xs, gs = [], []
        while not opt.stop():
            X = opt.ask()
            opt.tell(X, f(X))
            xs.append(opt.recommend())
            gs.append(np.full(4, np.nan) if opt.gradient is None else opt.gradient.copy())
        return np.array(xs), np.array(gs), opt

    fast, g_fast, opt_fast = trajectory()
    assert np.any(g_fast == 0.0) and np.any(np.isnan(g_fast))  # plateaus, non-finite values
    monkeypatch.setattr(gradient.SPSA, "_tell_pair", lambda self, values: None)
    plain, g_plain, opt_plain = trajectory()
    np.testing.assert_array_equal(fast, plain)
    np.testing.assert_array_equal(g_fast, g_plain)
    assert np.array_equal(np.signbit(g_fast), np.signbit(g_plain))  # negative zeros too
    assert opt_fast.a == opt_plain.a and opt_fast.nfev == opt_plain.nfev


@pytest.mark.parametrize("q", [1, 3])
def test_spsa_points_are_the_bits_of_x_plus_and_minus_ck_d(q):
    """The asked points, written in place, against ``x + c_k d`` and ``x - c_k d`` computed
    independently from the same random bits (and the box's clip, with bounds)."""
    n = 1001
    x0 = np.linspace(-1.0, 1.0, n)
    for bounds in (None, (np.full(n, -0.9), np.full(n, 0.95))):
        opt = dfo.make_optimizer("spsa", x0, seed=4, a=0.1, c=0.3, n_directions=q, bounds=bounds)
        rng = np.random.default_rng(4)
        f = problems.get("sphere", n)
        for k in range(3):
            x = opt.recommend()
            X = opt.ask()
            bits = rng.integers(0, 256, size=(q, (n + 7) // 8), dtype=np.uint8)
            d = 1.0 - 2.0 * np.unpackbits(bits, axis=1, count=n).astype(np.float64)
            ck = 0.3 / (k + 1) ** 0.101
            centre = x if bounds is None else opt.box.inset(x, ck)
            expected = np.concatenate([centre + ck * d, centre - ck * d])
            if bounds is not None:
                expected = np.clip(expected, *bounds)
            np.testing.assert_array_equal(X, expected)
            opt.tell(X, f.evaluate_batch(X))
