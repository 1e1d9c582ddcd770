"""ESP32-family and ESP8266 boards, flashed through esptool's Python API.

We call ``esptool.main(argv)`` with an argument list rather than composing ``esptool.cmds``
ourselves: the argument list is esptool's most stable public contract (4.x and 5.x alike, modulo
the 5.x hyphenated spellings handled below), it keeps esptool's own connect/stub/verify logic, and
it is exactly what a test can capture at the API boundary. Progress and messages come through
esptool 5's pluggable logger: one router, installed once, hands each flashing thread's progress to
that thread's callback and keeps its recent messages for the error text.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hil.errors import FlashError
from hil.flash.base import Flasher, ProgressFn, no_progress, wait_for_port

#: Where MicroPython's ESP images go, per chip (its download page says so per board).
DEFAULT_OFFSETS = {"esp32": 0x1000, "esp32s2": 0x1000}
CHIPS = frozenset(
    {
        "auto",
        "esp8266",
        "esp32",
        "esp32s2",
        "esp32s3",
        "esp32c2",
        "esp32c3",
        "esp32c5",
        "esp32c6",
        "esp32c61",
        "esp32h2",
        "esp32p4",
    }
)
BEFORE = frozenset({"default-reset", "usb-reset", "no-reset", "no-reset-no-sync"})
AFTER = frozenset({"hard-reset", "soft-reset", "no-reset", "no-reset-stub", "watchdog-reset"})
_TAIL_LINES = 12


@dataclass(frozen=True)
class EsptoolOptions:
    """Rack options of an esptool board; field names are the rack keys."""

    chip: str = "auto"
    port: str | None = None
    baud: int = 460800
    offset: int | None = None
    erase: bool = False
    before: str = "default-reset"
    after: str = "hard-reset"
    port_timeout: float = 20.0

    def __post_init__(self) -> None:
        if self.chip not in CHIPS:
            raise ValueError(f"unknown chip {self.chip!r} (known: {', '.join(sorted(CHIPS))})")
        if self.offset is None and self.chip == "auto":
            raise ValueError("offset is required when chip is 'auto'")
        if self.offset is not None and self.offset < 0:
            raise ValueError("offset must not be negative")
        if self.baud <= 0:
            raise ValueError("baud must be positive")
        if self.before not in BEFORE:
            raise ValueError(f"before must be one of {', '.join(sorted(BEFORE))}")
        if self.after not in AFTER:
            raise ValueError(f"after must be one of {', '.join(sorted(AFTER))}")

    @property
    def flash_offset(self) -> int:
        if self.offset is not None:
            return self.offset
        return DEFAULT_OFFSETS.get(self.chip, 0)


def esptool_major() -> int:
    """The installed esptool's major version (argument spellings differ between 4 and 5)."""
    import esptool

    return int(str(esptool.__version__).split(".")[0])


def esptool_argv(options: EsptoolOptions, port: str, image: Path, *, major: int = 5) -> list[str]:
    """The argument list esptool gets for one flash: pure, so tests and logs can show it."""

    def spell(word: str) -> str:
        # esptool 4 spells commands and reset modes with underscores, esptool 5 with hyphens.
        return word if major >= 5 else word.replace("-", "_")

    argv = ["--chip", options.chip, "--port", port, "--baud", str(options.baud)]
    argv += ["--before", spell(options.before), "--after", spell(options.after)]
    argv.append(spell("write-flash"))
    if options.erase:
        argv.append("--erase-all")
    argv += [f"0x{options.flash_offset:x}", str(image)]
    return argv


