"""What a user may give the virtual boards (``hil sim`` options, ``hil.sim.start`` arguments,
control requests), each checked where it enters: a bad value is a one-line usage error
(``ConfigError``) naming the option and the value, never a board that dies of it later.

Why one module: the CLI (as argparse ``type=`` functions), ``hil.sim.start``, the control
socket's verbs and the pytest plugin's options (``hil.options``: ``--hil-sim``,
``--hil-sim-baud``, ``--hil-lease-timeout``) accept the same kinds of numbers, and must refuse
the same bad ones (``nan`` seconds, ``-5`` baud, ``0`` boards, ``12Q`` bytes). It needs nothing
but the standard library and ``hil.errors``: the board server and ``hil sim`` run without pytest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hil.errors import ConfigError
from hil.sim import images

#: Upper bounds that keep a typo from exhausting the machine (a board is a process and a pty).
MAX_BOARDS = 256
MAX_BAUD = 100_000_000


def _number(text: Any, what: str, kind: type, noun: str = "") -> Any:
    noun = noun or ("a whole number" if kind is int else "a number")
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be {noun}, not {text!r}")
    try:
        value = kind(text)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{what} must be {noun}, not {text!r}") from None
    if kind is int and isinstance(text, float) and value != text:
        raise ConfigError(f"{what} must be a whole number, not {text!r}")
    return value


def integer(text: Any, what: str, *, low: int = 0, high: int | None = None) -> int:
    """A whole number in ``[low, high]``."""
    value = _number(text, what, int)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{what} must be {bound}, not {text!r}")
    return value


def seconds(text: Any, what: str, *, zero: bool = True) -> float:
    """A finite number of seconds, positive (or also 0 with ``zero``)."""
    value = _number(text, what, float, "a number of seconds")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        sign = "non-negative" if zero else "positive"
        raise ConfigError(f"{what} must be a {sign}, finite number of seconds, not {text!r}")
    return value


def size(text: Any, what: str) -> int:
    """A size in bytes: ``512K``, ``64M``, ``1G`` or plain bytes."""
    try:
        return images.parse_size(text if isinstance(text, int) else str(text))
    except ValueError as e:
        raise ConfigError(f"{what}: {e}") from None


def count(text: Any, what: str = "the number of boards (-n/--count)") -> int:
    """How many boards to start."""
    return integer(text, what, low=1, high=MAX_BOARDS)


def baud(text: Any, what: str = "the baud rate") -> int:
    """A UART speed in bits per second (positive)."""
    return integer(text, what, low=1, high=MAX_BAUD)


def arg(check: Callable[..., Any], *what: str, **options: Any) -> Callable[[str], Any]:
    """``check`` as an argparse ``type=``: its ConfigError reaches the ``hil`` command's handler
    (one line, "[usage fault]") instead of argparse's usage text."""

    def convert(text: str) -> Any:
        return check(text, *what, **options)

    convert.__name__ = getattr(check, "__name__", "value")
    return convert


#: Numeric parameters of the ``fault`` verb, and whether each is a whole number.
FAULT_NUMBERS = {"seconds": False, "count": True, "after": True}


def fault_params(params: dict[str, Any]) -> dict[str, Any]:
    """The ``fault`` verb's numeric parameters checked: finite, not negative."""
    checked = dict(params)
    for name, whole in FAULT_NUMBERS.items():
        if checked.get(name) is None:
            continue
        what = f"the fault's {name}"
        if whole:
            checked[name] = integer(checked[name], what)
        else:
            checked[name] = seconds(checked[name], what)
    return checked
