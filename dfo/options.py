"""Option declarations, and one validator per kind of value.

Every method declares its options once, as a frozen dataclass whose fields are
made with :func:`option`: a default and a :class:`Kind` (what values are valid).
That one declaration serves validation (:meth:`Options.build`),
:func:`dfo.optimizers.method_options`, the command line's ``-o method.key=value``,
the docs' option tables, and a run's identity in a checkpoint
(:meth:`Options.identity`, canonical JSON).

>>> @declare_options
... class ToyOptions(Options):
...     sigma: float = option(0.1, PositiveReal())
...     popsize: int | None = option(None, Optional(PositiveInt(minimum=2)))
>>> ToyOptions.build({"sigma": 2})
ToyOptions(sigma=2.0, popsize=None)
>>> ToyOptions.build({"sigma": -1.0})
Traceback (most recent call last):
...
dfo.exceptions.InvalidOptionError: sigma must be a positive number; got -1.0

The validators themselves (:func:`check_real`, :func:`check_int`, :func:`check_flag`,
:func:`check_choice`, :func:`check_budget`) are plain functions for any argument of
dfo's API: they accept numpy scalars of the right kind, refuse bools where numbers
are expected and strings where flags are, and raise
:class:`~dfo.exceptions.InvalidOptionError` (a ValueError) for a value out of range,
:class:`~dfo.exceptions.OptionTypeError` (a ValueError and a TypeError) for a value of
the wrong type; each message says what was expected and what was given.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any, TypeVar

import numpy as np

from dfo.exceptions import InvalidOptionError, OptionTypeError, suggest

__all__ = [
    "BOUNDS",
    "Choice",
    "Custom",
    "Either",
    "Flag",
    "Kind",
    "Optional",
    "Options",
    "PositiveInt",
    "PositiveReal",
    "RealRange",
    "check_budget",
    "check_choice",
    "check_flag",
    "check_int",
    "check_real",
    "declare_options",
    "digest",
    "option",
    "to_json",
]


def _given(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return (
        text
        if isinstance(value, str | int | float | bool | None)
        else (f"{type(value).__name__} {text}")
    )


# -- validators, one per kind ---------------------------------------------------------------
def check_real(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """``value`` as a float in the given range, or raise.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : int, float or numpy real scalar
        Not a bool, a string or a complex number.
    low, high : float
        The range; ``low_open``/``high_open`` exclude the ends.
    allow_inf : bool, default False
        Accept ``+inf`` or ``-inf`` (if the range allows them); nan is never accepted.

    Returns
    -------
    float

    Raises
    ------
    OptionTypeError
        If ``value`` is not a real number.
    InvalidOptionError
        If it is out of range, nan, infinite (unless allowed) or too large for a float.

    Examples
    --------
    >>> check_real("c", np.float32(0.5), low=0, low_open=True)
    0.5
    >>> check_real("c", 10**400)
    Traceback (most recent call last):
    ...
    dfo.exceptions.InvalidOptionError: c must be a finite number; got an integer too large ...
    """
    expected = _real_text(low, high, low_open, high_open, allow_inf)
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        raise OptionTypeError(f"{name} must be {expected}; got {_given(value)}")
    try:
        x = float(value)
    except OverflowError:
        raise InvalidOptionError(
            f"{name} must be {expected}; got an integer too large for a float"
        ) from None
    ok = not math.isnan(x) and (allow_inf or math.isfinite(x))
    ok = ok and (x > low if low_open else x >= low) and (x < high if high_open else x <= high)
    if not ok:
        raise InvalidOptionError(f"{name} must be {expected}; got {_given(value)}")
    return x


def _real_text(low: float, high: float, low_open: bool, high_open: bool, allow_inf: bool) -> str:
    kind = "a number" if allow_inf else "a finite number"
    if low == 0 and low_open and high == math.inf:
        return "a positive number" + (" (inf allowed)" if allow_inf else "")
    if low == -math.inf and high == math.inf:
        return kind
    if high == math.inf:
        return f"{kind} {'>' if low_open else '>='} {low:g}"
    if low == -math.inf:
        return f"{kind} {'<' if high_open else '<='} {high:g}"
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    return f"a number in {left}{low:g}, {high:g}{right}"


def check_int(name: str, value: Any, *, minimum: int = 0, maximum: float = math.inf) -> int:
    """``value`` as an int in ``[minimum, maximum]``, or raise.

    Python and numpy integers are accepted; bools, floats and strings are not (an
    integer-valued float is accepted only as a budget, see :func:`check_budget`).

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : int or numpy integer
    minimum, maximum : int
        The range, both included.

    Returns
    -------
    int

    Raises
    ------
    OptionTypeError
        If ``value`` is not an integer.
    InvalidOptionError
        If it is out of range.

    Examples
    --------
    >>> check_int("popsize", np.int64(6), minimum=2)
    6
    """
    expected = f"an integer >= {minimum}" + ("" if maximum == math.inf else f" and <= {maximum}")
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise OptionTypeError(f"{name} must be {expected}; got {_given(value)}")
    n = int(value)
    if not minimum <= n <= maximum:
        raise InvalidOptionError(f"{name} must be {expected}; got {_given(value)}")
    return n


def check_budget(value: Any, name: str = "budget") -> int:
    """A budget (or another count of evaluations or iterations) as a positive int.

    The one budget rule of dfo: Python and numpy integers >= 1, and floats with an
    integer value (``2e4``), are accepted; bools, strings, fractions, nan and inf
    are not.

    Parameters
    ----------
    value : int, numpy integer or float with an integer value
    name : str, default "budget"
        The argument's name, for the message (``max_iter``, ``checkpoint_every``).

    Returns
    -------
    int

    Raises
    ------
    OptionTypeError
        If ``value`` is not a number with an integer value.
    InvalidOptionError
        If it is < 1.

    Examples
    --------
    >>> check_budget(2e4), check_budget(np.int32(5))
    (20000, 5)
    >>> check_budget(0)
    Traceback (most recent call last):
    ...
    dfo.exceptions.InvalidOptionError: budget must be a positive integer; got 0
    """
    if isinstance(value, bool | np.bool_):
        raise OptionTypeError(f"{name} must be a positive integer; got {_given(value)}")
    if isinstance(value, Integral):
        if value < 1:
            raise InvalidOptionError(f"{name} must be a positive integer; got {_given(value)}")
        return int(value)
    if isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer():
        if float(value) < 1:
            raise InvalidOptionError(f"{name} must be a positive integer; got {_given(value)}")
        return int(float(value))
    raise OptionTypeError(f"{name} must be a positive integer; got {_given(value)}")


def check_flag(name: str, value: Any) -> bool:
    """``value`` as a bool: only ``True``, ``False`` and numpy bools are flags.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : bool or a numpy bool

    Returns
    -------
    bool

    Raises
    ------
    OptionTypeError
        For anything else (``1``, ``"yes"``, ``None``).
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise OptionTypeError(f"{name} must be True or False; got {_given(value)}")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices`` (compared by type and value), else raise.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : object
    choices : tuple
        The valid values.

    Returns
    -------
    object
        The matching choice.

    Raises
    ------
    InvalidOptionError
        Naming the choices and suggesting the closest to a misspelt string.
    """
    for c in choices:
        if type(value) is type(c) and value == c:
            return c
    if not any(type(value) is type(c) for c in choices):
        raise OptionTypeError(f"{name} must be {_choice_text(choices)}; got {_given(value)}")
    hint = (
        suggest(value, [c for c in choices if isinstance(c, str)])
        if isinstance(value, str)
        else ""
    )
    raise InvalidOptionError(
        f"{name} must be {_choice_text(choices)}; got {_given(value)}." + hint
    )


def _choice_text(choices: tuple[Any, ...]) -> str:
    names = [repr(c) for c in choices]
    if len(names) <= 2:
        return " or ".join(names)
    return "one of " + ", ".join(names[:-1]) + " or " + names[-1]


# -- kinds: a validator with a description ------------------------------------------------
class Kind:
    """What values an option takes: a check, a description, a command-line parser.

    Subclasses implement :meth:`check` (return the value, converted, or raise) and
    :attr:`expected` (the description used in docs and messages).
    """

    expected: str = "a value"

    def check(self, name: str, value: Any) -> Any:
        return value

    def parse(self, text: str) -> Any:
        """The value a command line's ``text`` stands for (a Python literal, else a string).

        Parameters
        ----------
        text : str
            As typed after ``-o method.key=``.

        Returns
        -------
        object
            Checked afterwards by :meth:`check`, like any value.
        """
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expected!r})"


class RealRange(Kind):
    """A real number in a range (see :func:`check_real`).

    Parameters
    ----------
    low, high : float
        The range.
    low_open, high_open : bool
        Exclude the ends.
    allow_inf : bool
        Accept infinite values (in range).
    """

    def __init__(
        self,
        low: float = -math.inf,
        high: float = math.inf,
        *,
        low_open: bool = False,
        high_open: bool = False,
        allow_inf: bool = False,
    ) -> None:
        self.low, self.high = low, high
        self.low_open, self.high_open, self.allow_inf = low_open, high_open, allow_inf
        self.expected = _real_text(low, high, low_open, high_open, allow_inf)

    def check(self, name: str, value: Any) -> float:
        return check_real(
            name,
            value,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            high_open=self.high_open,
            allow_inf=self.allow_inf,
        )


class PositiveReal(RealRange):
    """A number > 0 (finite unless ``allow_inf``).

    Parameters
    ----------
    allow_inf : bool, default False
        Accept ``inf`` (as a way to turn a check off).
    """

    def __init__(self, *, allow_inf: bool = False) -> None:
        super().__init__(0.0, low_open=True, allow_inf=allow_inf)


class PositiveInt(Kind):
    """An integer >= ``minimum`` (see :func:`check_int`); ``1e4`` on a command line.

    Parameters
    ----------
    minimum : int, default 1
    """

    def __init__(self, minimum: int = 1) -> None:
        self.minimum = minimum
        self.expected = f"an integer >= {minimum}"

    def check(self, name: str, value: Any) -> int:
        return check_int(name, value, minimum=self.minimum)

    def parse(self, text: str) -> Any:
        value = super().parse(text.replace("_", ""))
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        return value


class Flag(Kind):
    """True or False (see :func:`check_flag`); ``true``/``false`` on a command line."""

    expected = "True or False"

    def check(self, name: str, value: Any) -> bool:
        return check_flag(name, value)

    def parse(self, text: str) -> Any:
        low = text.strip().lower()
        return {"true": True, "false": False}.get(low, super().parse(text))


class Choice(Kind):
    """One of a few values (see :func:`check_choice`).

    Parameters
    ----------
    *choices : object
        The valid values.
    """

    def __init__(self, *choices: Any) -> None:
        self.choices = choices
        self.expected = _choice_text(choices)

    def check(self, name: str, value: Any) -> Any:
        return check_choice(name, value, self.choices)

    def parse(self, text: str) -> Any:
        value = super().parse(text)
        return text if isinstance(value, str | int | float) and text in self.choices else value


class Optional(Kind):
    """None (the default chosen by the method), or a value of ``kind``.

    Parameters
    ----------
    kind : Kind
    """

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.expected = f"None or {kind.expected}"

    def parse(self, text: str) -> Any:
        return None if text.strip() == "None" else self.kind.parse(text)

    def check(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            return self.kind.check(name, value)
        except OptionTypeError:
            raise OptionTypeError(f"{name} must be {self.expected}; got {_given(value)}") from None
        except InvalidOptionError as exc:
            if "too large" in str(exc):
                raise
            raise InvalidOptionError(
                f"{name} must be {self.expected}; got {_given(value)}"
            ) from None


class Either(Kind):
    """A value of the first kind that accepts it (``Either(Flag(), Choice("auto"))``).

    Parameters
    ----------
    *kinds : Kind
    """

    def __init__(self, *kinds: Kind) -> None:
        self.kinds = kinds
        self.expected = " or ".join(k.expected for k in kinds)

    def check(self, name: str, value: Any) -> Any:
        errors: list[InvalidOptionError] = []
        for kind in self.kinds:
            try:
                return kind.check(name, value)
            except InvalidOptionError as exc:
                errors.append(exc)
        for error in errors:  # the value has the type of this kind, and is out of its range
            if not isinstance(error, OptionTypeError):
                raise error
        raise OptionTypeError(f"{name} must be {self.expected}; got {_given(value)}")

    def parse(self, text: str) -> Any:
        for kind in self.kinds:
            value = kind.parse(text)
            if value != text:
                return value
        return text


class Custom(Kind):
    """A kind checked by a function ``check(name, value) -> value`` (bounds, a dict).

    Parameters
    ----------
    check : callable
        ``check(name, value)`` returns the value (converted) or raises
        :class:`~dfo.exceptions.InvalidOptionError`.
    expected : str
        What it accepts, in words.
    """

    def __init__(self, check: Callable[[str, Any], Any], expected: str) -> None:
        self._check = check
        self.expected = expected

    def check(self, name: str, value: Any) -> Any:
        return self._check(name, value)


def _check_bounds(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) or not (
        hasattr(value, "__len__") or (hasattr(value, "lb") and hasattr(value, "ub"))
    ):
        raise InvalidOptionError(
            f"{name} must be None, scipy.optimize.Bounds, a sequence of (lo, hi) pairs or a "
            f"pair (lower, upper); got {_given(value)}"
        )
    return value  # the rest is checked against x0 (dfo.bounds.parse_bounds)


#: the kind of a ``bounds`` option (its shape is checked against ``x0`` when the optimizer
#: is built, by :func:`dfo.bounds.parse_bounds`)
BOUNDS = Custom(
    _check_bounds, "None, scipy.optimize.Bounds, (lo, hi) pairs or a pair (lower, upper)"
)


def option(default: Any, kind: Kind) -> Any:
    """A field of an :class:`Options` dataclass: its default and its :class:`Kind`.

    Parameters
    ----------
    default : object
        The option's default (None usually means "the method chooses").
    kind : Kind
        What values it takes.

    Returns
    -------
    dataclasses.Field
    """
    return dataclasses.field(default=default, metadata={"kind": kind})


T = TypeVar("T")


def declare_options(cls: type[T]) -> type[T]:
    """Class decorator: make ``cls`` a frozen dataclass of options, documented.

    The docstring gets an *Attributes* section listing every option with its kind
    and default, so the declaration is its own documentation.

    Parameters
    ----------
    cls : type
        A subclass of :class:`Options` whose fields are made with :func:`option`.

    Returns
    -------
    type
        The dataclass.
    """
    dc = dataclasses.dataclass(frozen=True)(cls)
    lines = ["", "", "Attributes", "----------"]
    for f in dataclasses.fields(dc):  # type: ignore[arg-type]
        kind = f.metadata.get("kind")
        expected = kind.expected if kind is not None else "object"
        lines += [f"{f.name} : {expected}", f"    Default {f.default!r}."]
    dc.__doc__ = inspect.cleandoc(dc.__doc__ or dc.__name__) + "\n".join(lines)
    return dc


# -- the declaration ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Options:
    """Base of every method's options: a frozen dataclass of :func:`option` fields.

    Construction checks every field with its kind and stores the converted value
    (``2`` becomes ``2.0`` for a real); :meth:`check` is a hook for rules that
    involve several fields. :meth:`build` is the checked constructor from a dict
    of keyword options (unknown names are refused with the closest valid names).
    """

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            kind = f.metadata.get("kind")
            if kind is not None:
                object.__setattr__(self, f.name, kind.check(f.name, getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Hook: raise :class:`~dfo.exceptions.InvalidOptionError` for bad combinations."""

    @classmethod
    def names(cls) -> list[str]:
        """The option names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Option name to default, in declaration order."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    @classmethod
    def kinds(cls) -> dict[str, Kind]:
        """Option name to its :class:`Kind`."""
        return {
            f.name: f.metadata["kind"] for f in dataclasses.fields(cls) if "kind" in f.metadata
        }

    @classmethod
    def build(cls, options: Mapping[str, Any], method: str = "") -> Options:
        """Checked options from keyword options; unknown names raise.

        ``method`` names the method in messages.

        Raises
        ------
        InvalidOptionError
            For an unknown name (with the closest valid names) or a bad value.
        OptionTypeError
            For a value of the wrong type.
        """
        valid = cls.names()
        for key in options:
            if key not in valid:
                what = f" for method {method!r}" if method else ""
                raise InvalidOptionError(
                    f"unknown option {key!r}{what}; valid options are {sorted(valid)}."
                    + suggest(str(key), valid)
                )
        return cls(**options)

    def as_dict(self) -> dict[str, Any]:
        """Option name to value (the checked values, not copies)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def identity(self) -> dict[str, Any]:
        """The options as canonical JSON data (see :func:`to_json`): a run's identity."""
        return {key: to_json(value) for key, value in self.as_dict().items()}


