"""The virtual board's flasher: its firmware slot, written through the board's control socket.

A virtual board has no bootloader to talk to over its serial port; what stands for the
programming cable is its control socket, exactly as a USB power switch stands for a power cable.
So this flasher, named ``sim`` in a rack entry, is the one place of ``hil.flash`` that knows
virtual boards exist: everything above it (session start, ``hil flash``) treats the board like
any other.

We ask the board's host process to write the image (``flash`` request, the same one
``SimControl.flash`` sends) and then follow its ``status()``: ``flash_progress`` gives the
``[done, total]`` bytes while the image is written at the modelled rate, and the board's own
``flashes`` counter going up with the board back at its prompt says it booted the new image.
``SimControl.flash`` waits the same way but has no progress to hand out, hence the own loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hil.errors import FlashError, SimError
from hil.flash.base import Flasher, ProgressFn, no_progress, poll_until, wait_for_port
from hil.sim.control import SimControl
from hil.sim.images import read_firmware_info

SIM_PORT_PREFIX = "sim:"


@dataclass(frozen=True)
class SimFlasherOptions:
    """Rack options of the ``sim`` flasher; field names are the rack keys.

    ``board_dir`` is the board's state directory when the rack port does not say it (the port
    is normally ``sim:<board-state-dir>``); ``erase`` wipes the flash filesystem with the write,
    like ``esptool write-flash --erase-all``.
    """

    board_dir: Path | None = None
    erase: bool = False
    timeout: float = 120.0
    poll_interval: float = 0.02

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")


class SimFlasher(Flasher):
    """Writes a virtual-board firmware image into the board's firmware slot and waits for boot."""

    name = "sim"
    options_type: ClassVar[type] = SimFlasherOptions
    options: SimFlasherOptions

    def describe(self) -> str:
        erase = ", erase" if self.options.erase else ""
        return f"sim firmware slot of {self.board} ({self.board_dir()}{erase})"

    def board_dir(self) -> Path:
        """The board's state directory: the option, else the rack port ``sim:<dir>``."""
        if self.options.board_dir is not None:
            return self.options.board_dir
        for spec in (self.target.port_spec, self.target.port):
            if spec and spec.startswith(SIM_PORT_PREFIX) and spec[len(SIM_PORT_PREFIX) :]:
                return Path(spec[len(SIM_PORT_PREFIX) :]).expanduser()
        raise FlashError(
            "the sim flasher needs a virtual board: a rack port sim:<board-state-dir> "
            "or the flasher option board_dir",
            where=self.board,
        )

    def flash(self, image: Path, progress: ProgressFn = no_progress) -> None:
        self.check_image(image)
        data = self._read_image(image)
        control = SimControl(self.board_dir())
        before = self._status(control)["flashes"]
        progress(0, len(data))
        try:
            control.request("flash", image=str(image.resolve()), erase=self.options.erase)
        except SimError as exc:
            raise FlashError(
                f"the virtual board refused the image: {exc.what}", where=self.board
            ) from None

        def booted() -> dict[str, Any] | None:
            status = self._status(control)
            if status.get("flash_progress"):
                done, total = status["flash_progress"]
                progress(int(done), int(total))
            if status["flashes"] > before and status["state"] == "ready":
                return status
            return None

        poll_until(
            booted,
            timeout=self.options.timeout,
            interval=self.options.poll_interval,
            what="the virtual board to write the image and boot it",
            where=self.board,
        )
        progress(len(data), len(data))
        wait_for_port(
            self.target, timeout=self.options.timeout, interval=self.options.poll_interval
        )

    def _read_image(self, image: Path) -> bytes:
        """The image bytes, refused before the board is touched unless it is a virtual firmware."""
        try:
            data = image.read_bytes()
        except OSError as exc:
            raise FlashError(f"cannot read firmware image: {exc}", where=str(image)) from None
        try:
            read_firmware_info(data)
        except SimError as exc:
            raise FlashError(f"{image.name}: {exc.what}", where=self.board) from None
        return data

    def _status(self, control: SimControl) -> dict[str, Any]:
        try:
            return control.status()
        except SimError as exc:
            raise FlashError(f"virtual board unreachable: {exc}", where=self.board) from None
