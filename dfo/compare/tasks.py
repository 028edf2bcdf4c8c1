"""Tasks for ``dfo compare``: what is trained, how it is judged, and tuned defaults.

A :class:`Task` bundles the objective every method minimizes, the starting point
for each seed, the monitoring functions (full-training-set loss and a held-out
metric, never charged to a method), and per-task defaults: the evaluation budget,
the methods, and each method's options tuned for this task (the library's own
defaults are tuned for classic test functions).

=================  ====================================================================
task               what
=================  ====================================================================
``digits``         8x8 digits, 64-16-10 tanh MLP (1,210 parameters), cross-entropy
``digits-step``    the same network with step (Heaviside) hidden units: backprop's
                   hidden-layer gradient is zero, so only derivative-free methods can
                   train the hidden layer
``digits-01``      the digits network trained on its error rate (the 0-1 loss):
                   piecewise constant, so every derivative is zero where it exists
``spirals``        two spirals, 2-16-16-2 tanh MLP, cross-entropy
``xor``            noisy XOR, 2-8-2 tanh MLP, cross-entropy
``sine``           ``sin(x)`` regression, 1-16-1 tanh MLP, mean squared error
``sphere`` ...     the classic test functions of :mod:`dfo.problems` (``dim`` variables)
=================  ====================================================================

Examples
--------
>>> task = get_task("xor")
>>> task.dim, task.test_label
(42, 'test accuracy')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Integral
from typing import Any

import numpy as np

from dfo import problems
from dfo.datasets import load
from dfo.exceptions import InvalidOptionError, suggest
from dfo.nn.error_rate import ErrorRateObjective
from dfo.nn.network import MLP
from dfo.nn.network_objective import NetworkObjective
from dfo.objective import Objective

__all__ = ["TASKS", "Task", "get_task", "task_names"]

#: the methods a compare runs by default, in table order
DEFAULT_METHODS = (
    "backprop-sgd",
    "forward-gradient",
    "fd-sgd",
    "fd-bfgs",
    "spsa",
    "cma-es",
    "nelder-mead",
    "random-search",
)

#: above this many variables Nelder-Mead's budget is capped at 2(n+1) evaluations
NM_CAP_ABOVE = 100

#: entropy mixed into the seed for starting points (independent of the run's streams)
_START_KEY = 20_240_611


@dataclass(frozen=True)
class Task:
    """One comparison task; build it with :func:`get_task`.

    Attributes
    ----------
    name : str
    description : str
        One line for the table's header.
    objective : Objective
        What every method minimizes (stochastic for minibatch tasks).
    start : callable
        ``start(seed) -> x0``: the starting point of every method for that seed.
    train_loss : callable
        ``train_loss(x) -> float``: the full-training-set loss, for monitoring.
    loss_label : str
        Name of that loss in tables and plots.
    test_metric : callable or None
        ``test_metric(x) -> float`` on held-out data, or None.
    test_label : str or None
        Its name ("test accuracy", "test MSE").
    test_percent : bool
        Whether the metric is a fraction shown as a percentage.
    higher_is_better : bool
        Direction of the test metric.
    budget : int
        Default evaluations per run.
    methods : tuple of str
        Default methods.
    options : dict
        Method name -> options tuned for the task.
    budgets : dict
        Method name -> a smaller budget for that method, with the reason in ``notes``.
    notes : dict
        Method name -> why its budget or options differ.
    batch_size : int or None
        Minibatch size of a network task (None: the full training set).
    n_train : int or None
        Training rows of a network task.
    """

    name: str
    description: str
    objective: Objective
    start: Callable[[int], np.ndarray]
    train_loss: Callable[[np.ndarray], float]
    loss_label: str
    test_metric: Callable[[np.ndarray], float] | None = None
    test_label: str | None = None
    test_percent: bool = False
    higher_is_better: bool = True
    budget: int = 10_000
    methods: tuple[str, ...] = DEFAULT_METHODS
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    batch_size: int | None = None
    n_train: int | None = None

    @property
    def dim(self) -> int:
        """Number of variables (network parameters)."""
        return self.objective.dim

    def method_budget(self, method: str, budget: int) -> int:
        """The budget ``method`` gets when the compare's budget is ``budget``."""
        cap = self.budgets.get(method)
        return budget if cap is None else min(budget, cap)


