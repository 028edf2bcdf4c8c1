"""The registry of methods: one name, one optimizer class.

>>> import dfo
>>> "spsa" in dfo.methods()
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dfo.exceptions import InvalidOptionError, suggest
from dfo.optimizers.base import Optimizer
from dfo.options import Kind, Options, check_budget, check_real

__all__ = [
    "Optimizer",
    "get_method",
    "make_optimizer",
    "method_options",
    "methods",
    "option_kinds",
    "register",
    "stopping_table",
    "tol_options",
]

_REGISTRY: dict[str, type[Optimizer]] = {}


def register(name: str):
    """Class decorator: register an :class:`Optimizer` subclass under ``name``.

    The class's ``name`` attribute is set to ``name``, and :func:`methods`,
    :func:`dfo.minimize` and ``dfo compare`` then know it. A later registration
    under the same name replaces the earlier one.

    Parameters
    ----------
    name : str
        The method's name, as passed to ``minimize(..., method=name)``.

    Returns
    -------
    callable
        The decorator; it returns the class itself.

    Raises
    ------
    TypeError
        When the decorator is applied to anything but an :class:`Optimizer`
        subclass.

    Examples
    --------
    A method that keeps trying points around the best one so far (not run here,
    so that the registry stays as it is):

    >>> @register("my-method")  # doctest: +SKIP
    ... class MyMethod(Optimizer):
    ...     def _ask(self):
    ...         return self.best_x + 0.1 * self.rng.standard_normal((4, self.dim))
    ...     def _tell(self, X, values, grads):
    ...         return float(values.min())
    """

    def decorate(cls: type[Optimizer]) -> type[Optimizer]:
        if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
            raise TypeError(f"only Optimizer subclasses can be registered; got {cls!r}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_builtins() -> None:
    # importing the modules registers the built-in methods
    from dfo.optimizers import (  # noqa: F401
        auto,
        bfgs,
        cma_es,
        cobyqa,
        es,
        forward_gradient,
        gradient,
        nelder_mead,
        powell,
        random_search,
    )


def methods() -> list[str]:
    """Names of all registered methods, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_method(method: str) -> type[Optimizer]:
    """The optimizer class registered as ``method``.

    Parameters
    ----------
    method : str
        A name from :func:`methods`.

    Returns
    -------
    type[Optimizer]
        The class itself (not an instance).

    Raises
    ------
    TypeError
        If ``method`` is not a string.
    InvalidOptionError
        If no method has that name (the message suggests the closest names).

    Examples
    --------
    >>> get_method("spsa").__name__
    'SPSA'
    >>> get_method("nelder-mead").needs_gradient
    False
    """
    _load_builtins()
    if not isinstance(method, str):
        raise TypeError(f"method must be a string naming a method; got {type(method).__name__}")
    try:
        return _REGISTRY[method]
    except KeyError:
        raise InvalidOptionError(
            f"unknown method {method!r}; expected one of {sorted(_REGISTRY)}."
            + suggest(method, _REGISTRY)
        ) from None


def method_options(method: str) -> dict[str, Any]:
    """The options of ``method`` and their defaults.

    Read from the method's one declaration, its ``Options`` dataclass (see
    :mod:`dfo.options`): what :func:`make_optimizer` and :func:`dfo.minimize`
    accept as ``**options``.

    Parameters
    ----------
    method : str
        A name from :func:`methods`.

    Returns
    -------
    dict
        Option name to default value, in the order of the declaration.

    Raises
    ------
    TypeError
        If ``method`` is not a string.
    InvalidOptionError
        If no method has that name.

    Examples
    --------
    >>> method_options("random-search")
    {'sigma': 0.1, 'popsize': None, 'bounds': None, 'ftol': None}
    """
    return get_method(method).Options.defaults()


def option_kinds(method: str) -> dict[str, Kind]:
    """The :class:`~dfo.options.Kind` of each option of ``method`` (what it accepts).

    Parameters
    ----------
    method : str
        A name from :func:`methods`.

    Returns
    -------
    dict
        Option name to its kind; ``kind.expected`` describes the valid values.

    Examples
    --------
    >>> option_kinds("random-search")["sigma"].expected
    'a positive number'
    """
    return get_method(method).Options.kinds()


def check_options(method: str, options: dict[str, Any]) -> Options:
    """The checked options of ``method``, or :class:`InvalidOptionError`.

    Checks names and values against the method's declaration (values whose check
    needs the dimension, such as bounds, are checked when the optimizer is built).
    """
    return get_method(method).Options.build(options, method)


def build_optimizer(
    method: str,
    x0: Any,
    *,
    seed: int | np.random.SeedSequence | None = None,
    budget: int | None = None,
    bounds: Any = None,
    tol: float | None = None,
    **options: Any,
) -> Optimizer:
    """Make an optimizer (what :func:`make_optimizer` and ``minimize`` call)."""
    cls = get_method(method)
    return cls(x0, seed=seed, budget=budget, bounds=bounds, **tol_options(method, tol, options))


