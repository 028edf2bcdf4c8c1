"""Results as JSON files: :meth:`dfo.Result.save` and :func:`dfo.load_result`.

A result file is one JSON object::

    {"format": "dfo-result", "version": 1, "dfo": "0.1.0", "result": {...}}

``result`` holds every field of the :class:`~dfo.Result`. Arrays are nested lists
(``{"__ndarray__": [...], "dtype": "float64", "shape": [...]}``, so that dtype and
shape come back), the status is its name, tuples are tagged so that they come
back as tuples; non-finite numbers are written as ``NaN`` and ``Infinity`` (as
Python's :mod:`json` does). Nothing is pickled: a file is data, never code.
``dfo compare`` stores the same document, as ``"result"``, in every line of its
``runs.jsonl``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dfo.files import atomic_write, check_output_file
from dfo.result import Result, Status
from dfo.schema import NUMBER, Anything, Int, MapOf, Num, Record, SchemaError, validate

__all__ = ["FORMAT", "VERSION", "load_result", "result_from_document", "result_to_document"]

#: the ``format`` entry of a result file
FORMAT = "dfo-result"
#: the version of the layout written by this dfo
VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, Status):
        return {"__status__": value.name}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype), "shape": value.shape}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if value is None or isinstance(value, str):
        return value
    lb, ub = getattr(value, "lb", None), getattr(value, "ub", None)
    if lb is not None and ub is not None:  # scipy.optimize.Bounds
        return {"__bounds__": [_encode(np.asarray(lb)), _encode(np.asarray(ub))]}
    return {"__repr__": repr(value)}  # an option JSON cannot hold: kept as text


#: dtypes an array of a result file may have (nothing that allocates per item or holds code)
_DTYPES = frozenset(
    ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")
)
_ARRAY = Record({"__ndarray__": Anything(), "dtype": str, "shape": Anything()})
#: the fields of a result document, checked one by one when present (a Result built by
#: hand may hold fewer, and more)
RESULT_SCHEMA = Record(
    {},
    {
        "x": _ARRAY,
        "fun": NUMBER,
        "nfev": Int(0),
        "nit": Int(0),
        "message": str,
        "ngev": Int(0),
        "njvp": Int(0),
        "n_nonfinite": Int(0),
        "n_errors": Int(0),
        "success": bool,
        "status": Record({"__status__": str}),
        "history": MapOf(_ARRAY, 100),
        "method": str,
        "time": Num(0),
    },
)


def _array(value: dict[str, Any]) -> np.ndarray:
    """The array of an ``__ndarray__`` entry, its dtype and shape checked first."""
    dtype, shape = value.get("dtype"), value.get("shape")
    if dtype not in _DTYPES:
        raise SchemaError(f"an array of dtype {dtype!r}; expected one of {sorted(_DTYPES)}")
    if not isinstance(shape, list | tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise SchemaError(f"an array of shape {shape!r}; expected a list of sizes")
    try:
        array = np.array(value["__ndarray__"], dtype=np.dtype(dtype))
    except (TypeError, ValueError, OverflowError) as exc:
        raise SchemaError(f"an array that is not of numbers of dtype {dtype}: {exc}") from None
    if array.size != math.prod(shape):
        raise SchemaError(f"an array of {array.size} numbers said to have shape {shape}")
    return array.reshape(shape)


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        return _array(value)
    if "__status__" in value:
        name = value["__status__"]
        if name not in Status.__members__:
            raise SchemaError(f"status {name!r}; expected one of {list(Status.__members__)}")
        return Status[name]
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__bounds__" in value:
        from scipy.optimize import Bounds

        return Bounds(*(_decode(v) for v in value["__bounds__"]))
    if "__repr__" in value:
        return value["__repr__"]
    return {k: _decode(v) for k, v in value.items()}


def result_to_document(result: Result) -> dict[str, Any]:
    """The JSON-ready document of ``result`` (what :meth:`Result.save` writes).

    Parameters
    ----------
    result : Result

    Returns
    -------
    dict
        ``{"format": "dfo-result", "version": 1, "dfo": <version>, "result": {...}}``.
    """
    from dfo import __version__

    return {"format": FORMAT, "version": VERSION, "dfo": __version__, "result": _encode(result)}


def _check_document(doc: Any, where: str) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{where} is not a dfo result (expected 'format': {FORMAT!r})")
    version = doc.get("version")
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise ValueError(
            f"{where} has result format version {version!r}; this dfo reads versions "
            f"1 to {VERSION} (a newer dfo wrote it?)"
        )
    if not isinstance(doc.get("result"), dict):
        raise ValueError(f"{where} holds no 'result' object")
    try:
        validate(doc["result"], RESULT_SCHEMA, "result")
    except SchemaError as exc:
        raise ValueError(f"{where} is a damaged dfo result ({exc})") from None


def _decoded(doc: dict[str, Any], where: str) -> Result:
    try:
        return Result(_decode(doc["result"]))
    except SchemaError as exc:
        raise ValueError(f"{where} is a damaged dfo result (it holds {exc})") from None


def result_from_document(doc: dict[str, Any]) -> Result:
    """The :class:`Result` of a document made by :func:`result_to_document`.

    Parameters
    ----------
    doc : dict
        A parsed result file, or the ``"result"`` entry of a ``runs.jsonl`` line.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        If ``doc`` is not a dfo result document, or one of a newer format version.
    """
    _check_document(doc, "the document")
    return _decoded(doc, "the document")


def _is_result_file(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def save_result(result: Result, path: str | os.PathLike[str]) -> Path:
    """Write ``result`` to ``path`` as JSON (see :meth:`dfo.Result.save`)."""
    path = Path(path)
    if path.exists() and not (path.is_file() and _is_result_file(path)):
        raise FileExistsError(
            f"{path} exists and is not a dfo result file; dfo does not overwrite it "
            "(choose another path or remove it)"
        )
    text = json.dumps(result_to_document(result), indent=1) + "\n"
    if path.exists():  # an earlier dfo result, checked above
        atomic_write(path, text)
        return path
    # a new file: written beside, then linked in place, which fails if another
    # writer created the file meanwhile (never overwrites it)
    check_output_file(path, "result file")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path


def load_result(path: str | os.PathLike[str]) -> Result:
    """Read a result written by :meth:`dfo.Result.save`.

    Parameters
    ----------
    path : str or path-like
        A JSON result file.

    Returns
    -------
    Result
        Every field as it was saved: arrays with their dtype and shape, the
        status as :class:`~dfo.result.Status`, the history as arrays.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not UTF-8 JSON, not a dfo result, of a newer format version,
        or damaged (a field of the wrong type, an array whose dtype or shape does
        not fit; the message names it).

    Examples
    --------
    >>> import numpy as np, dfo
    >>> res = dfo.minimize(lambda x: float(x @ x), np.ones(2), budget=100, seed=0)
    >>> _ = res.save("run.json")
    >>> back = dfo.load_result("run.json")
    >>> bool(np.array_equal(back.x, res.x)), back.status == res.status
    (True, True)
    """
    path = Path(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a dfo result file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a dfo result file (not JSON: {exc})") from exc
    _check_document(doc, str(path))
    return _decoded(doc, str(path))
