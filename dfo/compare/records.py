"""The run folder of ``dfo compare``: its files and how they are written and read.

========================  ==============================================================
file                      what
========================  ==============================================================
``config.json``           the folder's format and version, the compare's identity (``id``),
                          what was compared (task, methods, seeds, budgets, options) and
                          the measured cost of one gradient; written before any run
``runs.jsonl``            one JSON object per finished run, carrying the compare's ``id``,
                          appended and flushed to disk as each run finishes: the source
                          of every table and plot
``dfo.lock``              present while a compare writes the folder (its process, host,
                          start and command line); see :mod:`dfo.compare.folder`
``table.txt``             the table as printed
``table.csv``             the same numbers, one row per method, machine-readable
``*.png``                 the plots
========================  ==============================================================

A run is written only once it has finished, so an interrupted compare leaves
only complete runs on disk. Reading back, :func:`read_config` checks every field
of ``config.json`` against :data:`CONFIG_SCHEMA` (a defect is one
:class:`~dfo.exceptions.RunFolderError` naming it), and :func:`read_runs` checks
every line of ``runs.jsonl`` against :data:`RECORD_SCHEMA`: a line cut short by a
kill, bytes that are not UTF-8, an incomplete record or one of another compare is
skipped, counted, and run again by ``--resume``. Sizes are bounded
(:data:`MAX_CONFIG_BYTES`, :data:`MAX_LINE_BYTES`, :data:`MAX_DIM`, ...). Records
are plain JSON, except that non-finite numbers are written as ``NaN`` and
``Infinity`` (Python's :mod:`json` reads them back).
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfo.exceptions import RunFolderError
from dfo.files import atomic_write
from dfo.schema import (
    NUMBER,
    Anything,
    Int,
    ListOf,
    MapOf,
    Num,
    Opt,
    Record,
    SchemaError,
    validate,
)

__all__ = [
    "CONFIG_FILE",
    "RUNS_FILE",
    "Runs",
    "append_record",
    "check_record",
    "read_config",
    "read_json",
    "read_records",
    "read_runs",
    "to_jsonable",
    "write_json",
]

CONFIG_FILE = "config.json"
RUNS_FILE = "runs.jsonl"
TABLE_TEXT_FILE = "table.txt"
TABLE_CSV_FILE = "table.csv"


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars and arrays, tuples and enums made JSON-friendly.

    Parameters
    ----------
    obj : object
        Nested dicts, lists and tuples of numbers, strings, arrays, enums.

    Returns
    -------
    object
        Dicts, lists, numbers, strings and None; enums become their lower-case
        name, anything else JSON cannot hold its ``repr``.

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"x": np.arange(2.0), "n": np.int64(3), "pair": (1, 2)})
    {'x': [0.0, 1.0], 'n': 3, 'pair': [1, 2]}
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, enum.Enum):
        return obj.name.lower()
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return repr(obj)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (:func:`dfo.files.atomic_write`).

    Parameters
    ----------
    path : Path
    obj : object
        Passed through :func:`to_jsonable` first.
    """
    atomic_write(path, json.dumps(to_jsonable(obj), indent=2) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file.

    Parameters
    ----------
    path : Path

    Returns
    -------
    object
        The parsed content (``NaN`` and ``Infinity`` come back as floats).
    """
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one line and flush it to disk before returning.

    Parameters
    ----------
    path : Path
        The ``runs.jsonl`` file (created if missing; a symlink there is refused,
        not followed).
    record : dict
        Passed through :func:`to_jsonable` first.
    """
    line = json.dumps(to_jsonable(record), separators=(",", ":")) + "\n"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o666)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


# -- reading back, field by field -----------------------------------------------------------

#: largest config.json and runs.jsonl line read (a record holds about 50 kB)
MAX_CONFIG_BYTES = 2**20
MAX_LINE_BYTES = 2**24
#: sizes a run folder may ask for (a tampered file must not exhaust memory)
MAX_DIM = 10**7
MAX_SEEDS = 10_000
MAX_METHODS = 100
MAX_MONITOR = 10_000

