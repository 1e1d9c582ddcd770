"""Reset and power drivers, picked by a rack entry's ``reset`` and ``power`` fields.

Each is a small function: the rack names the method, the harness calls it when a board must be
reset hard or brought back. Only these drivers know how a board is wired (a control socket of a
virtual board, a command for a USB hub, DTR/RTS lines); the REPL layers above never do.
"""

from __future__ import annotations

import subprocess
import time

from hil.board import Board as BoardLink
from hil.errors import InfrastructureError
from hil.rack import Board as RackBoard
from hil.rack import is_command

COMMAND_TIMEOUT = 60.0


def hard_reset(entry: RackBoard, link: BoardLink | None, *, timeout: float = 20.0) -> None:
    """Reset ``entry`` hard as its rack entry says, then re-enter the raw REPL on ``link``."""
    method = entry.reset
    if method == "machine.reset" and link is not None:
        link.hard_reset(timeout=timeout)
        return
    if method == "soft" and link is not None:
        link.soft_reset(timeout=timeout)
        return
    if method == "sim":
        _sim_control(entry).reset()
    elif method == "dtr-rts" and link is not None:
        _pulse_dtr_rts(link)
    elif is_command(method):
        _run(entry, "reset", list(method))  # type: ignore[arg-type]
    else:
        raise InfrastructureError(f"cannot reset hard with method {method!r}", where=entry.id)
    if link is not None:
        link.repl.reconnect(timeout)


def power_cycle(entry: RackBoard, link: BoardLink | None, *, timeout: float = 30.0) -> bool:
    """Power-cycle ``entry`` if its rack entry says how; False when it cannot be done."""
    method = entry.power
    if method is None:
        return False
    if method == "sim":
        control = _sim_control(entry)
        control.power(False)
        control.power(True)
    elif is_command(method):
        _run(entry, "power", list(method))  # type: ignore[arg-type]
    else:
        return False
    if link is not None:
        link.repl.reconnect(timeout)
    return True


def _sim_control(entry: RackBoard):  # -> SimControl (imported lazily: real racks need no sim)
    from hil.sim.control import SimControl

    spec = entry.port_spec
    if spec.kind != "sim":
        raise InfrastructureError(
            f"reset/power method 'sim' needs a 'sim:' port, not {entry.port!r}", where=entry.id
        )
    return SimControl(spec.value)


def _pulse_dtr_rts(link: BoardLink) -> None:
    """The esptool way to reset an ESP board behind a USB-UART bridge (EN via RTS)."""
    port = link.transport.port
    if port is None:
        raise InfrastructureError("port closed, cannot pulse DTR/RTS", where=link.name)
    try:
        port.dtr = False  # type: ignore[attr-defined]
        port.rts = True  # type: ignore[attr-defined]
        time.sleep(0.1)  # hold EN low long enough for the chip to reset (esptool uses 100 ms)
        port.rts = False  # type: ignore[attr-defined]
    except (OSError, ValueError) as e:  # serial.SerialException is an OSError
        raise InfrastructureError(f"could not pulse DTR/RTS: {e}", where=link.name) from e


def _run(entry: RackBoard, what: str, argv: list[str]) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InfrastructureError(f"{what} command {argv} failed: {e}", where=entry.id) from e
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InfrastructureError(
            f"{what} command {argv} exited with {done.returncode}: {' | '.join(tail)}",
            where=entry.id,
        )
