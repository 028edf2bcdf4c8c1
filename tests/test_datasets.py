"""Bundled digits, synthetic generators and the seeded stratified split."""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import numpy as np
import pytest

from dfo import datasets
from dfo.datasets import load, load_digits, sine, train_test_split, two_spirals, xor
from dfo.exceptions import InvalidOptionError, ShapeError

# -- digits -----------------------------------------------------------------------


def test_digits_shape_range_and_classes():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    counts = np.bincount(y)
    assert counts.size == 10 and counts.sum() == 1797
    assert np.all((counts >= 170) & (counts <= 190))


def test_digits_unscaled_are_pixel_counts():
    raw, _ = load_digits(scale=False)
    scaled, _ = load_digits()
    assert np.array_equal(raw, np.round(raw)) and raw.min() == 0 and raw.max() == 16
    np.testing.assert_array_equal(scaled, raw / 16.0)
    # images look like digits: the border columns are mostly empty, the centre is not
    images = raw.reshape(-1, 8, 8)
    assert images[:, :, 0].mean() < 1.0 < images[:, :, 3:5].mean()


def test_digits_match_recorded_checksum():
    folder = resources.files("dfo.datasets")
    source = folder.joinpath("DIGITS_SOURCE.txt").read_text()
    recorded = re.search(r"\b[0-9a-f]{64}\b", source).group(0)
    with folder.joinpath("digits.npz").open("rb") as fh, np.load(fh) as data:
        images, labels = data["images"], data["labels"]
        assert images.dtype == np.uint8 and labels.dtype == np.uint8
    assert hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest() == recorded
    assert len(folder.joinpath("digits.npz").read_bytes()) < 100_000


def test_digits_returns_fresh_arrays():
    X, y = load_digits()
    X[:] = -1.0
    y[:] = -1
    X2, y2 = load_digits()
    assert X2.min() == 0.0 and y2.min() == 0


# -- synthetic ----------------------------------------------------------------------


@pytest.mark.parametrize("make", [two_spirals, xor])
def test_classification_generators(make):
    X, y = make(n=101, seed=3)
    assert X.shape == (101, 2) and X.dtype == np.float64
    assert y.shape == (101,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1}
    X2, y2 = make(n=101, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = make(n=101, seed=4)
    assert not np.array_equal(X, X3)
    X4, _ = make(n=101, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(X, X4)  # an int seed and a generator from it agree


def test_spirals_geometry():
    X, y = two_spirals(n=300, noise=0.0, turns=1.5, seed=0)
    assert np.bincount(y).tolist() == [150, 150]
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.min() >= np.sqrt(0.02) - 1e-12 and r.max() <= 1.0 + 1e-12
    # the angle is 2 pi turns r, plus pi for class 1 (modulo 2 pi)
    expected = 2 * np.pi * 1.5 * r + np.pi * y
    diff = np.angle(np.exp(1j * (np.arctan2(X[:, 1], X[:, 0]) - expected)))
    np.testing.assert_allclose(diff, 0.0, atol=1e-9)


def test_xor_labels():
    X, y = xor(n=500, noise=0.0, seed=1)
    np.testing.assert_array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(int))
    assert np.all(np.abs(X) <= 1.0)
    Xn, yn = xor(n=500, noise=0.2, seed=1)
    np.testing.assert_array_equal(yn, y)  # noise moves points, not labels
    assert np.std(Xn - X) == pytest.approx(0.2, rel=0.1)


def test_sine():
    X, y = sine(n=50, noise=0.0, seed=2)
    assert X.shape == y.shape == (50, 1)
    np.testing.assert_array_equal(y, np.sin(X))
    assert np.all(np.abs(X) <= np.pi)
    _, yn = sine(n=2000, noise=0.3, seed=2)
    Xn, _ = sine(n=2000, noise=0.3, seed=2)
    assert np.std(yn - np.sin(Xn)) == pytest.approx(0.3, rel=0.1)


def test_generator_bad_options():
    with pytest.raises(InvalidOptionError, match="n must"):
        two_spirals(n=1)
    with pytest.raises(InvalidOptionError, match="noise"):
        xor(noise=-0.1)
    with pytest.raises(InvalidOptionError, match="turns"):
        two_spirals(turns=0)
    with pytest.raises(TypeError, match="seed"):
        sine(seed="abc")


# -- splitting ----------------------------------------------------------------------


def test_split_is_disjoint_and_complete():
    n = 103
    X = np.arange(n, dtype=float)[:, None]
    y = np.arange(n) % 4
    s = train_test_split(X, y, test_size=0.3, seed=5)
    train, test = s.X_train[:, 0].astype(int), s.X_test[:, 0].astype(int)
    assert test.size == int(np.ceil(0.3 * n)) and train.size == n - test.size
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    np.testing.assert_array_equal(s.y_train, y[train])  # rows stay paired
    np.testing.assert_array_equal(s.y_test, y[test])


def test_split_is_stratified():
    y = np.repeat([0, 1, 2], [500, 300, 200])
    rng = np.random.default_rng(0)
    y = rng.permutation(y)
    X = rng.normal(size=(1000, 3))
    s = train_test_split(X, y, test_size=0.2, seed=1)
    np.testing.assert_array_equal(np.bincount(s.y_test), [100, 60, 40])
    # uneven class sizes: each test share within one sample of proportional
    y2 = np.repeat([0, 1, 2], [7, 11, 13])
    s2 = train_test_split(np.zeros((31, 1)), y2, test_size=0.25, seed=2)
    share = np.bincount(s2.y_test, minlength=3)
    assert share.sum() == 8
    assert np.all(np.abs(share - np.array([7, 11, 13]) * 8 / 31) < 1.0)


def test_split_reproducible_and_seed_dependent():
    X, y = xor(n=200, seed=0)
    a = train_test_split(X, y, seed=9)
    b = train_test_split(X, y, seed=9)
    c = train_test_split(X, y, seed=10)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.X_test, c.X_test)


def test_split_regression_and_errors():
    X, y = sine(n=40, seed=0)
    s = train_test_split(X, y, test_size=10)
    assert s.X_test.shape == (10, 1) and s.y_train.shape == (30, 1)
    with pytest.raises(InvalidOptionError, match="stratify"):
        train_test_split(X, y, stratify=True)
    with pytest.raises(ShapeError, match="same number of rows"):
        train_test_split(X, y[:-1])
    for bad in (0.0, 1.0, 0, 40, -3, "half"):
        with pytest.raises(InvalidOptionError, match="test"):
            train_test_split(X, y, test_size=bad)


# -- by name ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "spirals", "xor", "sine"])
def test_load(name):
    d = load(name, seed=0)
    assert d.name == name
    n = d.X_train.shape[0] + d.X_test.shape[0]
    assert d.X_test.shape[0] == int(np.ceil(0.25 * n))
    assert d.X_train.shape[1] == d.n_features
    if d.task == "classification":
        assert d.y_train.dtype == np.int64 and d.y_train.ndim == 1
        assert d.n_outputs == d.n_classes == np.unique(d.y_train).size
    else:
        assert d.n_classes is None and d.n_outputs == d.y_train.shape[1] == 1
    again = load(name, seed=0)
    np.testing.assert_array_equal(d.X_train, again.X_train)


def test_load_unknown_name():
    assert datasets.names() == ["digits", "sine", "spirals", "xor"]
    with pytest.raises(InvalidOptionError, match="Did you mean 'spirals'"):
        load("spiral")