_TASK_OPTIONS = Record(
    {}, {"dim": Int(1, MAX_DIM), "batch_size": Int(1, MAX_DIM), "hidden": Int(1, MAX_DIM)}
)
_OPTIONS = MapOf(Anything(), max_len=1000)
_REQUEST = Record(
    {"task": str},
    {
        "task_options": _TASK_OPTIONS,
        "methods": Opt(ListOf(str, MAX_METHODS)),
        "seeds": ListOf(Int(0), MAX_SEEDS),
        "budget": Opt(Int(1)),
        "max_time": Opt(Num(0, nan=False)),
        "options": MapOf(_OPTIONS, MAX_METHODS),
        "n_monitor": Int(1, MAX_MONITOR),
    },
)
_COMPARE = Record(
    {
        "task": str,
        "task_options": _TASK_OPTIONS,
        "methods": ListOf(str, MAX_METHODS, min_len=1),
        "seeds": ListOf(Int(0), MAX_SEEDS, min_len=1),
        "n_monitor": Int(1, MAX_MONITOR),
        "runs": MapOf(
            Record({"budget": Int(1), "max_time": Opt(Num(0, nan=False)), "options": _OPTIONS}),
            MAX_METHODS,
        ),
    }
)
_GRADIENT_COST = Record(
    {
        "ratio": Num(0, nan=False),
        "forward_seconds": Num(0, nan=False),
        "gradient_seconds": Num(0, nan=False),
        "repeats": Int(0),
        "number": Int(0),
        "batch_size": Opt(Int(1)),
    },
    {"source": str},
)
CONFIG_SCHEMA = Record(
    {
        "format": str,
        "format_version": Int(),
        "id": str,
        "request": _REQUEST,
        "compare": _COMPARE,
        "gradient_cost": Opt(_GRADIENT_COST),
    }
)
_CURVE_KEYS = ("nfev", "ngev", "time", "train_loss", "test_metric")
RECORD_SCHEMA = Record(
    {
        "method": str,
        "seed": Int(0),
        "budget": Int(1),
        "status": str,
        "nfev": Int(0),
        "ngev": Int(0),
        "time": Num(0),
        "fun": NUMBER,
        "train_loss": Opt(NUMBER),
        "test_metric": Opt(NUMBER),
        "start_train_loss": Opt(NUMBER),
        "start_test_metric": Opt(NUMBER),
        "monitor": Record(
            {
                "points": Int(0),
                "evaluations": Int(0),
                "seconds": Num(0),
                "curve": Record(
                    {
                        "nfev": ListOf(NUMBER),
                        "ngev": ListOf(NUMBER),
                        "time": ListOf(NUMBER),
                        "train_loss": ListOf(Opt(NUMBER)),
                        "test_metric": ListOf(Opt(NUMBER)),
                    }
                ),
            }
        ),
    },
    {
        "compare_id": str,
        "nit": Int(0),
        "message": str,
        "history": MapOf(ListOf(NUMBER)),
        # the run's Result as dfo.Result.save writes it (dfo.result_io)
        "result": Record({"format": str, "version": Int(1), "result": Anything()}),
        "blas_threads": str,
    },
)


def _damaged(path: Path, detail: str) -> RunFolderError:
    return RunFolderError(
        f"{path} is damaged ({detail}); start afresh without --resume, or use another --out"
    )


