"""Running a lab's own command for a board (reset line relay, hub power): argument lists only,
a deadline, and a failure that says which command, which board and what it printed."""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass

from hil.errors import InfrastructureError


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


def run_command(options: CommandOptions, *, what: str, where: str) -> None:
    """Run the command; an infrastructure error when it cannot start, times out or fails."""
    argv = list(options.argv)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=options.timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InfrastructureError(f"{what} command {argv} failed: {e}", where=where) from e
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InfrastructureError(
            f"{what} command {argv} exited with {done.returncode}: {' | '.join(tail)}",
            where=where,
        )