@dataclass(frozen=True)
class _TaskInfo:
    summary: str
    build: Callable[..., Task]
    options: tuple[str, ...]  # task options the builder accepts


def _start_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([_START_KEY, int(seed)])


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise InvalidOptionError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _nm_cap(dim: int) -> int:
    return 2 * (dim + 1)


def _nm_note(dim: int) -> str:
    return (
        f"nelder-mead gets at most {_nm_cap(dim):,} evaluations, 2(n+1): its simplex holds "
        f"n+1 = {dim + 1:,} points and scipy's bookkeeping costs O(n^2) memory traffic per "
        "step, so a larger budget takes minutes without changing the outcome "
        "(-o nelder-mead.budget=N overrides)"
    )


def _nm_budgets(dim: int) -> dict[str, int]:
    return {"nelder-mead": _nm_cap(dim)} if dim > NM_CAP_ABOVE else {}


def _nm_notes(dim: int) -> dict[str, str]:
    return {"nelder-mead": _nm_note(dim)} if dim > NM_CAP_ABOVE else {}


def _network_task(
    name: str,
    description: str,
    *,
    dataset: str,
    hidden: tuple[int, ...],
    activation: str,
    batch_size: int | None,
    budget: int,
    options: dict[str, dict[str, Any]],
    data_seed: int = 0,
    dtype: str = "float64",
    methods: tuple[str, ...] = DEFAULT_METHODS,
) -> Task:
    data = load(dataset, seed=data_seed)
    net = MLP([data.n_features, *hidden, data.n_outputs], activation=activation, dtype=dtype)
    regression = data.task == "regression"
    loss = "mse" if regression else "cross_entropy"
    if batch_size is not None:
        batch_size = _check_int("batch_size", batch_size, 1)
        if batch_size >= data.X_train.shape[0]:
            batch_size = None
    obj = NetworkObjective(
        net,
        data.X_train,
        data.y_train,
        loss=loss,
        batch_size=batch_size,
        X_test=data.X_test,
        y_test=data.y_test,
    )
    if regression:
        metric, label, percent, higher = obj.test_loss, "test MSE", False, False
    else:
        metric, label, percent, higher = obj.accuracy, "test accuracy", True, True
    # scipy's default simplex steps 5% of each non-zero coordinate and 0.00025 along
    # zero ones (the biases): far too small for a network's weights
    options = {**options, "nelder-mead": {"simplex_scale": 0.1, **options.get("nelder-mead", {})}}
    sizes = "-".join(str(s) for s in net.sizes)
    batch = "full batch" if batch_size is None else f"minibatches of {batch_size}"
    header = (
        f"{description}; {sizes} {activation} MLP ({net.n_params:,} parameters, "
        f"{net.dtype.name}), "
        f"{'mean squared error' if regression else 'cross-entropy'} on {batch} of "
        f"{obj.n_train:,} training rows, {data.X_test.shape[0]:,} held out"
    )
    return Task(
        name=name,
        description=header,
        objective=obj,
        start=lambda seed: net.init_params(_start_rng(seed)).astype(np.float64),
        train_loss=obj.full_loss,
        loss_label="training MSE" if regression else "training cross-entropy",
        test_metric=metric,
        test_label=label,
        test_percent=percent,
        higher_is_better=higher,
        budget=budget,
        options=options,
        budgets=_nm_budgets(net.n_params),
        notes=_nm_notes(net.n_params),
        batch_size=batch_size,
        n_train=obj.n_train,
        methods=methods,
    )


def _digits(*, batch_size: int = 128, dtype: str = "float64", hidden: int = 16) -> Task:
    return _network_task(
        "digits",
        "8x8 handwritten digits (10 classes)",
        dataset="digits",
        hidden=(_check_int("hidden", hidden, 1),),
        activation="tanh",
        batch_size=batch_size,
        dtype=dtype,
        budget=20_000,
        options={
            "backprop-sgd": {"learning_rate": 0.3},
            "forward-gradient": {"learning_rate": 0.02},
            "fd-sgd": {"learning_rate": 1.0, "step_rule": "momentum"},
            "spsa": {"c": 0.05, "initial_step": 0.02},
            "cma-es": {"sigma0": 0.1, "popsize": 50},
            "random-search": {"sigma": 0.05},
        },
        methods=(*DEFAULT_METHODS, "es"),
    )