def stopping_table() -> str:
    """What ``target=`` and ``tol=`` do for each registered method, as a Markdown table.

    Returns
    -------
    str
        One row per method: what ``tol=`` sets (:attr:`Optimizer.TOL`,
        ``TOL_FIXED``) and what it then means (``TOL_MEANING``); the docs show it.

    Examples
    --------
    >>> "| `nelder-mead` |" in stopping_table()
    True
    """
    lines = [
        "| method | `target=` | `tol=` sets | the run then stops when |",
        "| --- | --- | --- | --- |",
    ]
    for method in methods():
        cls = get_method(method)
        sets = [f"`{name}`" for name in cls.TOL]
        sets += [f"`{name}={value!r}`" for name, value in cls.TOL_FIXED.items()]
        meaning = cls.TOL_MEANING.replace("``", "`") or "(no tolerance: tol= is refused)"
        meaning = meaning.replace("|", "\\|")  # a bar inside a cell is not a column
        lines.append(
            f"| `{method}` | best value <= target | {', '.join(sets) or '—'} | {meaning} |"
        )
    return "\n".join(lines)


def tol_options(method: str, tol: float | None, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``tol`` set on the method's tolerances (:attr:`Optimizer.TOL`).

    scipy's meaning of ``tol``: each method's own tolerances take its value, unless
    they are given explicitly. The docs' stopping table lists the mapping.

    Parameters
    ----------
    method : str
        A name from :func:`methods`.
    tol : float or None
        The tolerance (None: ``options`` unchanged).
    options : dict
        The options given.

    Returns
    -------
    dict
        The options to build the method with.

    Raises
    ------
    InvalidOptionError
        For a ``tol`` that is not a number >= 0, or a method with no tolerance.
    """
    if tol is None:
        return options
    tol = check_real("tol", tol, low=0.0)
    cls = get_method(method)
    if not cls.TOL:
        raise InvalidOptionError(
            f"method {method!r} has no tolerance for tol= to set; use target=, budget= or "
            "max_iter= to stop it"
        )
    return {**{name: tol for name in cls.TOL}, **cls.TOL_FIXED, **options}


def make_optimizer(
    method: str,
    x0: Any,
    *,
    seed: int | None = None,
    budget: int | None = None,
    max_iter: int | None = None,
    target: float | None = None,
    bounds: Any = None,
    tol: float | None = None,
    **options: Any,
) -> Optimizer:
    """Make an ask/tell optimizer.

    Parameters
    ----------
    method : str
        A name from :func:`methods`.
    x0 : array_like, shape (dim,)
        Starting point.
    seed : int, optional
        Seed of the optimizer's random generator.
    budget : int, optional
        Maximum number of evaluations: :meth:`~Optimizer.stop` returns
        ``{"budget": ...}`` before an ask that would exceed it, so the documented loop
        ends by itself (some defaults derive from it too).
    max_iter : int, optional
        Iteration limit: ``stop()`` then returns ``{"max_iter": ...}``.
    target : float, optional
        A value ``<= target`` told ends the run: ``stop()`` returns ``{"target": ...}``.
    bounds : scipy.optimize.Bounds, sequence of (lo, hi) pairs, or (lower, upper), optional
        Box constraints, for every method (None for an unbounded side; see
        :mod:`dfo.bounds`): ``x0`` is projected onto the box and no point outside it
        is ever asked for.
    tol : float, optional
        Tolerance for termination, scipy's meaning: the method's own tolerances are
        set to it (:func:`tol_options`; the docs' stopping table lists them).
    **options
        The method's hyperparameters; see :func:`method_options`.

    Returns
    -------
    Optimizer
        An object with ``ask()``, ``tell(X, values[, grads])``, ``stop()`` and ``result()``.

    Raises
    ------
    InvalidOptionError
        Unknown method or option, or an option value out of range (a value of the
        wrong type raises :class:`~dfo.exceptions.OptionTypeError`, also a TypeError).

    Examples
    --------
    >>> import numpy as np
    >>> opt = make_optimizer("random-search", np.zeros(2), seed=0)
    >>> X = opt.ask()
    >>> opt.tell(X, (X**2).sum(axis=1))
    >>> opt.nit
    1
    >>> opt = make_optimizer("spsa", np.zeros(2), seed=0, budget=9, a=0.1)
    >>> while not opt.stop():
    ...     X = opt.ask()
    ...     opt.tell(X, (X**2).sum(axis=1))
    >>> opt.nfev, opt.stop()
    (8, {'budget': '8 of 9 evaluations spent; the next iteration needs 2, 1 is left'})
    """
    opt = build_optimizer(method, x0, seed=seed, budget=budget, bounds=bounds, tol=tol, **options)
    if max_iter is not None:
        opt.ledger.max_iter = check_budget(max_iter, "max_iter")
    if target is not None:
        opt.ledger.target = check_real("target", target, allow_inf=True)
    return opt
