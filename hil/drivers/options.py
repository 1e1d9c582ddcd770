"""Driver options from a rack file: a frozen dataclass whose fields are the option keys.

Shared by every driver role (reset, power, flashers): a typo in an option (``ofset``) or a value
of the wrong type fails with one line naming the field, the same way everywhere.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union

from hil.errors import ConfigError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a driver that takes none."""


def parse_options(options_type: type[T], options: Mapping[str, Any], *, where: str) -> T:
    """Build a frozen options dataclass from a config mapping, one clear error per bad field.

    Unknown keys are errors (a misspelt ``ofset`` must not silently fall back to a default);
    types are checked against the field annotations (``int``, ``float``, ``str``, ``bool``,
    ``Path``, ``tuple[str, ...]``, optional ``X | None``); a ``__post_init__`` may add its own
    checks by raising ``ValueError``, which becomes a ``ConfigError`` here.
    """
    fields = {f.name: f for f in dataclasses.fields(options_type)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(options_type)
    unknown = sorted(set(options) - set(fields))
    if unknown and not fields:
        raise ConfigError(f"takes no options, got {unknown[0]!r}", where=where)
    if unknown:
        allowed = ", ".join(sorted(fields))
        raise ConfigError(f"unknown option {unknown[0]!r} (allowed: {allowed})", where=where)
    values: dict[str, Any] = {}
    for name, raw in options.items():
        try:
            values[name] = _coerce(raw, hints[name])
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc), where=f"{where}.{name}") from None
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing required option {missing[0]!r}", where=where)
    try:
        return options_type(**values)
    except ValueError as exc:
        raise ConfigError(str(exc), where=where) from None


def _coerce(raw: Any, hint: Any) -> Any:
    """Check one config value against its annotation; convert list -> tuple and str -> Path."""
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(hint)
        if raw is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(raw, inner)
    if origin is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        if not isinstance(raw, (list, tuple)):
            raise TypeError(f"must be a list, not {type(raw).__name__}")
        return tuple(_coerce(x, item) for x in raw)
    if hint is Path:
        if not isinstance(raw, (str, Path)):
            raise TypeError(f"must be a path string, not {type(raw).__name__}")
        return Path(raw).expanduser()
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise TypeError(f"must be a number, not {type(raw).__name__}")
        return float(raw)
    if hint is int and isinstance(raw, bool):
        raise TypeError("must be an integer, not bool")
    if not isinstance(raw, hint):
        raise TypeError(f"must be {hint.__name__}, not {type(raw).__name__}")
    return raw