def _digits_step(*, batch_size: int = 128, dtype: str = "float64", hidden: int = 16) -> Task:
    return _network_task(
        "digits-step",
        "8x8 digits with step (Heaviside) hidden units: backprop's hidden-layer gradient is zero",
        dataset="digits",
        hidden=(_check_int("hidden", hidden, 1),),
        activation="step",
        batch_size=batch_size,
        dtype=dtype,
        budget=30_000,
        options={
            "backprop-sgd": {"learning_rate": 0.3},
            "forward-gradient": {"learning_rate": 0.02},
            "fd-sgd": {"learning_rate": 1.0, "step_rule": "momentum", "h": 0.05},
            "spsa": {"c": 0.2, "initial_step": 0.02},
            "cma-es": {"sigma0": 0.5},
            "random-search": {"sigma": 0.1},
        },
    )


def _digits_01(*, batch_size: int = 128, dtype: str = "float64") -> Task:
    data = load("digits", seed=0)
    net = MLP([data.n_features, 16, data.n_outputs], activation="tanh", dtype=dtype)
    batch_size = _check_int("batch_size", batch_size, 1)
    obj = ErrorRateObjective(
        net,
        data.X_train,
        data.y_train,
        batch_size=batch_size if batch_size < data.X_train.shape[0] else None,
        X_test=data.X_test,
        y_test=data.y_test,
    )
    batch = obj.network.batch_size
    where = "full batch" if batch is None else f"minibatches of {batch}"
    return Task(
        name="digits-01",
        description=(
            f"8x8 digits trained on the error rate (0-1 loss; its derivative is 0 wherever "
            f"it exists); 64-16-10 tanh MLP ({net.n_params:,} parameters, {net.dtype.name}), "
            f"{where} of {obj.X.shape[0]:,} training rows, {data.X_test.shape[0]:,} held out"
        ),
        objective=obj,
        start=lambda seed: net.init_params(_start_rng(seed)).astype(np.float64),
        train_loss=obj.full_error,
        loss_label="training error rate",
        test_metric=obj.accuracy,
        test_label="test accuracy",
        test_percent=True,
        higher_is_better=True,
        budget=10_000,
        options={
            "backprop-sgd": {"learning_rate": 0.3},
            "forward-gradient": {"learning_rate": 0.02},
            "fd-sgd": {"learning_rate": 1.0, "step_rule": "momentum", "h": 0.05},
            "spsa": {"c": 0.05, "initial_step": 0.02},
            "cma-es": {"sigma0": 0.3},
            "nelder-mead": {"simplex_scale": 0.1},
            "random-search": {"sigma": 0.1},
        },
        budgets=_nm_budgets(net.n_params),
        notes=_nm_notes(net.n_params),
        batch_size=batch,
        n_train=obj.X.shape[0],
    )


def _spirals(*, batch_size: int = 64, dtype: str = "float64") -> Task:
    return _network_task(
        "spirals",
        "two interleaved spirals (2 classes)",
        dataset="spirals",
        hidden=(16, 16),
        activation="tanh",
        batch_size=batch_size,
        dtype=dtype,
        budget=20_000,
        options={
            "backprop-sgd": {"learning_rate": 0.01, "step_rule": "adam"},
            "forward-gradient": {"learning_rate": 0.01, "step_rule": "adam"},
            "fd-sgd": {"learning_rate": 0.1, "step_rule": "adam"},
            "spsa": {"c": 0.05, "initial_step": 0.02},
            "cma-es": {"sigma0": 0.5},
            "random-search": {"sigma": 0.1},
        },
    )


def _xor(*, batch_size: int | None = None, dtype: str = "float64") -> Task:
    return _network_task(
        "xor",
        "noisy XOR in the plane (2 classes)",
        dataset="xor",
        hidden=(8,),
        activation="tanh",
        batch_size=batch_size,
        dtype=dtype,
        budget=5_000,
        options={
            "backprop-sgd": {"learning_rate": 0.5, "step_rule": "momentum"},
            "forward-gradient": {"learning_rate": 0.1, "step_rule": "momentum"},
            "fd-sgd": {"learning_rate": 0.5, "step_rule": "momentum"},
            "spsa": {"c": 0.05, "initial_step": 0.1},
            "cma-es": {"sigma0": 0.5},
            "random-search": {"sigma": 0.2},
        },
    )


