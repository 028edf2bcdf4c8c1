"""Results as data and pictures: Result.save / dfo.load_result (JSON) and Result.plot."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest

import dfo
from dfo import problems
from dfo.optimizers import get_method
from dfo.result import Status
from dfo.result_io import FORMAT, VERSION, result_from_document, result_to_document

METHODS = dfo.methods()


def _objective(method, dim=3):
    base = problems.get("rosenbrock", dim)
    if get_method(method).needs_gradient or get_method(method).needs_jvp:
        return dfo.as_objective(base, dim=dim, grad=lambda x: base.value_and_grad(x)[1])
    return dfo.as_objective(base, dim=dim)


def assert_same(a, b, where="result"):
    """Equal values of equal types, recursively (arrays: dtype, shape and bits)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same(u, v, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("method", METHODS)
def test_save_and_load_round_trip_every_field(method, tmp_path):
    res = dfo.minimize(
        _objective(method), np.zeros(3), method=method, budget=120, seed=0, history_x=True
    )
    path = res.save(tmp_path / "run.json")
    assert path == tmp_path / "run.json"
    back = dfo.load_result(path)
    assert type(back) is dfo.Result
    assert_same(dict(back), dict(res))
    assert isinstance(back.status, Status) and back.history["x"].shape == (res.nit, 3)
    # plain JSON: arrays as lists, a format and a version, nothing pickled
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == FORMAT and doc["version"] == VERSION == 1
    assert doc["result"]["x"]["__ndarray__"] == res.x.tolist()
    assert doc["result"]["history"]["nfev"]["__ndarray__"] == res.history["nfev"].tolist()
    assert doc["result"]["status"] == {"__status__": res.status.name}
    # saving the loaded result again writes the same file
    back.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()


def test_non_finite_values_tuples_and_other_options_survive(tmp_path):
    from scipy.optimize import Bounds

    res = dfo.Result(
        x=np.array([np.nan, np.inf, -1.5]),
        fun=float("inf"),
        nit=np.int64(2),
        status=Status.NONFINITE,
        history={"value": np.array([np.nan, 1.0]), "nit": np.array([1, 2], dtype=np.int64)},
        options={"pair": (1, 2.5), "bounds": Bounds([0, 0], [1, 2]), "rule": object()},
        empty=np.zeros((0, 4)),
    )
    back = dfo.load_result(res.save(tmp_path / "r.json"))
    np.testing.assert_array_equal(back.x, res.x)
    assert back.fun == np.inf and back.nit == 2 and type(back.nit) is int
    assert back.status is Status.NONFINITE
    assert back.options["pair"] == (1, 2.5)
    np.testing.assert_array_equal(back.options["bounds"].ub, [1, 2])
    assert back.options["rule"].startswith("<object object")  # kept as text, not pickled
    assert back.empty.shape == (0, 4)
    assert_same(result_from_document(result_to_document(res)).history, res.history)


def test_save_never_overwrites_a_file_dfo_did_not_write(tmp_path):
    res = dfo.minimize(lambda x: float(x @ x), np.ones(2), budget=50, seed=0)
    for content in ("my notes\n", '{"format": "something else"}', "[1, 2]"):
        other = tmp_path / "notes.json"
        other.write_text(content)
        with pytest.raises(FileExistsError, match="is not a dfo result file"):
            res.save(other)
        assert other.read_text() == content
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(FileExistsError):
        res.save(folder)
    # an earlier result file is replaced, atomically: no temporary file is left
    path = res.save(tmp_path / "r.json")
    res2 = dfo.minimize(lambda x: float(x @ x), np.ones(2), budget=80, seed=1)
    res2.save(path)
    assert dfo.load_result(path).nfev == res2.nfev
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.json", "r.json"]


def test_load_refuses_what_is_not_a_dfo_result(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(ValueError, match="not a dfo result file"):
        dfo.load_result(bad)
    bad.write_text('{"x": [1, 2]}')
    with pytest.raises(ValueError, match="not a dfo result"):
        dfo.load_result(bad)
    bad.write_text(json.dumps({"format": FORMAT, "version": VERSION + 1, "result": {}}))
    with pytest.raises(ValueError, match="format version 2; this dfo reads versions 1 to 1"):
        dfo.load_result(bad)
    with pytest.raises(FileNotFoundError):
        dfo.load_result(tmp_path / "missing.json")


def test_plot_draws_best_and_current_value_against_evaluations():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = dfo.minimize(problems.get("rosenbrock", 3), np.zeros(3), method="spsa", budget=400,
                       seed=0)  # fmt: skip
    fig = res.plot()
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        (ax,) = fig.axes
        assert ax.get_xlabel() == "objective evaluations (nfev)"
        assert ax.get_ylabel() == "objective value"
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"value per iteration", "best so far"}
        np.testing.assert_array_equal(lines["best so far"].get_xdata(), res.history["nfev"])
        np.testing.assert_array_equal(lines["best so far"].get_ydata(), res.history["best"])
        np.testing.assert_array_equal(lines["value per iteration"].get_ydata(),
                                      res.history["value"])  # fmt: skip
        assert ax.get_yscale() == "log"  # Rosenbrock values are positive
        # into given axes
        fig2, axes = plt.subplots(1, 2)
        assert res.plot(ax=axes[1]) is fig2 and axes[1].get_lines()
    finally:
        plt.close("all")
