"""Board kinds: what the server needs from a virtual board's host, and which host runs which kind.

Why an interface: the server (``hil.sim.server``) runs one event loop for every board and knows
nothing of what is behind a board's port. A kind (the unix port behind a pty, QEMU running real
firmware) is any class with the methods of ``Host``; ``HOST_KINDS`` maps the ``kind`` of a
``BoardConfig`` to it. A kind that lacks a part (no SD slot, no UF2 bootloader) refuses its verbs
with ``Unsupported``, which the control socket answers as a clear error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hil.errors import ConfigError, SimError
from hil.sim.config import BoardConfig

#: ``schedule(delay, action)``: run ``action`` in the server's loop ``delay`` seconds from now.
Schedule = Callable[[float, Callable[[], None]], None]


class Unsupported(ValueError):
    """A control verb for a part this board kind does not have."""


def unsupported(config: BoardConfig, part: str) -> Unsupported:
    """The error for a missing part: "board kind 'microbit' has no SD slot"."""
    return Unsupported(f"board kind {config.kind!r} has no {part} (board {config.name})")


@runtime_checkable
class Host(Protocol):
    """What the server calls on one board. Constructed as ``cls(config, schedule)``; every
    method runs in the server's single-threaded loop and must not block."""

    config: BoardConfig

    # --- life cycle
    def prepare(self) -> None:
        """Create the board's directory contents (images, ``board.json``) before power-on."""

    def power_on(self) -> None:
        """Plug in and boot (the server calls it once, after every control socket is up)."""

    def shutdown(self) -> None:
        """Stop everything the board started; remove its port symlink. Must not raise."""

    def crash(self) -> None:
        """The host side failed (an exception escaped a handler): stop the board, say so."""

    # --- the event loop
    def readers(self) -> dict[int, Callable[[], None]]:
        """File descriptors to poll for input now, each with its handler."""

    def writers(self) -> dict[int, Callable[[], None]]:
        """File descriptors with output waiting, each with its handler."""

    def pump(self, now: float) -> float | None:
        """Move bytes that are due; seconds until it wants to run again (None: no wish)."""

    def status(self) -> dict[str, Any]:
        """The ``status`` answer, a JSON object. Clients read: ``name``, ``kind``, ``state`` (a
        ``BoardState`` value; "ready" at the prompt), ``port`` (the symlink path), ``plugged``,
        ``powered``, ``pid`` (or None), ``boots``, ``flashes``, ``flash_progress`` (None or
        [done, total]); and, where the kind has them, ``cards`` ({slot: {present, image}}),
        ``firmware`` ({version, date, sha256}) and ``faults``."""

    # --- control verbs (see hil.sim.control.SimControl)
    def hard_reset(self) -> None: ...
    def power(self, on: bool) -> None: ...
    def usb_unplug(self) -> None: ...
    def usb_replug(self, new_path: bool = False) -> None: ...
    def set_fault(self, kind: str, params: dict[str, Any]) -> None: ...
    def clear_faults(self) -> None: ...
    def set_baud(self, baud: int | None) -> None: ...
    def card_eject(self, slot: int | None) -> None: ...
    def card_insert(self, slot: int | None, image: str | None, size: int | None) -> Path: ...
    def enter_bootloader(self) -> Path:
        """Enter the UF2 bootloader; returns the drive's path."""

    def erase_flash(self) -> None: ...
    def flash(self, image: bytes, erase: bool = False) -> None: ...


def missing_part(part: str) -> Callable[..., Any]:
    """A verb of a part the kind lacks: it refuses with ``Unsupported`` naming the part (and is
    marked, so that the control socket refuses it before reading any of the request's files)."""

    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise unsupported(self.config, part)

    refuse.missing_part = part  # type: ignore[attr-defined]
    return refuse


class WithoutOptionalParts:
    """Mixin for kinds without an SD slot, UF2 bootloader or writable firmware slot: each such
    verb refuses with ``Unsupported``. Override the ones the kind does have."""

    config: BoardConfig

    card_eject = missing_part("SD slot")
    card_insert = missing_part("SD slot")
    enter_bootloader = missing_part("UF2 bootloader")
    erase_flash = missing_part("flash filesystem to erase")
    flash = missing_part("firmware slot")


HostFactory = Callable[[BoardConfig, Schedule], Host]

#: Board kind -> its host class, or "module:attribute" imported on first use (so that a kind's
#: optional dependencies cost nothing to the others). Add a kind here or with ``register_kind``.
HOST_KINDS: dict[str, HostFactory | str] = {
    "unix": "hil.sim.host:BoardHost",
    "microbit": "hil.sim.qemu.host:QemuHost",
}


def register_kind(kind: str, host: HostFactory | str) -> None:
    """Add (or replace) a board kind."""
    HOST_KINDS[kind] = host


def host_class(kind: str) -> HostFactory:
    """The host class of ``kind``; a clear SimError for an unknown kind or a missing module."""
    entry = HOST_KINDS.get(kind)
    if entry is None:  # the caller's word: a usage fault
        raise ConfigError(
            f"unknown board kind {kind!r} (known: {', '.join(sorted(HOST_KINDS))})",
            where="hil.sim",
        )
    if not isinstance(entry, str):
        return entry
    module_name, _, attribute = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or not (module_name + ".").startswith(e.name + "."):
            raise  # the kind's module is there but broken: a bug, show it as one
        raise SimError(
            f"board kind {kind!r} needs the module {module_name}, which is not installed",
            where="hil.sim",
        ) from e
    try:
        host: HostFactory = getattr(module, attribute)
    except AttributeError as e:
        raise SimError(
            f"board kind {kind!r}: {module_name} has no {attribute!r}", where="hil.sim"
        ) from e
    return host
