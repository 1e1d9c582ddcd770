"""Deadlines: one object that every layer passes down instead of doing time arithmetic.

Why one module of its own: the transport, the REPL, the flashers, the leases and the virtual board
all wait for things with a budget. A ``Deadline`` handed down a call chain keeps the *overall*
budget honest (every nested wait takes what is left instead of starting its own clock), and
``wait_for`` is the one polling loop for conditions that give no event (a port coming back, a file
appearing, a lock freeing up).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Deadline:
    """A point in time by which something must happen (``.remaining``, ``.expired``).

    Deadlines are always finite: ``Deadline(float('inf'))`` and ``nan`` are refused, because a
    wait without an end is exactly the hang this project exists to prevent.
    """

    __slots__ = ("_clock", "_end", "seconds")

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not math.isfinite(seconds):
            raise ValueError(f"a deadline must be finite, got {seconds!r}")
        self.seconds = max(float(seconds), 0.0)
        self._clock = clock
        self._end = clock() + self.seconds

    @property
    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(self._end - self._clock(), 0.0)

    @property
    def expired(self) -> bool:
        return self._clock() >= self._end

    def cap(self, seconds: float) -> Deadline:
        """A deadline no later than this one and no later than ``seconds`` from now."""
        return Deadline(min(seconds, self.remaining), clock=self._clock)

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g}s, {self.remaining:.3f}s left)"


def as_deadline(value: Deadline | float) -> Deadline:
    """Accept either seconds or a ``Deadline`` in public signatures."""
    return value if isinstance(value, Deadline) else Deadline(value)


def wait_for(
    probe: Callable[[], T | None],
    deadline: Deadline | float,
    *,
    interval: float = 0.02,
) -> T | None:
    """Call ``probe`` until it returns something truthy, or the deadline passes (then ``None``).

    The caller decides what a timeout means (an infrastructure error, a usage error, a retry), so
    this returns ``None`` instead of raising.
    """
    deadline = as_deadline(deadline)
    while True:
        value = probe()
        if value:
            return value
        if deadline.expired:
            return None
        time.sleep(min(interval, deadline.remaining))