class EsptoolFlasher(Flasher):
    """Writes a ``.bin`` image at an offset, optionally erasing the whole flash first."""

    name = "esptool"
    options_type: ClassVar[type] = EsptoolOptions
    image_suffixes = (".bin",)
    options: EsptoolOptions

    def describe(self) -> str:
        o = self.options
        erase = ", erase all" if o.erase else ""
        return f"esptool {o.chip} on {self.port} at {o.baud} baud, 0x{o.flash_offset:x}{erase}"

    @property
    def port(self) -> str:
        port = self.options.port or self.target.port
        if not port:
            raise FlashError(
                "esptool needs a serial port (rack 'port' or the board's)", where=self.board
            )
        return port

    def flash(self, image: Path, progress: ProgressFn = no_progress) -> None:
        self.check_image(image)
        try:
            import esptool
        except ImportError:
            raise FlashError(
                "esptool is not installed (pip install 'mpy-hil[flash]')", where=self.board
            ) from None
        argv = esptool_argv(self.options, self.port, image, major=esptool_major())
        total = image.stat().st_size
        progress(0, total)
        sink = _Sink(progress)
        with _route_to(sink):
            try:
                esptool.main(argv)
            except SystemExit as exc:  # click usage errors exit; a flasher must raise instead
                raise FlashError(
                    f"esptool exited with {exc.code}{sink.tail_text()}", where=self.board
                ) from None
            except Exception as exc:  # esptool's FatalError, pyserial's SerialException, ...
                said = " ".join(str(exc).split())  # esptool's messages span lines; ours do not
                raise FlashError(
                    f"esptool failed: {type(exc).__name__}: {said}{sink.tail_text()}",
                    where=self.board,
                ) from exc
        progress(total, total)
        wait_for_port(self.target, timeout=self.options.port_timeout)


# -- esptool 5 logger routing --------------------------------------------------------------------


class _Sink:
    """Collects one flashing thread's esptool progress and recent messages."""

    def __init__(self, progress: ProgressFn) -> None:
        self.progress = progress
        self.lines: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)

    def message(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self.lines.append(line.strip())

    def tail_text(self) -> str:
        return f"; esptool said: {' | '.join(self.lines)}" if self.lines else ""


_local = threading.local()
_install_lock = threading.Lock()
_installed = False


@contextlib.contextmanager
def _route_to(sink: _Sink) -> Iterator[_Sink]:
    """Send this thread's esptool log calls to ``sink`` for the duration of the block."""
    _install_router()
    previous = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = previous


def _install_router() -> None:
    """Install the routing logger into esptool once per process (esptool 5 only).

    esptool's logger is a process-wide singleton, so per-flash swapping would race between
    boards flashed in parallel; a single router that dispatches on the calling thread does not.
    With esptool 4 (no pluggable logger) flashing works the same, only without live progress.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        try:
            from esptool.logger import TemplateLogger, log
        except ImportError:
            return
        router = type("_EsptoolRouter", (_RouterMixin, TemplateLogger), {})()
        try:
            log.set_logger(router)
        except (AttributeError, TypeError):  # someone else installed their own logger
            return


class _RouterMixin:
    """The seven methods of esptool's ``TemplateLogger``, dispatched by thread."""

    @staticmethod
    def _sink() -> _Sink | None:
        return getattr(_local, "sink", None)

    def _say(self, text: str, *, stderr: bool = False) -> None:
        sink = self._sink()
        if sink is not None:
            sink.message(text)
        elif stderr:
            print(text, file=sys.stderr)

    def print(self, *args: Any, **kwargs: Any) -> None:
        self._say(" ".join(str(a) for a in args))

    def note(self, message: str) -> None:
        self._say(f"Note: {message}")

    def warning(self, message: str) -> None:
        self._say(f"Warning: {message}", stderr=True)

    def error(self, message: str) -> None:
        self._say(str(message), stderr=True)

    def stage(self, finish: bool = False) -> None:
        pass

    def progress_bar(
        self,
        cur_iter: int,
        total_iters: int,
        prefix: str = "",
        suffix: str = "",
        bar_length: int = 30,
    ) -> None:
        sink = self._sink()
        if sink is not None:
            sink.progress(int(cur_iter), int(total_iters))

    def set_verbosity(self, verbosity: str) -> None:
        pass
