"""One pytest process's hold on the rack: its lease, its open board, recovery and quarantine.

The pytest plugin is thin; this is where the session's rules live:

* a worker leases one board at a time and keeps it for the whole session (the lease dies with the
  process); a test whose marker the held board cannot satisfy makes it trade the lease;
* before a test the board is reset as asked (soft by default); after it, the board must still
  answer, else it is reset hard, power-cycled, and at last quarantined for the rest of the run;
* every byte is recorded in one transcript per board, from which each test takes its slice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil import recovery
from hil.board import Board as BoardLink
from hil.errors import BoardQuarantined, ConfigError, FlashError, HilError, InfrastructureError
from hil.rack import (
    Board,
    Lease,
    LeaseManager,
    Rack,
    Selector,
    default_lock_dir,
    port_present,
    resolve_port,
)
from hil.rack.quarantine import Quarantine, prune_run_dirs
from hil.transcript import Transcript

log = logging.getLogger("hil")

#: How long the post-test health check waits for the board to answer.
HEALTH_TIMEOUT = 5.0
#: The health check's question and the only right answer to it.
HEALTH_CODE, HEALTH_ANSWER = "print(123 * 3)", b"369"
#: A board that fails to get ready for this many tests in a row is taken out of the run.
PREPARE_FAILURES = 3
RESET_MODES = ("soft", "hard", "none")
#: How often the board is reset: before every test, or at the first test of a class or file.
RESET_SCOPES = ("test", "class", "module")
#: Where a test runs: once per group of equivalent boards, or once per matching board.
SPREADS = ("group", "board")


@dataclass
class Settings:
    """The plugin's resolved options (command line, else ini, else default)."""

    reset: str = "soft"
    lease_timeout: float = 300.0
    log_dir: Path | None = None
    #: How long a board's port may take to appear (a USB board re-enumerating after a reset).
    connect_timeout: float = 20.0
    #: The same when the port is not there at all as the board is leased: a missing board is
    #: not waited for as long as one that is coming back.
    absent_timeout: float = 5.0
    #: How long the reset before a test may take (a board's reboot, boot.py included).
    reset_timeout: float = 10.0
    reset_scope: str = "test"
    spread: str = "group"


