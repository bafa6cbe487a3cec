"""The one parse boundary for values that came over the network.

REST bodies, SSE events and realtime events are all read through :class:`Fields`, so every
field follows the same rules, and every broken value fails the same way:

* A **required** field that is missing, ``null``, of the wrong type, non-finite (``NaN``,
  ``1e999``) or out of range is a :class:`~trio_stt.RemoteProtocolError` naming the field and
  what was there: ``transcription response: 'segments[0].start' should be a finite number
  >= 0, got null``.
* An **optional** field may be missing or ``null``; it then takes its documented default.
  Present with any other wrong value, it is the same error: a hostile value is never guessed
  into a plausible one (``"seconds": "12"`` is not 0, and not 12).
* Unknown fields are ignored, and so are shapes the API says may grow: an event or a usage
  object of a type this version does not know.

``json.loads`` keeps ``NaN`` and ``1e999`` as floats (the raw mappings handed to users keep
them too); they are caught here, where the field's name is known. Sans I/O: no imports but the
standard library and our errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ._errors import RemoteProtocolError

__all__ = ["MAX_EXACT_INT", "Fields", "describe", "load_json"]

MAX_EXACT_INT = 2**53
"""Counts above this cannot round-trip through a float; no honest server sends them."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text[:20]}")
    return value


_finite_decoder = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)


def load_json(
    text: str,
    what: str,
    error: type[RemoteProtocolError] = RemoteProtocolError,
    *,
    finite: bool = False,
) -> Any:
    """Parse *text*; malformed or absurdly nested input is *error*, saying what *what* was.

    With *finite*, ``NaN``, ``Infinity`` and ``1e999`` anywhere are malformed too: for the
    server role, whose configuration code reads numbers without going through :class:`Fields`.
    """
    try:
        return _finite_decoder.decode(text) if finite else json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise error(f"{what} is not valid JSON ({reason}); it begins {text[:80]!r}") from None


def describe(value: Any) -> str:
    """What a JSON value is, for an error message (never the value itself if it is long)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return "an integer" if abs(value) > MAX_EXACT_INT else f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})" if math.isfinite(value) else f"a non-finite number ({value})"
    if isinstance(value, str):
        return f"a string ({value[:20]!r})" if len(value) <= 20 else "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, Mapping) else type(value).__name__


def _finite(value: Any) -> float | None:
    """*value* as a finite float, or ``None`` when it is no such thing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and abs(value) > MAX_EXACT_INT:
        return None  # float() would round it, or overflow
    number = float(value)
    return number if math.isfinite(number) else None


class Fields:
    """One JSON object from the network, read field by field under the module's rules.

    *context* names the whole (``"transcription response"``, ``"server event 'error'"``);
    nested objects extend *path*, so an error names ``usage.input_tokens`` or
    ``segments[3].end``. *error* is the exception class raised, so the realtime core can
    raise its own subclass.
    """

    __slots__ = ("context", "error", "obj", "path")

    def __init__(
        self,
        obj: Mapping[str, Any],
        context: str,
        path: str = "",
        error: type[RemoteProtocolError] = RemoteProtocolError,
    ) -> None:
        self.obj = obj
        self.context = context
        self.path = path
        self.error = error

    @classmethod
    def root(
        cls,
        value: Any,
        context: str,
        error: type[RemoteProtocolError] = RemoteProtocolError,
    ) -> Fields:
        """The top-level object of a message; anything else is an error."""
        if not isinstance(value, Mapping):
            raise error(f"{context} should be a JSON object, got {describe(value)}")
        return cls(value, context, "", error)

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def invalid(self, key: str, expected: str, value: Any) -> RemoteProtocolError:
        return self.error(
            f"{self.context}: {self.name(key)!r} should be {expected}, got {describe(value)}"
        )

    def _child(self, value: Any, path: str) -> Fields:
        if not isinstance(value, Mapping):
            raise self.error(f"{self.context}: {path!r} should be an object, got {describe(value)}")
        return Fields(value, self.context, path, self.error)

    # -------------------------------------------------------------- strings

    def text(self, key: str) -> str:
        value = self.obj.get(key)
        if not isinstance(value, str):
            raise self.invalid(key, "a string", value)
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.obj.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.invalid(key, "a string", value)

    # -------------------------------------------------------------- numbers

    def number(self, key: str, *, signed: bool = False) -> float:
        """A finite number, at least 0 unless *signed* (a log-probability is negative)."""
        value = self.obj.get(key)
        number = _finite(value)
        if number is None or (number < 0 and not signed):
            raise self.invalid(key, "a finite number" + ("" if signed else " >= 0"), value)
        return number

    def optional_number(self, key: str) -> float | None:
        return None if self.obj.get(key) is None else self.number(key)

    def count(self, key: str) -> int:
        """A whole number from 0 to 2**53 (token counts, milliseconds)."""
        value = self.obj.get(key)
        number = _finite(value)
        if number is None or not 0 <= number <= MAX_EXACT_INT or not number.is_integer():
            raise self.invalid(key, f"an integer from 0 to {MAX_EXACT_INT}", value)
        return int(number)

    def optional_count(self, key: str) -> int | None:
        return None if self.obj.get(key) is None else self.count(key)

    # -------------------------------------------------------------- containers

    def optional_object(self, key: str) -> Fields | None:
        value = self.obj.get(key)
        return None if value is None else self._child(value, self.name(key))

    def array(self, key: str) -> list[Any]:
        """An optional array: missing or ``null`` is empty."""
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.invalid(key, "an array", value)
        return value

    def objects(self, key: str) -> list[Fields]:
        """An optional array of objects, each read with its index in the path."""
        return [
            self._child(item, f"{self.name(key)}[{i}]") for i, item in enumerate(self.array(key))
        ]
