"""Flashers that run a vendor tool: dfu-util (stm32 and other DFU boards) and picotool (rp2).

Each tool runs from an argument list (never a shell: rack options are data, not commands), with a
deadline after which it is killed, and its stdout is scanned for the percentages these tools print
so the board's progress bar moves. A failure names the board and ends with the last lines the
tool wrote to stderr, which is where both tools say what went wrong.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import threading
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

from hil.errors import FlashError
from hil.flash.base import (
    Flasher,
    ProgressFn,
    enter_bootloader,
    no_progress,
    poll_until,
    wait_for_port,
)

_PERCENT = re.compile(rb"(\d{1,3})\s*%")
_TAIL_BYTES = 4096
_TAIL_LINES = 6
_PROBE_TIMEOUT = 10.0


def _tail_lines(data: bytes) -> str:
    """The last few non-empty lines of tool output, on one line (errors stay one line)."""
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    return " | ".join(lines[-_TAIL_LINES:])


class _Reader(threading.Thread):
    """Drains one pipe so the tool never blocks on a full pipe; keeps the tail, sees percentages."""

    def __init__(self, stream: IO[bytes], on_percent: Callable[[int], None] | None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.on_percent = on_percent
        self.tail: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._carry = b""

    def run(self) -> None:
        while chunk := self.stream.read1(4096):  # type: ignore[attr-defined]
            self.tail.append(chunk)
            self._size += len(chunk)
            while self._size > _TAIL_BYTES and len(self.tail) > 1:
                self._size -= len(self.tail.popleft())
            if self.on_percent is not None:
                self._percentages(chunk)

    def _percentages(self, chunk: bytes) -> None:
        """Report every percentage in order; a number split across two reads is kept whole."""
        text = self._carry + chunk
        end = 0
        for match in _PERCENT.finditer(text):
            self.on_percent(min(100, int(match.group(1))))  # type: ignore[misc]
            end = match.end()
        self._carry = text[end:][-8:]

    def text(self) -> bytes:
        return b"".join(self.tail)


def run_tool(
    argv: list[str],
    *,
    timeout: float,
    where: str,
    on_percent: Callable[[int], None] | None = None,
) -> None:
    """Run a tool to completion or kill it at ``timeout``; ``FlashError`` with its stderr tail."""
    name = Path(argv[0]).name
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise FlashError(f"cannot run {name}: {exc}", where=where) from None
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Reader(proc.stdout, on_percent), _Reader(proc.stderr, None)
    out.start()
    err.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    finally:
        out.join(timeout=5)
        err.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    tail = _tail_lines(err.text()) or _tail_lines(out.text())
    said = f"; {name} said: {tail}" if tail else ""
    if code is None:
        raise FlashError(f"{name} did not finish within {timeout:g}s, killed{said}", where=where)
    if code != 0:
        raise FlashError(f"{name} exited with status {code}{said}", where=where)


def _probe(argv: list[str], marker: bytes) -> bool:
    """Whether a listing command finds the device: exit 0 and ``marker`` in its output."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and marker in done.stdout


