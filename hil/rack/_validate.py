"""Field validation shared by the rack's configuration classes.

Configuration is validated by constructing it: each frozen dataclass checks its own fields in
``__post_init__`` and raises :class:`InvalidField` naming the field. The loader knows the file and
the board and adds them, so the user sees one line that points at the exact spot to fix, e.g.
``rack.toml: board 'esp32-a': field 'port': expected a string, got 3``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from typing import TypeVar

from hil.errors import ConfigError

T = TypeVar("T")

#: A board id: it names the board's lock and quarantine files, so it must be a safe file name.
BOARD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

#: Longest rendering of a bad value in an error message; the message must stay one line.
_MAX_VALUE_CHARS = 60


class InvalidField(ConfigError):
    """A configuration field has a bad value; ``field`` is its dotted path (``pins.cs``).

    Raised by the dataclasses themselves, so that Python callers get the same message as the TOML
    loader, which re-raises it as a plain :class:`ConfigError` with the file and board in front.
    """

    def __init__(self, field: str, problem: str, *, where: str = "") -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"field '{field}': {problem}", where=where)

    def within(self, prefix: str) -> InvalidField:
        """The same error, seen from the enclosing table ``prefix``."""
        return InvalidField(f"{prefix}.{self.field}", self.problem, where=self.where)


def describe(value: object) -> str:
    """Render a bad value the way the user wrote it in TOML, short enough for one line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "an array"
    elif isinstance(value, Mapping):
        text = "a table"
    else:
        text = repr(value)
    text = " ".join(text.split())
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


def expect_str(field: str, value: object, *, allow_empty: bool = False) -> str:
    """Check that ``value`` is a (non-empty) string."""
    if not isinstance(value, str):
        raise InvalidField(field, f"expected a string, got {describe(value)}")
    if not allow_empty and not value.strip():
        raise InvalidField(field, "must not be empty")
    return value


def expect_int(field: str, value: object, *, minimum: int | None = None) -> int:
    """Check that ``value`` is an integer (``true`` is not 1 here) and not below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(field, f"expected an integer, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise InvalidField(field, f"must be at least {minimum}, got {value}")
    return value


def expect_choice(field: str, value: object, choices: tuple[str, ...]) -> str:
    """Check that ``value`` is one of ``choices``; a near miss is named in the message."""
    expect_str(field, value)
    assert isinstance(value, str)
    if value not in choices:
        raise InvalidField(field, f"unknown value {value!r}{_suggest(value, choices)}")
    return value


def expect_str_list(field: str, value: object, *, unique: bool = False) -> tuple[str, ...]:
    """Check that ``value`` is an array of non-empty strings; returns it as a tuple.

    A bare string is refused: iterating it would silently give its characters.
    """
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InvalidField(field, f"expected an array of strings, got {describe(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidField(f"{field}[{index}]", f"expected a string, got {describe(item)}")
        if not item.strip():
            raise InvalidField(f"{field}[{index}]", "must not be empty")
    if unique:
        seen: set[str] = set()
        for index, item in enumerate(value):
            if item in seen:
                raise InvalidField(f"{field}[{index}]", f"duplicate value {item!r}")
            seen.add(item)
    return tuple(value)


def _suggest(value: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f" (expected one of: {', '.join(choices)}){hint}"


def from_table(cls: type[T], table: object, field: str = "") -> T:
    """Build dataclass ``cls`` from a TOML table, refusing unknown and missing keys.

    ``field`` is the dotted path of this table inside the enclosing object, for error messages.
    Nested tables are converted by the enclosing class itself (see :func:`nested`), so Python
    callers may pass either a mapping or an instance.
    """
    if isinstance(table, cls):
        return table
    where = field or "(top level)"
    if not isinstance(table, Mapping):
        raise InvalidField(where, f"expected a table, got {describe(table)}")
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    prefix = f"{field}." if field else ""
    for key in table:
        if key not in names:
            raise InvalidField(f"{prefix}{key}", f"unknown key{_suggest(str(key), names)}")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.init and required and f.name not in table:
            raise InvalidField(f"{prefix}{f.name}", "missing (this key is required)")
    try:
        return cls(**table)
    except InvalidField as error:
        raise (error.within(field) if field else error) from None


def nested(cls: type[T], value: object, field: str) -> T:
    """Accept an instance of ``cls`` or a table to build one from (for a nested dataclass field)."""
    return from_table(cls, value, field)
