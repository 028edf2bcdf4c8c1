"""Checks :func:`dfo.minimize` makes before the first evaluation.

Whatever would fail only after the budget is spent is found out here instead: an
:class:`~dfo.objective.Objective` subclass without its evaluation hook, an
objective a process pool cannot pickle (a lambda, a nested function, an open
file), a checkpoint path that cannot be written.
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from dfo.exceptions import NotPicklableError
from dfo.files import check_output_file
from dfo.objective import Objective

__all__ = ["check_checkpoint", "check_checkpointable", "check_hooks", "check_picklable"]


def check_hooks(objective: Objective, *, needs_gradient: bool = False) -> None:
    """Raise TypeError if ``objective``'s class does not implement what the run calls.

    Parameters
    ----------
    objective : Objective
    needs_gradient : bool, default False
        Whether the method calls ``value_and_grad`` (then ``_value_and_grad`` must be
        implemented too).

    Raises
    ------
    TypeError
        Naming the missing hook, instead of a NotImplementedError at the first call.
    """
    cls = type(objective)
    missing = []
    if cls._evaluate_batch is Objective._evaluate_batch:
        missing.append("_evaluate_batch(self, X) -> values of the rows of X")
    if needs_gradient and cls._value_and_grad is Objective._value_and_grad:
        missing.append("_value_and_grad(self, x) -> (value, gradient)")
    if missing:
        raise TypeError(
            f"{cls.__name__} is an Objective subclass that does not implement "
            + " nor ".join(missing)
            + "; implement it, or wrap a plain function with dfo.as_objective(f, dim=n)"
        )


def _needs_pickle(executor: Executor) -> bool:
    """Whether tasks sent to ``executor`` are pickled (a process pool)."""
    return isinstance(executor, ProcessPoolExecutor)


def check_picklable(objective: Objective, executor: Executor | None) -> None:
    """Raise :class:`NotPicklableError` if ``executor`` cannot be sent ``objective``.

    A process pool pickles each task; a thread pool and Dask (cloudpickle) do not
    need this, and nothing is checked for them.

    Parameters
    ----------
    objective : Objective
    executor : Executor or None
    """
    if executor is None or not _needs_pickle(executor):
        return
    try:
        pickle.dumps(objective, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise NotPicklableError(
            f"the objective {objective!r} cannot be sent to the process pool's workers: "
            f"it does not pickle ({type(exc).__name__}: {exc}). Define the function at "
            "module level (not a lambda or a nested function) and keep its data "
            "picklable, or use a thread pool or Dask (which uses cloudpickle)"
        ) from exc


def check_checkpointable(optimizer: Any) -> None:
    """Raise :class:`NotPicklableError` if ``optimizer`` cannot be saved in a checkpoint.

    Parameters
    ----------
    optimizer : Optimizer
        Its state is pickled at every checkpoint (a custom step rule made of lambdas
        would fail only at the first one).
    """
    try:
        pickle.dumps(optimizer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise NotPicklableError(
            f"checkpoint= saves the optimizer's state, and {optimizer!r} does not pickle "
            f"({type(exc).__name__}: {exc}); define custom step rules and other options "
            "with module-level functions, or run without checkpoint="
        ) from exc


def check_checkpoint(checkpoint: Any) -> Path | None:
    """The checkpoint path (None for None) if a file can be written there, else raise.

    Parameters
    ----------
    checkpoint : path-like or None

    Returns
    -------
    Path or None

    Raises
    ------
    OutputPathError
        A directory, a folder that does not exist or is not writable.
    """
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(f"checkpoint must be a path or None; got {type(checkpoint).__name__}")
    return check_output_file(checkpoint, "checkpoint")
