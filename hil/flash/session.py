"""Bring one board onto its pinned firmware: what session start and ``hil flash`` both do.

The steps, each a function so that the CLI can run them for many boards at once and the pytest
plugin for one leased board:

1. ``decide``: ask the board (over its REPL, by the manifest's ``version_from``) what it runs and
   compare with the pin. Flashing is slow and risky, so a board on the pin is left alone.
2. ``verify_image`` (in ``hil.flash.manifest``): refuse an image whose sha256 is not the pinned
   one before any byte reaches the board.
3. the flasher named by the rack entry writes the image (``make_target`` gives it what it needs
   from the board layer: how to enter the bootloader, how to find the port again).
4. ``wait_for_version``: the board must come back and report exactly the pinned version.

Anything that goes wrong in 2-4 is a ``FlashError`` naming the board: an infrastructure error,
after which the plugin quarantines that board and only that board.

The board is reached through ``open_board``, a callable of the caller that opens a *fresh*
connection (a ``hil.board.Board``; it is used as a context manager and closed again). Nothing here
holds the port while a flasher runs: esptool and friends must be able to open it themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hil.errors import (
    ConfigError,
    FlashError,
    HilError,
    InfrastructureError,
    LinkError,
    SimError,
)
from hil.flash.base import Deadline, Flasher, FlashTarget, ProgressFn, create_flasher
from hil.flash.manifest import FirmwareEntry, Manifest
from hil.flash.parallel import FlashJob, run_job

if TYPE_CHECKING:
    from hil.board import Board as ReplBoard
    from hil.rack.inventory import Board as RackBoard

Mode = Literal["auto", "always", "never"]
MODES: tuple[str, ...] = ("auto", "always", "never")

#: Opens a fresh REPL connection to the board (the caller's transcript, baud rate, port lookup).
OpenBoard = Callable[[], "ReplBoard"]

#: What a MicroPython board runs to jump to its bootloader (UF2 drive, DFU, ...).
BOOTLOADER_CODE = "import machine\nmachine.bootloader()"

#: How long a freshly flashed board may take to answer with its version.
VERIFY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Decision:
    """Whether a board needs flashing, what it reported, and why (for logs and tables)."""

    flash: bool
    before: str | None
    reason: str


@dataclass(frozen=True)
class FlashOutcome:
    """What ``ensure_firmware`` did to one board. ``before``/``after`` are reported versions
    (``None`` when not asked or not readable)."""

    board: str
    firmware: str | None
    flashed: bool
    before: str | None
    after: str | None
    reason: str
    seconds: float = 0.0


# -- asking the board ----------------------------------------------------------------------------


def read_version(open_board: OpenBoard, entry: FirmwareEntry, *, where: str) -> str:
    """The version the board reports by the pin's ``version_from`` expression."""
    with open_board() as board:
        value = board.eval(entry.version_expr)
    if not isinstance(value, str):
        raise FlashError(f"board answered {entry.version_from} with {value!r}", where=where)
    return value


def decide(open_board: OpenBoard, entry: FirmwareEntry, mode: Mode, *, where: str) -> Decision:
    """Read the running version and decide whether ``mode`` wants the board flashed.

    A board that cannot say what it runs (stuck in its bootloader after a failed flash, or its
    firmware has no REPL left) is flashed in ``auto`` mode: flashing is the repair, and the
    verification afterwards decides whether it worked.
    """
    try:
        before: str | None = read_version(open_board, entry, where=where).strip()
        unreadable = ""
    except ConfigError:
        raise  # the rig cannot reach this board at all: flashing would not repair that
    except HilError as exc:
        before, unreadable = None, exc.what
    if mode == "always":
        return Decision(True, before, "flash always requested")
    if before is None:
        return Decision(True, None, f"running version unreadable ({unreadable})")
    if entry.matches(before):
        return Decision(False, before, "on the pin")
    return Decision(True, before, "off the pin")


def wait_for_version(
    open_board: OpenBoard,
    entry: FirmwareEntry,
    *,
    where: str,
    timeout: float = VERIFY_TIMEOUT,
    interval: float = 0.25,
) -> str:
    """Wait until the freshly flashed board answers, then insist that it runs the pin.

    A board that is still booting or re-enumerating fails to open or to enter the raw REPL;
    that is retried until the deadline. A board that answers with another version is a mismatch
    at once: waiting longer would not change what was written.
    """
    deadline = Deadline(timeout)
    while True:
        try:
            reported = read_version(open_board, entry, where=where)
        except ConfigError:
            raise  # no retry repairs a rack entry
        except FlashError:
            raise  # the board answered, with something that is no version: waiting won't help
        except InfrastructureError as exc:
            if deadline.expired:
                raise FlashError(
                    f"board did not answer within {timeout:g}s after flashing: {exc}",
                    where=where,
                ) from exc
            time.sleep(min(interval, deadline.remaining))
            continue
        except HilError as exc:  # the board answered, with an exception: a product of the image
            raise FlashError(
                f"flashed board cannot report {entry.version_from}: {exc.what}", where=where
            ) from exc
        entry.check_reported(reported, board=where)
        return reported.strip()


