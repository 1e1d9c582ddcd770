"""Running a lab's own command for a board (reset line relay, hub power): argument lists only,
a deadline (its own, within the caller's), and a failure that says which command, which board
and what it printed."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hil.deadline import Deadline, as_deadline
from hil.errors import InfrastructureError, escape_text

if TYPE_CHECKING:
    from hil.board import Board as BoardLink


@dataclass(frozen=True)
class CommandOptions:
    """``argv``: the program and its arguments (never a shell line); ``timeout`` in seconds."""

    argv: tuple[str, ...]
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if not self.argv or not all(self.argv):
            raise ValueError("argv needs at least the program name, and no empty arguments")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError("timeout must be a positive number of seconds")


def run_command(
    options: CommandOptions, *, what: str, where: str, deadline: Deadline | None = None
) -> None:
    """Run the command; an infrastructure error when it cannot start, times out or fails.

    It is killed when the earlier of its own ``timeout`` and the caller's ``deadline`` passes
    (a reset inside a recovery gets what the recovery has left, not a budget of its own), and
    the error says which of the two ran out. A caller whose deadline has passed already gets
    the error without the command being run at all: half a relay cycle helps nobody.

    It runs in a session of its own, so that a timeout kills what it started too (a wrapper
    script's tool), not only the wrapper.
    """
    argv = list(options.argv)
    left = deadline.remaining if deadline is not None else math.inf
    budget = deadline.seconds if deadline is not None else math.inf  # the caller's, for messages
    limit, callers = min(options.timeout, left), left < options.timeout
    if limit <= 0:
        raise InfrastructureError(
            f"{what} command {argv} not run: the caller's deadline ({budget:g}s) had run out",
            where=where,
        )
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as e:
        raise InfrastructureError(f"{what} command {argv} failed: {e}", where=where) from e
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except BaseException as e:  # a timeout, or an interrupt: nothing it started outlives it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=5)  # reap it; pipes a detached grandchild holds: let go
        if isinstance(e, subprocess.TimeoutExpired):
            if callers:
                why = (
                    f"killed after {limit:.3g}s: the caller's deadline ({budget:g}s) ran out "
                    f"before the command's own timeout ({options.timeout:g}s)"
                )
            else:
                why = f"timed out after {options.timeout:g}s (its own timeout)"
            raise InfrastructureError(f"{what} command {argv} {why}", where=where) from e
        raise
    if proc.returncode != 0:
        output = (stderr or stdout).decode("utf-8", "replace")
        tail = escape_text(" | ".join(output.strip().splitlines()[-3:]))
        raise InfrastructureError(
            f"{what} command {argv} exited with {proc.returncode}: {tail}", where=where
        )


def run_then_reconnect(
    options: CommandOptions, link: BoardLink | None, *, what: str, where: str, timeout: Any
) -> None:
    """What the ``command`` reset and power drivers both do: the command within the caller's
    ``timeout`` (a ``Deadline`` or seconds) and its own, then the board's return within what is
    left of the caller's."""
    deadline = as_deadline(timeout)
    run_command(options, what=what, where=where, deadline=deadline)
    if link is not None:
        link.repl.reconnect(deadline)