def _sine(*, batch_size: int | None = None, dtype: str = "float64") -> Task:
    return _network_task(
        "sine",
        "regression of sin(x) on [-pi, pi] from noisy samples",
        dataset="sine",
        hidden=(16,),
        activation="tanh",
        batch_size=batch_size,
        dtype=dtype,
        budget=5_000,
        options={
            "backprop-sgd": {"learning_rate": 0.1, "step_rule": "momentum"},
            "forward-gradient": {"learning_rate": 0.02, "step_rule": "momentum"},
            "fd-sgd": {"learning_rate": 0.1, "step_rule": "momentum"},
            "spsa": {"c": 0.05, "initial_step": 0.05},
            "cma-es": {"sigma0": 0.3},
            "random-search": {"sigma": 0.1},
        },
    )


def _classic(name: str) -> Callable[..., Task]:
    def build(*, dim: int = 10) -> Task:
        dim = _check_int("dim", dim, 2)
        obj = problems.get(name, dim)
        minimum = getattr(obj, "minimum", None)
        where = "" if minimum is None else f", minimum {minimum:g}"
        return Task(
            name=name,
            description=(
                f"the {name} function in {dim} dimensions{where}; starts uniform in [-2, 2]^n"
            ),
            objective=obj,
            start=lambda seed: _start_rng(seed).uniform(-2.0, 2.0, size=dim),
            train_loss=obj,
            loss_label="f(x)",
            budget=max(2_000, 200 * dim),
            budgets=_nm_budgets(dim),
            notes=_nm_notes(dim),
        )

    return build


TASKS: dict[str, _TaskInfo] = {
    "digits": _TaskInfo(
        "8x8 digits, 64-16-10 tanh MLP (1,210 parameters); the default",
        _digits,
        ("batch_size", "dtype", "hidden"),
    ),
    "digits-step": _TaskInfo(
        "the digits network with step hidden units (not differentiable)",
        _digits_step,
        ("batch_size", "dtype", "hidden"),
    ),
    "digits-01": _TaskInfo(
        "the digits network trained on its error rate, the 0-1 loss (no useful derivative)",
        _digits_01,
        ("batch_size", "dtype"),
    ),
    "spirals": _TaskInfo("two spirals, 2-16-16-2 tanh MLP", _spirals, ("batch_size", "dtype")),
    "xor": _TaskInfo("noisy XOR, 2-8-2 tanh MLP", _xor, ("batch_size", "dtype")),
    "sine": _TaskInfo("sin(x) regression, 1-16-1 tanh MLP", _sine, ("batch_size", "dtype")),
    **{
        name: _TaskInfo(f"the {name} test function (dim variables)", _classic(name), ("dim",))
        for name in problems.names()
    },
}
"""Name -> how to build the task, in the order ``dfo compare --list-tasks`` shows."""


def task_names() -> list[str]:
    """Names accepted by :func:`get_task`, network tasks first."""
    return list(TASKS)


def task_options(name: str) -> tuple[str, ...]:
    """Task options (keyword arguments of :func:`get_task`) the task accepts."""
    return _info(name).options


def _info(name: str) -> _TaskInfo:
    if not isinstance(name, str) or name not in TASKS:
        raise InvalidOptionError(
            f"unknown task {name!r}; expected one of {task_names()}." + suggest(str(name), TASKS)
        )
    return TASKS[name]


@lru_cache(maxsize=8)
def _cached(name: str, items: tuple[tuple[str, Any], ...]) -> Task:
    return _info(name).build(**dict(items))


def get_task(name: str, **options: Any) -> Task:
    """Build a task by name (cached: the same arguments give the same object).

    Parameters
    ----------
    name : str
        One of :func:`task_names`.
    **options
        ``batch_size=`` for network tasks (None: full batch) and ``dtype=`` (``"float64"``
        or ``"float32"``, the network's arithmetic), ``dim=`` for test functions.

    Raises
    ------
    InvalidOptionError
        Unknown task or task option, or a bad value.
    """
    info = _info(name)
    for key in options:
        if key not in info.options:
            raise InvalidOptionError(
                f"task {name!r} takes the options {list(info.options)}; got {key!r}."
                + suggest(key, info.options)
            )
    return _cached(name, tuple(sorted(options.items())))
