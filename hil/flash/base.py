"""The one interface every flasher offers, and the registry that picks one by name.

A rack entry says *which* flasher a board needs (``flasher = "esptool"``) and with what options
(chip, offset, drive, ...). That data is validated here, by building the flasher's frozen options
dataclass whose fields equal the config keys, so a typo fails at load time with a one-line
``ConfigError`` that names the field, not halfway through a flash.

What a flasher needs from the running rig (how to put *this* board into its bootloader, how to find
its serial port again after it re-enumerates) cannot come from a TOML file; the caller supplies it
as a ``FlashTarget``. Flashers never talk to a REPL themselves: that keeps the layering of
DESIGN.md (flash -> callables given by the board layer).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hil.deadline import Deadline
from hil.drivers import registry
from hil.drivers.options import NoOptions, parse_options
from hil.errors import FlashError

#: ``progress(done, total)``: bytes (or units) done out of a total. Called from the flashing thread.
ProgressFn = Callable[[int, int], None]

T = TypeVar("T")


def no_progress(done: int, total: int) -> None:
    """A progress callback for callers that do not display progress."""


@dataclass(frozen=True)
class FlashTarget:
    """What a flasher may need from the rest of the rig for one board.

    ``enter_bootloader`` asks the running firmware to jump to its bootloader (for MicroPython:
    ``machine.bootloader()`` over the REPL); the board stops answering afterwards, so it is
    expected to return (or raise a link error that the caller swallows) without waiting for a
    prompt. ``resolve_port`` finds the board's serial port again, e.g. by USB serial number,
    because a board that rebooted may come back under another device path; it returns ``None``
    while the port is absent. ``port_spec`` is the rack's ``port`` string as written
    (``usb-serial:...``, ``sim:<board-state-dir>``), for flashers that address the board by
    what the rack says rather than by where its serial device happens to be now.
    """

    board: str
    port: str | None = None
    enter_bootloader: Callable[[], None] | None = None
    resolve_port: Callable[[], str | None] | None = None
    port_spec: str | None = None


def poll_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float,
    what: str,
    where: str,
) -> T:
    """Call ``probe`` until it returns something other than ``None``/false, or fail at the deadline.

    Hardware gives no event for "a drive appeared" or "the port is back", so polling is the
    honest way; the deadline keeps a board that never comes back from hanging the run.
    """
    deadline = Deadline(timeout)
    while True:
        value = probe()
        if value:
            return value
        if deadline.expired:
            raise FlashError(f"timed out after {timeout:g}s waiting for {what}", where=where)
        time.sleep(min(interval, deadline.remaining))


def enter_bootloader(target: FlashTarget) -> bool:
    """Ask the board to jump to its bootloader, if the caller gave a way to; say whether it did."""
    if target.enter_bootloader is None:
        return False
    try:
        target.enter_bootloader()
    except Exception as exc:
        raise FlashError(
            f"could not ask the board to enter its bootloader: {type(exc).__name__}: {exc}",
            where=target.board,
        ) from exc
    return True


def wait_for_port(target: FlashTarget, *, timeout: float, interval: float = 0.1) -> str | None:
    """Wait until the board's serial port is back after a flash; return its (maybe new) path.

    Without a resolver there is nothing to wait for: the caller then reconnects by itself.
    """
    if target.resolve_port is None:
        return None
    resolve = target.resolve_port
    return poll_until(
        resolve,
        timeout=timeout,
        interval=interval,
        what="the serial port to come back after flashing",
        where=target.board,
    )


class Flasher(ABC):
    """Writes one firmware image to one board.

    Subclasses declare ``name`` (the rack's ``flasher = ...``), ``options_type`` (a frozen
    dataclass whose fields are the rack options) and ``image_suffixes`` (the image formats they
    take). ``flash`` writes the image and returns once the board runs again; it raises
    ``FlashError`` (an infrastructure error) naming the board on any failure.
    """

    name: ClassVar[str]
    options_type: ClassVar[type] = NoOptions
    image_suffixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: Any, target: FlashTarget) -> None:
        self.options = options
        self.target = target

    @classmethod
    def from_config(
        cls, options: Mapping[str, Any], target: FlashTarget, *, where: str = ""
    ) -> Flasher:
        """Build the flasher from rack options, validating them first."""
        parsed = parse_options(cls.options_type, options, where=where or f"board {target.board}")
        return cls(parsed, target)

    @property
    def board(self) -> str:
        return self.target.board

    def describe(self) -> str:
        """One line for logs and the summary table: which tool, which board, which options."""
        return f"{self.name} on {self.board}"

    def check_image(self, image: Path) -> None:
        """Refuse an image of the wrong format before the board is touched."""
        if self.image_suffixes and image.suffix.lower() not in self.image_suffixes:
            wanted = ", ".join(self.image_suffixes)
            raise FlashError(
                f"{self.name} takes {wanted} images, not {image.name}", where=self.board
            )

    @abstractmethod
    def flash(self, image: Path, progress: ProgressFn = no_progress) -> None:
        """Write ``image`` to the board, report progress, return when the board runs again."""


# -- registry: flashers are drivers like any other (see hil.drivers) ------------------------------


def register_flasher(cls: type[Flasher]) -> type[Flasher]:
    """Make ``cls`` available under ``cls.name`` (usable as a class decorator).

    This is how a flasher of a project's own (a lab's relay-driven programmer, say) joins
    without hil.flash knowing it; a rack entry can then name it.
    """
    registry.register("flasher", cls.name, cls)
    return cls


def flasher_names() -> list[str]:
    """All names a rack entry may use, sorted."""
    return registry.names("flasher")


def flasher_class(name: str, *, where: str = "") -> type[Flasher]:
    """The flasher class registered under ``name``; ``ConfigError`` for an unknown name."""
    return registry.lookup("flasher", name, where=where)


def create_flasher(
    name: str, options: Mapping[str, Any], target: FlashTarget, *, where: str = ""
) -> Flasher:
    """Build the flasher a rack entry names, with its options validated."""
    return flasher_class(name, where=where).from_config(options, target, where=where)