class ExternalToolFlasher(Flasher):
    """Shared flow: find the tool, put the board in its bootloader, run, wait for the port."""

    #: What the probe command prints once the bootloader is there (b"" when its status says it).
    probe_marker: ClassVar[bytes] = b""

    @abstractmethod
    def argv(self, tool: str, image: Path) -> list[str]:
        """The command that writes ``image``."""

    @abstractmethod
    def probe_argv(self, tool: str) -> list[str]:
        """A command that succeeds once the board's bootloader is reachable."""

    def tool_path(self) -> str:
        found = shutil.which(self.options.tool)
        if found is None:
            raise FlashError(
                f"{self.options.tool} not found (install it, or set the rack option 'tool')",
                where=self.board,
            )
        return found

    def flash(self, image: Path, progress: ProgressFn = no_progress) -> None:
        self.check_image(image)
        tool = self.tool_path()
        argv = self.argv(tool, image)
        if enter_bootloader(self.target):
            probe = self.probe_argv(tool)
            poll_until(
                lambda: _probe(probe, self.probe_marker),
                timeout=self.options.bootloader_timeout,
                interval=self.options.poll_interval,
                what=f"the board's bootloader to show up in {' '.join(probe)}",
                where=self.board,
            )
        total = image.stat().st_size
        progress(0, total)
        run_tool(
            argv,
            timeout=self.options.timeout,
            where=self.board,
            on_percent=lambda pct: progress(total * pct // 100, total),
        )
        progress(total, total)
        wait_for_port(
            self.target, timeout=self.options.port_timeout, interval=self.options.poll_interval
        )


def _check_timeouts(*values: float) -> None:
    if any(v <= 0 for v in values):
        raise ValueError("timeouts and poll_interval must be positive")


@dataclass(frozen=True)
class DfuUtilOptions:
    """Rack options of a DFU board. ``device`` is ``vid:pid``; ``serial`` picks one of many.

    ``.dfu`` files carry their own addresses; a ``.bin`` needs ``address`` (0x08000000 for
    most stm32). ``leave`` makes the board start the new firmware when done.
    """

    tool: str = "dfu-util"
    device: str | None = "0483:df11"
    serial: str | None = None
    alt: int = 0
    address: int | None = None
    leave: bool = True
    timeout: float = 120.0
    bootloader_timeout: float = 20.0
    port_timeout: float = 30.0
    poll_interval: float = 0.2

    def __post_init__(self) -> None:
        _check_timeouts(
            self.timeout, self.bootloader_timeout, self.port_timeout, self.poll_interval
        )
        if self.device is not None and not re.fullmatch(
            r"[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", self.device
        ):
            raise ValueError(f"device must be vid:pid in hex, e.g. 0483:df11, not {self.device!r}")


class DfuUtilFlasher(ExternalToolFlasher):
    """stm32 (pyboard) and other DFU bootloaders, through dfu-util."""

    name = "dfu-util"
    options_type: ClassVar[type] = DfuUtilOptions
    image_suffixes = (".dfu", ".bin")
    probe_marker = b"Found DFU"
    options: DfuUtilOptions

    def _selection(self) -> list[str]:
        argv = []
        if self.options.device:
            argv += ["-d", self.options.device]
        if self.options.serial:
            argv += ["-S", self.options.serial]
        return argv

    def argv(self, tool: str, image: Path) -> list[str]:
        o = self.options
        argv = [tool, "-a", str(o.alt), *self._selection()]
        leave = ":leave" if o.leave else ""
        if image.suffix.lower() == ".bin":
            if o.address is None:
                raise FlashError(
                    "a .bin image needs the rack option 'address' (e.g. 0x08000000)",
                    where=self.board,
                )
            argv += ["-s", f"0x{o.address:08x}{leave}"]
        elif leave:
            argv += ["-s", leave]
        return [*argv, "-D", str(image)]

    def probe_argv(self, tool: str) -> list[str]:
        return [tool, "-l", *self._selection()]

    def describe(self) -> str:
        return f"dfu-util on {self.board} ({self.options.device or 'any device'})"


@dataclass(frozen=True)
class PicotoolOptions:
    """Rack options of a board flashed by picotool; ``serial`` needs picotool 2."""

    tool: str = "picotool"
    serial: str | None = None
    bus: int | None = None
    address: int | None = None
    verify: bool = True
    execute: bool = True
    timeout: float = 120.0
    bootloader_timeout: float = 20.0
    port_timeout: float = 30.0
    poll_interval: float = 0.2

    def __post_init__(self) -> None:
        _check_timeouts(
            self.timeout, self.bootloader_timeout, self.port_timeout, self.poll_interval
        )


class PicotoolFlasher(ExternalToolFlasher):
    """rp2 boards in BOOTSEL mode, through picotool (over USB, not the mass-storage drive)."""

    name = "picotool"
    options_type: ClassVar[type] = PicotoolOptions
    image_suffixes = (".uf2", ".elf")
    options: PicotoolOptions

    def _selection(self) -> list[str]:
        o = self.options
        argv = []
        if o.bus is not None:
            argv += ["--bus", str(o.bus)]
        if o.address is not None:
            argv += ["--address", str(o.address)]
        if o.serial:
            argv += ["--ser", o.serial]
        return argv

    def argv(self, tool: str, image: Path) -> list[str]:
        flags = (["-v"] if self.options.verify else []) + (["-x"] if self.options.execute else [])
        return [tool, "load", *flags, str(image), *self._selection()]

    def probe_argv(self, tool: str) -> list[str]:
        return [tool, "info", *self._selection()]

    def describe(self) -> str:
        return f"picotool on {self.board}"