# -- canonical JSON -----------------------------------------------------------------------
def to_json(value: Any) -> Any:
    """``value`` as JSON data that is the same in every process.

    Numbers, strings, bools and None stay; inf and nan become the strings ``"inf"``,
    ``"-inf"``, ``"nan"``; tuples and arrays become lists; dicts get sorted string keys;
    a step rule becomes its name and parameters
    (:func:`dfo.optimizers.step_rules.describe`); a function its qualified name; any
    other object its type's qualified name and its attributes. Never a repr holding a
    memory address.

    Parameters
    ----------
    value : object

    Returns
    -------
    JSON data (None, bool, int, float, str, list or dict)

    Examples
    --------
    >>> from dfo.optimizers.step_rules import momentum
    >>> to_json({"b": (1, np.float64(2.5)), "a": momentum(beta=0.5)})
    {'a': {'beta': 0.5, 'name': 'momentum', 'nesterov': False}, 'b': [1, 2.5]}
    """
    from dfo.optimizers.step_rules import StepRule, describe

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        x = float(value)
        return x if math.isfinite(x) else str(x)
    if isinstance(value, StepRule):
        return to_json(describe(value))
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json(value[k]) for k in sorted(value, key=str)}
    qualname = getattr(value, "__qualname__", None)
    if callable(value) and qualname is not None:
        return f"{getattr(value, '__module__', '?')}.{qualname}"
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    attrs = getattr(value, "__dict__", None)
    if attrs is None and hasattr(type(value), "__slots__"):
        attrs = {s: getattr(value, s) for s in type(value).__slots__ if hasattr(value, s)}
    return {"type": kind, **({} if attrs is None else to_json(dict(attrs)))}


def canonical(data: Any) -> str:
    """``data`` (see :func:`to_json`) as one canonical JSON string (sorted, compact).

    Parameters
    ----------
    data : object

    Returns
    -------
    str
    """
    return json.dumps(to_json(data), sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(array: np.ndarray) -> str:
    """A short hash of an array's shape, dtype and bytes (``x0`` in a run's identity).

    Parameters
    ----------
    array : ndarray

    Returns
    -------
    str
        16 hexadecimal digits of its SHA-256.
    """
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()[:16]
