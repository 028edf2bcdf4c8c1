"""Field-by-field validation of JSON read back from files dfo wrote.

A schema is built from a few pieces: the types ``str``, ``bool``, ``int`` (a JSON
integer, not a bool) and :data:`NUMBER` (an int or a float, ``NaN`` and
``Infinity`` included); :class:`Int` and :class:`Num` with bounds; :class:`Opt`
(the value may be null); :class:`ListOf` with a length limit; :class:`Record`, a
dict with required and optional keys (other keys are allowed); :class:`MapOf`, a
dict of any keys; :class:`Anything` for anything. :func:`validate` walks a value and
raises :class:`SchemaError` naming the first field that does not fit, as a path
(``compare.runs.spsa.budget``).

>>> validate({"seed": 1, "curve": [0.5, 1]}, Record({"seed": Int(0), "curve": ListOf(NUMBER)}))
>>> validate({"seed": "1"}, Record({"seed": Int(0)}))
Traceback (most recent call last):
...
dfo.schema.SchemaError: seed: expected an integer >= 0; got '1'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NUMBER",
    "Anything",
    "Int",
    "ListOf",
    "MapOf",
    "Num",
    "Opt",
    "Record",
    "SchemaError",
    "validate",
]


class SchemaError(ValueError):
    """A value read from a file does not fit its schema (the message names the field)."""


@dataclass(frozen=True)
class Int:
    """An integer (not a bool) in ``[lo, hi]``.

    Attributes
    ----------
    lo, hi : int or None
        Inclusive bounds (None: unbounded).
    """

    lo: int | None = None
    hi: int | None = None


@dataclass(frozen=True)
class Num:
    """A real number (int or float, not a bool) in ``[lo, hi]``.

    Attributes
    ----------
    lo, hi : float or None
        Inclusive bounds (None: unbounded).
    nan : bool
        Whether nan is allowed.
    """

    lo: float | None = None
    hi: float | None = None
    nan: bool = True


#: any real number, nan and infinities included
NUMBER = Num()


@dataclass(frozen=True)
class Opt:
    """``schema`` or null.

    Attributes
    ----------
    schema : schema
    """

    schema: Any


@dataclass(frozen=True)
class ListOf:
    """A list of ``min_len`` to ``max_len`` items, each fitting ``schema``.

    Attributes
    ----------
    schema : schema
    max_len, min_len : int
    """

    schema: Any
    max_len: int = 1_000_000
    min_len: int = 0


@dataclass(frozen=True)
class MapOf:
    """A dict of at most ``max_len`` string keys, each value fitting ``schema``.

    Attributes
    ----------
    schema : schema
    max_len : int
    """

    schema: Any
    max_len: int = 10_000


@dataclass(frozen=True)
class Record:
    """A dict with these ``required`` keys and these ``optional`` ones (more are allowed).

    Attributes
    ----------
    required, optional : mapping of str to schema
    """

    required: Mapping[str, Any]
    optional: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Anything:
    """Anything JSON can hold."""


def _bounds_text(kind: str, lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f"{kind} in [{lo}, {hi}]"
    if lo is not None:
        return f"{kind} >= {lo}"
    if hi is not None:
        return f"{kind} <= {hi}"
    return kind


def _fail(where: str, expected: str, value: Any) -> SchemaError:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return SchemaError(f"{where or 'the file'}: expected {expected}; got {text}")


def validate(value: Any, schema: Any, where: str = "") -> None:
    """Raise :class:`SchemaError` unless ``value`` fits ``schema``.

    Parameters
    ----------
    value : object
        What :func:`json.loads` returned.
    schema : schema
        See the module docstring.
    where : str, optional
        The path of ``value`` in the file, for the message.
    """
    if isinstance(schema, Anything):
        return
    if isinstance(schema, Opt):
        if value is not None:
            validate(value, schema.schema, where)
        return
    if schema is str or schema is bool:
        if not isinstance(value, schema):
            raise _fail(where, "a string" if schema is str else "true or false", value)
        return
    if schema is int:
        schema = Int()
    if isinstance(schema, Int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if (
            not ok
            or (schema.lo is not None and value < schema.lo)
            or (schema.hi is not None and value > schema.hi)
        ):
            raise _fail(where, "an " + _bounds_text("integer", schema.lo, schema.hi), value)
        return
    if isinstance(schema, Num):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and math.isnan(value):
            ok = schema.nan
        elif ok:
            ok = (schema.lo is None or value >= schema.lo) and (
                schema.hi is None or value <= schema.hi
            )
        if not ok:
            raise _fail(where, "a " + _bounds_text("number", schema.lo, schema.hi), value)
        return
    if isinstance(schema, ListOf):
        if not isinstance(value, list) or not schema.min_len <= len(value) <= schema.max_len:
            size = f"{schema.min_len} to {schema.max_len}"
            raise _fail(where, f"a list of {size} items", value)
        for i, item in enumerate(value):
            validate(item, schema.schema, f"{where}[{i}]")
        return
    prefix = f"{where}." if where else ""
    if isinstance(schema, MapOf):
        if not isinstance(value, dict) or len(value) > schema.max_len:
            raise _fail(where, f"an object of at most {schema.max_len} entries", value)
        for key, item in value.items():
            validate(item, schema.schema, f"{prefix}{key}")
        return
    if isinstance(schema, Record):
        if not isinstance(value, dict):
            raise _fail(where, "an object", value)
        for key, sub in schema.required.items():
            if key not in value:
                raise SchemaError(f"{prefix}{key}: missing")
            validate(value[key], sub, f"{prefix}{key}")
        for key, sub in schema.optional.items():
            if key in value:
                validate(value[key], sub, f"{prefix}{key}")
        return
    raise TypeError(f"not a schema: {schema!r}")  # pragma: no cover - a bug in dfo