def read_config(path: Path) -> dict[str, Any]:
    """The content of a run folder's ``config.json``, checked field by field.

    Parameters
    ----------
    path : Path

    Returns
    -------
    dict
        ``format``, ``format_version``, ``id``, ``request``, ``compare`` and
        ``gradient_cost``, each as :data:`CONFIG_SCHEMA` describes.

    Raises
    ------
    RunFolderError
        The file is missing, larger than :data:`MAX_CONFIG_BYTES`, not UTF-8 JSON,
        of another format or version, or a field does not fit (the message names it).
    """
    from dfo.compare.folder import FORMAT, FORMAT_VERSION

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise _damaged(path, f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _damaged(path, f"larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _damaged(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _damaged(path, f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(data, dict) and "format" not in data and {"request", "compare"} <= set(data):
        raise RunFolderError(
            f"{path} was written by an earlier dfo (run-folder format 1; this dfo reads "
            f"{FORMAT_VERSION}): its runs cannot be resumed; start afresh without --resume"
        )
    try:
        validate(data, CONFIG_SCHEMA)
    except SchemaError as exc:
        raise _damaged(path, str(exc)) from None
    if data["format"] != FORMAT or data["format_version"] != FORMAT_VERSION:
        raise RunFolderError(
            f"{path} is not a dfo compare run folder of format {FORMAT_VERSION} "
            f"(format {data['format']!r}, version {data['format_version']})"
        )
    return data


def check_record(record: Any) -> None:
    """Raise :class:`~dfo.schema.SchemaError` unless ``record`` is a complete run record.

    Parameters
    ----------
    record : object
        One parsed line of ``runs.jsonl``.
    """
    validate(record, RECORD_SCHEMA)
    curve = record["monitor"]["curve"]
    lengths = {len(curve[key]) for key in _CURVE_KEYS}
    if len(lengths) > 1:
        raise SchemaError(f"monitor.curve: lists of different lengths {sorted(lengths)}")


@dataclass
class Runs:
    """What :func:`read_runs` found in a ``runs.jsonl`` file.

    Attributes
    ----------
    records : list of dict
        The complete records of the compare asked for, in file order.
    skipped : int
        Lines skipped: cut short, not UTF-8, not JSON, not a complete record, or a
        record of another compare.
    reasons : list of str
        Why, for the first few skipped lines (``"line 3: ..."``).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)


def _lines(fh: Any) -> Iterator[tuple[int, bytes | None]]:
    """``(number, line)`` of a binary file; None for a line over :data:`MAX_LINE_BYTES`."""
    number = 0
    while True:
        line = fh.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of the long line
                line = fh.readline(MAX_LINE_BYTES)
            yield number, None
        else:
            yield number, line


def read_runs(
    path: Path, *, compare: str | None = None, repair: bool = False, check: bool = True
) -> Runs:
    """The complete records of a ``runs.jsonl`` file, each checked field by field.

    Parameters
    ----------
    path : Path
        A missing file has no records.
    compare : str, optional
        Keep only the records of the compare with this id (others are skipped).
    repair : bool, default False
        Rewrite the file without the skipped lines.
    check : bool, default True
        Check every record against :data:`RECORD_SCHEMA` (else any JSON object is
        a record).

    Returns
    -------
    Runs
    """
    path = Path(path)
    runs = Runs()
    if not path.exists():
        return runs

    def skip(number: int, why: str) -> None:
        runs.skipped += 1
        if len(runs.reasons) < 5:
            runs.reasons.append(f"line {number}: {why}")

    with open(path, "rb") as fh:
        for number, raw in _lines(fh):
            if raw is None:
                skip(number, f"longer than {MAX_LINE_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            if not raw.endswith(b"\n"):
                skip(number, "cut short")
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                if check:
                    check_record(record)
                elif not isinstance(record, dict):
                    raise SchemaError("expected an object")
            except UnicodeDecodeError:
                skip(number, "not UTF-8 text")
                continue
            except json.JSONDecodeError as exc:
                skip(number, f"not JSON ({exc.msg})")
                continue
            except SchemaError as exc:
                skip(number, str(exc))
                continue
            if compare is not None and record.get("compare_id") != compare:
                skip(number, "a record of another compare")
                continue
            runs.records.append(record)
    if runs.skipped and repair:
        atomic_write(
            path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in runs.records)
        )
    return runs


def read_records(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The records of a ``runs.jsonl`` file, in file order (see :func:`read_runs`).

    Parameters
    ----------
    path : Path
        A missing file has no records.
    repair : bool, default False
        Rewrite the file without the lines that were skipped.

    Returns
    -------
    list of dict
        Lines that are not complete JSON objects (a write cut short by a kill, bytes
        that are not UTF-8) are skipped; the fields are not checked.
    """
    return read_runs(path, repair=repair, check=False).records
