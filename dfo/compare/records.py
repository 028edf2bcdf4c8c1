"""The run folder of ``dfo compare``: its files and how they are written and read.

========================  ==============================================================
file                      what
========================  ==============================================================
``config.json``           what was compared (task, methods, seeds, budgets, options) and
                          the measured cost of one gradient; written before any run
``runs.jsonl``            one JSON object per finished run, appended and flushed to disk
                          as each run finishes: the source of every table and plot
``table.txt``             the table as printed
``table.csv``             the same numbers, one row per method, machine-readable
``*.png``                 the plots
========================  ==============================================================

A run is written only once it has finished, so an interrupted compare leaves
only complete runs on disk; a line cut short by a kill is dropped when the folder
is read again. Records are plain JSON, except that non-finite numbers are
written as ``NaN`` and ``Infinity`` (Python's :mod:`json` reads them back).
"""

from __future__ import annotations

import enum
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dfo.files import atomic_write

__all__ = [
    "CONFIG_FILE",
    "RUNS_FILE",
    "append_record",
    "read_json",
    "read_records",
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
        The ``runs.jsonl`` file (created if missing).
    record : dict
        Passed through :func:`to_jsonable` first.
    """
    line = json.dumps(to_jsonable(record), separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_records(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The records of a ``runs.jsonl`` file, in file order.

    Parameters
    ----------
    path : Path
        A missing file has no records.
    repair : bool, default False
        Rewrite the file without the lines that were skipped.

    Returns
    -------
    list of dict
        Lines that are not complete JSON objects (a write cut short by a kill) are
        skipped.
    """
    path = Path(path)
    if not path.exists():
        return []
    records, bad = [], 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(record, dict) and line.endswith("\n"):
                records.append(record)
            else:
                bad += 1
    if bad and repair:
        atomic_write(path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
    return records