class Harness:
    """See the module docstring."""

    def __init__(
        self,
        rack: Rack,
        settings: Settings,
        *,
        lock_dir: Path | None,
        run_id: str,
        worker: str | None,
        starter: Callable[[], None] | None = None,
        firmware_check: Callable[[Board, Callable[[], BoardLink]], None] | None = None,
    ) -> None:
        self._rack = rack
        self._starter = starter
        self._firmware_check = firmware_check
        self._firmware_checked: set[str] = set()
        self.settings = settings
        self.run_id = run_id
        self.worker = worker
        lock_dir = lock_dir or (Path(rack.lock_dir) if rack.lock_dir else default_lock_dir())
        if worker is None:  # once per run (not per xdist worker): old runs' records go
            with contextlib.suppress(OSError):
                prune_run_dirs(lock_dir)
        self.quarantine = Quarantine.for_run(lock_dir, run_id, worker=worker)
        self.manager = LeaseManager(
            rack.boards,
            lock_dir,
            worker=worker,
            run=run_id,
            label="pytest",
            quarantine=self.quarantine,
        )
        self.lease: Lease | None = None
        self.link: BoardLink | None = None
        self.transcript = Transcript()
        #: What each board used in this session reported as its firmware (reports show it).
        self.firmware: dict[str, str] = {}
        #: What each board used in this session has, by its probe (``hil.probe.BoardFacts``).
        self.facts: dict[str, Any] = {}
        self._prepare_failures: dict[str, int] = {}
        #: The quarantined board whose tests the last ``board_for`` moved to another one.
        self.moved_from: str | None = None
        self._lost: str | None = None
        #: The board the last ``board_for`` leased or tried to connect to (also when it failed:
        #: the failure is that board's).
        self.last_board: str | None = None
        #: The reset scope (class or file) the held board was last reset for.
        self._reset_for: str | None = None

    # --- rack and leases --------------------------------------------------------------------

    @property
    def rack(self) -> Rack:
        return self._rack

    def skip_reason(self, selector: Selector) -> str:
        """Why no board of the rack can ever match (empty when one can)."""
        return selector.explain(self.rack.boards)

    @property
    def entry(self) -> Board | None:
        return self.lease.board if self.lease else None

    def board_for(self, selector: Selector) -> tuple[Board, BoardLink]:
        """The held board if it matches, else a newly leased one, connected in the raw REPL.

        Raises ``BoardQuarantined`` (from the lease manager) when every matching board is out.
        """
        entry = self.entry
        self.moved_from, self._lost = self._lost, None
        if entry is not None and (not selector.matches(entry) or entry.id in self.quarantine):
            if entry.id in self.quarantine:
                self.moved_from = entry.id
            self.release()
        while self.lease is None:
            self.last_board = None  # a board its flashing took out is not this lease's
            self.lease = self.manager.acquire(selector, timeout=self.settings.lease_timeout)
            self.last_board = self.lease.board.id
            self._ensure_firmware(self.lease.board)
        self.last_board = self.lease.board.id
        if self.moved_from is not None:
            self.transcript.note(
                f"moved: {self.moved_from} is quarantined, its tests go on on {self.lease.board.id}"
            )
        if self.link is None:
            try:
                self.link = self._connect(self.lease.board)
            except InfrastructureError as e:
                self._take_out(self.lease.board, f"cannot connect: {e.what}")
                raise BoardQuarantined(
                    f"cannot connect: {e.what} (quarantined for this run)",
                    where=e.where,
                    tail=e.tail,
                ) from e
        return self.lease.board, self.link

    def _take_out(self, entry: Board, reason: str) -> None:
        self.quarantine.add(entry.id, reason)
        self.release()
        self._lost = entry.id  # the next test that needs a board says it moved

    def _ensure_firmware(self, entry: Board) -> None:
        """Once per board and session: flash it if it does not run its pinned firmware.

        A flashing failure quarantines that board only; the caller then leases another.
        """
        if self._starter is not None:
            self._starter()  # the run's virtual boards start when a test first needs one
            self._starter = None
        if self._firmware_check is None or entry.firmware is None:
            return
        if entry.id in self._firmware_checked:
            return
        self._firmware_checked.add(entry.id)
        try:
            self._firmware_check(entry, lambda: self._open(entry))
        except FlashError as e:
            self._take_out(entry, f"firmware: {e.what}")

    def _connect(self, entry: Board) -> BoardLink:
        self.transcript.note(f"lease: {entry.id} ({entry.port})")
        try:
            absent = port_present(entry.port_spec) is False
        except HilError:
            absent = True
        return self._open(entry, wait=self.settings.absent_timeout if absent else None)

    def _open(self, entry: Board, *, wait: float | None = None) -> BoardLink:
        return BoardLink.open(
            lambda: resolve_port(entry.port_spec, where=entry.id),
            name=entry.id,
            baudrate=entry.baudrate,
            tap=self.transcript,
            wait=self.settings.connect_timeout if wait is None else wait,
        )

    def firmware_version(self) -> str:
        """The leased board's firmware as it reports it (asked once per board and session)."""
        entry, link = self.entry, self.link
        assert entry is not None and link is not None
        if entry.id not in self.firmware:
            identity = link.identity(refresh=True)
            self.firmware[entry.id] = identity.uname.get("version") or ".".join(
                str(part) for part in identity.version[:3]
            )
        return self.firmware[entry.id]

    def board_facts(self) -> Any:
        """What the leased board has, by its probe: asked once per board and session."""
        entry, link = self.entry, self.link
        assert entry is not None and link is not None
        if entry.id not in self.facts:
            try:
                self.facts[entry.id] = link.facts
            except InfrastructureError as e:  # a board that cannot be asked: recover or out
                reason = self.check_health()
                if reason:
                    raise BoardQuarantined(reason, where=entry.id, tail=e.tail) from e
                raise
        return self.facts[entry.id]

    def capabilities(self, entry: Board) -> frozenset[str]:
        """What a board declares in the rack and what its probe found (once probed)."""
        facts = self.facts.get(entry.id)
        probed = facts.features if facts is not None else frozenset()
        return entry.capabilities.names | probed

    def capability_names(self) -> dict[str, str]:
        """Per board used in this session: its capabilities, as one line for reports."""
        return {
            board.id: ", ".join(sorted(self.capabilities(board)))
            for board in self.rack.boards
            if board.id in self.facts
        }

    def forget_reset(self) -> None:
        """The board's state can no longer be trusted (recovered, failed): reset at next test."""
        self._reset_for = None

    def release(self) -> None:
        self._reset_for = None
        if self.link is not None:
            with contextlib.suppress(Exception):
                self.link.close()
            self.link = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    # --- around each test -------------------------------------------------------------------

    def prepare(self, reset: str, scope: str | None = None) -> bool:
        """Bring the board into the state a test starts from; a board that cannot get there is
        recovered (hard reset, power cycle) or quarantined, and the test errors as infrastructure.

        ``scope`` names the unit the reset is for (a class or a file, see ``reset_scope``): a
        test of the unit the board was last reset for starts where the previous one left it.
        Returns whether the board was reset.
        """
        entry, link = self.entry, self.link
        assert entry is not None and link is not None
        if reset not in RESET_MODES:
            raise ConfigError(f"unknown reset mode {reset!r} (soft, hard, none)")
        if scope is not None and scope == self._reset_for:
            return False
        self._reset_for = None
        try:
            if reset == "soft":
                link.soft_reset(timeout=self.settings.reset_timeout)
            elif reset == "hard":
                recovery.hard_reset(entry, link, timeout=max(self.settings.reset_timeout, 20.0))
        except InfrastructureError as e:
            failures = self._prepare_failures.get(entry.id, 0) + 1
            self._prepare_failures[entry.id] = failures
            reason = self.check_health()
            if reason is None and failures >= PREPARE_FAILURES:
                # it answers, but cannot be brought to a test's start (a boot that never ends):
                # every further test would pay the whole deadline and fail the same way
                reason = f"{failures} tests in a row could not start on it: {e.what}"
                self._take_out(entry, reason)
            if reason:
                raise BoardQuarantined(reason, where=entry.id, tail=e.tail) from e
            raise
        self._prepare_failures.pop(entry.id, None)
        self._reset_for = scope
        return reset != "none"

    def check_health(self) -> str | None:
        """After a test: make sure the board answers; recover or quarantine it.

        Returns None when healthy (maybe after recovery), else the quarantine reason.
        """
        entry, link = self.entry, self.link
        if entry is None or link is None:
            return None
        if self._answers(link):
            return None
        steps: list[str] = []
        for name, action in (
            ("hard reset", lambda: recovery.hard_reset(entry, link)),
            ("power cycle", lambda: recovery.power_cycle(entry, link)),
        ):
            try:
                self.transcript.note(f"recovery: {name}")
                if action() is False:
                    steps.append(f"{name}: not possible")
                    continue
            except HilError as e:
                steps.append(f"{name}: {e.what}")
                continue
            if self._answers(link):
                log.warning("%s recovered by %s", entry.id, name)
                self.forget_reset()
                return None
            steps.append(f"{name}: still silent")
        reason = "board stopped answering; " + "; ".join(steps)
        self._take_out(entry, reason)
        return reason

    def _answers(self, link: BoardLink) -> bool:
        """Whether the board runs code and answers. The answer is known in advance, so it is
        its own check: no answer helper travels (a test's worth of time at 115200 baud)."""
        try:
            return link.repl.exec(HEALTH_CODE, timeout=HEALTH_TIMEOUT).strip() == HEALTH_ANSWER
        except HilError:
            return False

    def close(self) -> None:
        self.release()
