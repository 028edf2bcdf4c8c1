"""Points handed out by ask without a copy: methods that rebuild them (spsa, es, fd-sgd
and random-search at large n) keep one population matrix, and the contract still holds."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import test_contract as contract
from conftest import told

import dfo
from dfo.optimizers import random_search

REBUILDING = ["spsa", "es", "random-search", "fd-sgd"]


@pytest.fixture
def rebuild_always(monkeypatch):
    """random-search rebuilds its rows at every dimension (the tests' small ones too)."""
    monkeypatch.setattr(random_search, "REBUILD_MIN_DIM", 1)


@pytest.mark.parametrize("method", contract.ASK_TELL)
def test_best_x_is_the_asked_row_bit_for_bit(method):
    """The best point is the row that was asked, also when the caller changed its array."""
    x0 = np.linspace(0.1, 0.9, 3)
    for change in (False, True):
        opt = dfo.make_optimizer(method, x0, seed=0, budget=1000)
        for _ in range(3):
            X = opt.ask()
            asked = X.copy()
            k = X.shape[0]
            values = np.arange(k, 0, -1.0) - opt.nit * k  # the last row is the best
            if change:
                X[:] = 7.0
            opt.tell(X, values, told(opt, np.ones((k, 3))))
            np.testing.assert_array_equal(opt.best_x, asked[-1])


@pytest.mark.usefixtures("rebuild_always")
@pytest.mark.parametrize("method", REBUILDING)
def test_the_contract_holds_for_rebuilt_points(method):
    contract.test_ask_returns_copies_and_x0_is_untouched(method)
    contract.test_misuse_raises_ask_tell_error_and_changes_nothing(method)
    contract.test_result_mid_run_says_in_progress(method)
    for budget in contract.BUDGETS:
        contract.test_documented_loop_ends_by_itself_within_the_budget(method, budget)
    test_best_x_is_the_asked_row_bit_for_bit(method)


@pytest.mark.usefixtures("rebuild_always")
@pytest.mark.parametrize("method", REBUILDING)
def test_asking_again_and_pickling_rebuild_the_same_points(method):
    import pickle

    opt = dfo.make_optimizer(method, np.full(4, 0.3), seed=1, budget=1000)
    X = opt.ask()
    asked = X.copy()
    assert opt.ask() is X  # unchanged: the same array again
    X[0, 0] = -1.0
    again = opt.ask()
    assert again is not X
    np.testing.assert_array_equal(again, asked)  # rebuilt
    copy = pickle.loads(pickle.dumps(opt))
    np.testing.assert_array_equal(copy.ask(), asked)
    copy.tell(asked, np.zeros(len(asked)))  # an equal array that was not handed out
    with pytest.raises(dfo.AskTellError, match="other points"):
        opt.tell(X.copy(), np.zeros(len(X)))  # changed, and not handed out
    opt.tell(X, np.zeros(len(X)))  # handed out (changed since: the optimizer's points count)
    assert not np.any(opt.best_x == -1.0)


BOXES = {
    "none": None,
    "finite": [(-1.0, 2.0)] * 6,
    "wide": [(-1e308, 1.7e308)] * 6,
    "half": [(None, 0.4)] * 6,
}


@pytest.mark.parametrize("box", BOXES)
def test_random_search_draws_the_same_bits_a_row_at_a_time(box, monkeypatch):
    """The rows drawn one at a time (and rebuilt) are the bits of the matrix drawn at once."""

    def run(min_dim):
        monkeypatch.setattr(random_search, "REBUILD_MIN_DIM", min_dim)
        opt = dfo.make_optimizer("random-search", np.full(6, 0.3), seed=2, bounds=BOXES[box])
        f = dfo.problems.get("sphere", 6)
        asked, best = [], []
        for _ in range(5):
            X = opt.ask()
            asked.append(X.copy())
            opt.tell(X, f.evaluate_batch(X))
            best.append(opt.best_x)
        return np.array(asked), np.array(best)

    at_once, rows = run(10**9), run(1)
    np.testing.assert_array_equal(at_once[0], rows[0])
    np.testing.assert_array_equal(at_once[1], rows[1])


@pytest.mark.parametrize("method", REBUILDING)
def test_one_population_matrix(method, monkeypatch):
    """ask allocates the points once (no defensive copy), tell a few rows at most."""
    monkeypatch.setattr(random_search, "REBUILD_MIN_DIM", 4096)
    n = 5000
    options = {
        "spsa": {"a": 0.1, "c": 0.1, "n_directions": 10},
        "fd-sgd": {"max_probes": 200},
    }.get(method, {"popsize": 20})
    opt = dfo.make_optimizer(method, np.full(n, 0.3), seed=0, budget=10**6, **options)
    f = dfo.problems.get("sphere", n)
    for _ in range(2):
        tracemalloc.start()
        X = opt.ask()
        ask_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        values = f.evaluate_batch(X)
        tracemalloc.start()
        opt.tell(X, values)
        tell_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        matrix = X.nbytes
        directions = 0.5 if method in ("spsa", "es") else 0.0  # kept until tell: (k/2, n)
        assert ask_peak < (1.1 + directions) * matrix, (ask_peak, matrix)
        assert tell_peak < (0.1 + directions) * matrix, (tell_peak, matrix)  # es: again


@pytest.mark.parametrize(
    "values",
    [
        [3.0, 1.0, 1.0, 2.0],
        [np.nan, 2.0, -1.0],
        [np.inf, -np.inf, 0.0],
        [np.nan, np.nan],
        [],
        [-0.0, 0.0],
    ],
)
def test_best_row_is_the_row_book_keeps(values):
    """ledger.best_row names the row that book makes the best point (first lowest finite)."""
    from dfo.run.ledger import Ledger

    values = np.array(values, dtype=float)
    for best_f in (np.inf, 0.5):
        ledger = Ledger(np.zeros(2))
        ledger.best_f = best_f
        X = np.arange(2.0 * len(values)).reshape(-1, 2)
        i = ledger.best_row(values)
        ledger.book(X, values)
        if i < 0:
            assert ledger.best_f == best_f
        else:
            assert ledger.best_f == values[i] and np.array_equal(ledger.best_x, X[i])
            finite = np.isfinite(values)
            assert i == np.flatnonzero(finite & (values == values[finite].min()))[0]
