"""Client of a virtual board's control socket: its reset button, power switch, cable, card slot
and fault injector, usable from any process (an xdist worker, the CLI, a rack power driver).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hil.deadline import Deadline, wait_for
from hil.errors import ConfigError, SimError
from hil.sim.sockets import connect_unix

#: Exceptions of the board server that mean "this request cannot be done" (no such slot, a bad
#: value, a part the kind lacks): the asker's mistake, not a failing board. ``Unsupported`` is
#: ``hil.sim.hosts``'s ValueError for a part a board kind does not have.
REQUEST_FAULTS = ("ValueError", "Unsupported", "ConfigError")

_FAULT_LABEL = re.compile(r"\s*\[(product|infrastructure|usage) fault\]$")


class SimRefused(ConfigError, SimError):
    """The board server refused a request because of the request itself (``hil sim card vb0
    eject`` on a board without an SD slot): a usage fault. It is a ``SimError`` too, so code
    that handles a virtual board's refusals (and tests that expect them) keeps doing so."""


def refusal(op: str, error: str, where: str) -> SimError:
    """The client's error for the server's refusal ``error`` ("ValueError: board vb0 has no SD
    slot") of ``op``: usage when the request caused it, else the board server's failure."""
    kind, sep, message = error.partition(": ")
    message = _FAULT_LABEL.sub("", message)  # the server's own error said its fault already
    if sep and kind in REQUEST_FAULTS:
        return SimRefused(f"{op} refused: {message}", where=where)
    return SimError(f"{op} refused: {_FAULT_LABEL.sub('', error)}", where=where)


class SimControl:
    """One board's control socket (``<state dir>/<board>/control.sock``)."""

    def __init__(self, board_dir: str | Path, timeout: float = 10.0) -> None:
        self.board_dir = Path(board_dir)
        self.socket_path = self.board_dir / "control.sock"
        self.timeout = timeout

    @property
    def name(self) -> str:
        return self.board_dir.name

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one request and wait (up to ``timeout``) for its answer."""
        try:
            sock = connect_unix(self.socket_path, self.timeout)
        except OSError as e:
            raise SimError(
                f"virtual board control socket unreachable ({e}); is `hil sim start` running?",
                where=str(self.socket_path),
            ) from e
        try:
            with sock:
                sock.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
                reply = bytearray()
                deadline = Deadline(self.timeout)
                while not reply.endswith(b"\n"):
                    sock.settimeout(max(0.01, deadline.remaining))
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise SimError(f"server closed the connection in {op!r}", where=self.name)
                    reply += chunk
        except TimeoutError as e:
            raise SimError(f"no answer to {op!r} within {self.timeout:g}s", where=self.name) from e
        except OSError as e:
            raise SimError(f"control socket failed during {op!r}: {e}", where=self.name) from e
        try:
            answer = json.loads(reply)
        except ValueError as e:
            raise SimError(
                f"unreadable answer to {op!r}: {bytes(reply)[:80]!r}", where=self.name
            ) from e
        if not answer.pop("ok", False):
            raise refusal(op, str(answer.get("error")), self.name)
        return answer

    # --- verbs ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def port(self) -> str:
        """Where the board's serial device is now (it can move on replug)."""
        return str(self.status()["port"])

    def reset(self) -> None:
        """Press the reset button (a hard reset)."""
        self.request("reset")

    def power(self, on: bool) -> None:
        self.request("power", on=on)

    def unplug(self) -> None:
        self.request("unplug")

    def replug(self, new_path: bool = False) -> None:
        self.request("replug", new_path=new_path)

    def card_eject(self, slot: int | None = None) -> None:
        self.request("card_eject", **({} if slot is None else {"slot": slot}))

    def card_insert(self, slot: int | None = None, image: str | Path | None = None) -> Path:
        args: dict[str, Any] = {} if slot is None else {"slot": slot}
        if image is not None:
            args["image"] = str(Path(image).resolve())  # the server's working directory is not ours
        return Path(self.request("card_insert", **args)["image"])

    def card_image(self, slot: int | None = None) -> Path | None:
        cards = self.status()["cards"]
        key = str(slot) if slot is not None else next(iter(cards), None)
        card = cards.get(key) if key is not None else None
        return Path(card["image"]) if card and card["image"] else None

    def fault(self, kind: str, **params: Any) -> None:
        """Inject a fault: stall(seconds), hang, noise(count, rate, seed), drop(count, rate,
        seed), corrupt(rate, count, seed, direction "tx" or "both"), slow_boot(seconds),
        no_raw_paste(style), raw_paste_abort(after). A rate puts drop, noise and corrupt on
        bytes in flight at random positions (see ``hil.sim.faults``)."""
        self.request("fault", kind=kind, **params)

    def clear_faults(self) -> None:
        self.request("clear_faults")

    def set_baud(self, rate: int | None) -> None:
        self.request("baud", rate=rate)

    def erase(self) -> None:
        """Erase the flash filesystem (the board reboots and formats a fresh one)."""
        self.request("erase")

    def flash(
        self, image: str | Path, erase: bool = False, timeout: float = 120.0
    ) -> dict[str, Any]:
        """Write a firmware image into the board's firmware slot; wait until it has booted."""
        before = self.status()["flashes"]
        self.request("flash", image=str(Path(image).resolve()), erase=erase)

        def booted() -> dict[str, Any] | None:
            status = self.status()
            return status if status["flashes"] > before and status["state"] == "ready" else None

        status = wait_for(booted, timeout)
        if status is None:
            raise SimError(f"flashing did not finish within {timeout:g}s", where=self.name)
        return status

    def bootloader(self) -> Path:
        """Put the board in its UF2 bootloader (as BOOTSEL + reset); returns the drive path."""
        return Path(self.request("bootloader")["drive"])

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the board has booted to its prompt (polling its state); a board whose
        host gave up on it ("crashed") fails at once: only a reset or power cycle revives it."""
        last: dict[str, Any] = {}

        def ready() -> dict[str, Any] | None:
            nonlocal last
            try:
                last = self.status()
            except SimError:
                last = {}
            return last if last.get("state") in ("ready", "crashed") else None

        status = wait_for(ready, timeout)
        if status is not None and status["state"] == "crashed":
            raise SimError("the board crashed while booting (see server.log)", where=self.name)
        if status is not None:
            return status
        raise SimError(
            f"board not ready within {timeout:g}s (state {last.get('state', 'unreachable')!r})",
            where=self.name,
        )