def enter_bootloader_over_repl(open_board: OpenBoard) -> Callable[[], None]:
    """``FlashTarget.enter_bootloader`` for MicroPython: ``machine.bootloader()`` on its REPL.

    The code is launched, not waited for: the board drops its port as it jumps.
    """

    def enter() -> None:
        with open_board() as board:
            board.repl.launch(BOOTLOADER_CODE)

    return enter


# -- building the flasher ------------------------------------------------------------------------


def rack_port_resolver(board: RackBoard) -> Callable[[], str | None]:
    """Where the rack board's serial port is now, or ``None`` while it is absent."""
    from hil.rack.ports import resolve_port

    def resolve() -> str | None:
        try:
            return resolve_port(board.port_spec, where=board.id)
        except (LinkError, SimError):
            return None

    return resolve


def make_target(
    board: RackBoard,
    open_board: OpenBoard,
    resolve_port: Callable[[], str | None] | None = None,
) -> FlashTarget:
    """What a flasher may need from the rig for this rack board."""
    resolve = resolve_port or rack_port_resolver(board)
    return FlashTarget(
        board=board.id,
        port=resolve(),
        enter_bootloader=enter_bootloader_over_repl(open_board),
        resolve_port=resolve,
        port_spec=board.port,
    )


def make_flasher(board: RackBoard, target: FlashTarget) -> Flasher:
    """The flasher the rack entry names, with its options validated."""
    if board.flasher is None:
        raise FlashError(
            "the rack names no flasher for this board ([boards.flasher] name = ...)",
            where=board.id,
        )
    return create_flasher(board.flasher.name, board.flasher.options, target, where="flasher")


# -- session start -------------------------------------------------------------------------------


def ensure_firmware(
    board: RackBoard,
    manifest: Manifest,
    *,
    mode: Mode = "auto",
    open_board: OpenBoard,
    progress: ProgressFn | None = None,
    resolve_port: Callable[[], str | None] | None = None,
    verify_timeout: float = VERIFY_TIMEOUT,
) -> FlashOutcome:
    """Make ``board`` run its pinned firmware (per ``mode``) and say what was done.

    Raises ``FlashError`` naming the board whenever the board cannot be shown to run its pin
    after flashing: image refused, flasher failed, board silent or reporting another version.
    Configuration problems of this one board (unknown firmware id, no or bad flasher) are
    ``FlashError`` too, so the caller has one error to quarantine a board for. ``mode`` never
    does not touch the board at all.
    """
    if mode not in MODES:
        raise ValueError(f"flash mode must be one of {', '.join(MODES)}, not {mode!r}")
    start = time.monotonic()
    if board.firmware is None:
        return FlashOutcome(board.id, None, False, None, None, "no firmware pin in the rack")
    if mode == "never":
        return FlashOutcome(board.id, board.firmware, False, None, None, "flashing disabled")
    try:
        entry = manifest.get(board.firmware, where=board.id)
        decision = decide(open_board, entry, mode, where=board.id)
        if not decision.flash:
            return FlashOutcome(
                board.id,
                entry.id,
                False,
                decision.before,
                decision.before,
                decision.reason,
                time.monotonic() - start,
            )
        flasher = make_flasher(board, make_target(board, open_board, resolve_port))
        after: list[str] = []

        def check() -> None:
            after.append(
                wait_for_version(open_board, entry, where=board.id, timeout=verify_timeout)
            )

        job = FlashJob(board.id, flasher, entry, check)
        run_job(job, progress or _no_progress, _no_status)
    except HilError as exc:
        if isinstance(exc, FlashError) and exc.where == board.id:
            raise
        said = f"{exc.where}: {exc.what}" if exc.where and exc.where != board.id else exc.what
        raise FlashError(said, where=board.id, tail=exc.tail) from exc
    except Exception as exc:  # a flasher bug must still take out only its own board
        raise FlashError(f"unexpected {type(exc).__name__}: {exc}", where=board.id) from exc
    return FlashOutcome(
        board.id,
        entry.id,
        True,
        decision.before,
        after[0],
        decision.reason,
        time.monotonic() - start,
    )


def _no_progress(done: int, total: int) -> None:
    """Progress of a session-start flash nobody watches."""


def _no_status(text: str) -> None:
    """Status lines of a session-start flash nobody watches."""
