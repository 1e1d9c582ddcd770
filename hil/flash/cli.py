"""``hil flash``: put the boards of a rack on their pinned firmware, in parallel.

What it does, in order, so that a person at a terminal sees why each board is touched or not:

1. leases each selected board (the same locks the test sessions take), so a board in use by a
   test run or another ``hil flash`` is never flashed under its feet;
2. asks every board at once what it runs, and prints a check table: pin, running version, action;
3. flashes the boards that are off their pin (all of them with ``--always``), one progress bar
   each, verifies what they report afterwards, and prints the summary table;
4. exits 1 when any board failed (at any step), 0 otherwise; bad input exits 2 (``hil.cli``).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from hil.errors import ConfigError, FlashError, HilError, LeaseTimeout
from hil.flash.manifest import Manifest, load_manifest
from hil.flash.parallel import FlashJob, FlashResult, flash_boards
from hil.flash.session import (
    VERIFY_TIMEOUT,
    Decision,
    Mode,
    OpenBoard,
    decide,
    make_flasher,
    make_target,
    wait_for_version,
)
from hil.rack.inventory import Board as RackBoard
from hil.rack.inventory import load_rack
from hil.rack.leases import Lease, LeaseManager
from hil.rack.selector import Selector
from hil.tables import Column, layout

DEFAULT_MANIFEST = Path("firmware") / "manifest.toml"


def add_parser(commands: argparse._SubParsersAction) -> None:
    flash = commands.add_parser(
        "flash",
        help="flash the boards of a rack whose firmware is not their pin",
        description="Put the boards of a rack on their pinned firmware, in parallel: lease "
        "each, ask what it runs, flash those off their pin (one progress bar each), verify, "
        "and print a summary. Exit 1 when a board failed, 2 on bad input.",
    )
    flash.add_argument(
        "--rack",
        type=Path,
        required=True,
        metavar="FILE",
        help="the rack file (TOML) naming the boards and their pins",
    )
    flash.add_argument(
        "--board",
        action="append",
        dest="boards",
        default=[],
        metavar="ID",
        help="only this board (repeatable); default: every board that pins a firmware",
    )
    flash.add_argument(
        "--firmware-manifest",
        type=Path,
        default=DEFAULT_MANIFEST,
        metavar="FILE",
        help=f"firmware pins (default: ./{DEFAULT_MANIFEST})",
    )
    flash.add_argument(
        "--always", action="store_true", help="flash even the boards that are on their pin"
    )
    flash.add_argument(
        "--lease-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for a board that another run holds (default: fail it at once)",
    )
    flash.add_argument(
        "--verify-timeout",
        type=float,
        default=VERIFY_TIMEOUT,
        metavar="SECONDS",
        help="how long a flashed board may take to report its pinned version "
        f"(default {VERIFY_TIMEOUT:g})",
    )
    flash.set_defaults(handler=run)


@dataclass
class Plan:
    """One board's way through the check step: a job to run, nothing to do, or an error."""

    board: RackBoard
    decision: Decision | None = None
    job: FlashJob | None = None
    error: HilError | None = None


def run(args: argparse.Namespace) -> int:
    rack = load_rack(args.rack)
    manifest = load_manifest(args.firmware_manifest)
    boards = _selected(rack.boards, args.boards)
    console = Console()
    if not boards:
        console.print(f"no board of {args.rack} pins a firmware: nothing to flash")
        return 0
    mode: Mode = "always" if args.always else "auto"
    leases = LeaseManager(rack.boards, rack.lock_dir, label="hil flash")
    with contextlib.ExitStack() as held:
        plans = []
        for board in boards:
            plan = Plan(board)
            try:
                held.enter_context(_lease(leases, board, args.lease_timeout))
            except LeaseTimeout:
                holder = leases.state(board.id).describe()
                plan.error = FlashError(f"in use, not flashed: {holder}", where=board.id)
            except HilError as exc:
                plan.error = exc
            plans.append(plan)
        console.print(f"checking the firmware of {len(plans)} board(s)")
        _check_all(plans, manifest, mode, args.verify_timeout)
        console.print(check_table(plans, console.width))
        jobs = [plan.job for plan in plans if plan.job is not None]
        results = flash_boards(jobs, console=console) if jobs else []
    failed = sum(plan.error is not None for plan in plans) + sum(not r.ok for r in results)
    alone = sum(plan.decision is not None and not plan.decision.flash for plan in plans)
    flashed = sum(r.ok for r in results)
    console.print(f"{flashed} flashed, {alone} left alone (on the pin), {failed} failed")
    return exit_code(plans, results)


def _selected(boards: Sequence[RackBoard], ids: Sequence[str]) -> list[RackBoard]:
    """The boards asked for (in the order given), or every board that pins a firmware."""
    if not ids:
        return [board for board in boards if board.firmware is not None]
    by_id = {board.id: board for board in boards}
    unknown = [board_id for board_id in ids if board_id not in by_id]
    if unknown:
        known = ", ".join(by_id)
        raise ConfigError(f"no board {unknown[0]!r} in the rack (boards: {known})", where="--board")
    return [by_id[board_id] for board_id in dict.fromkeys(ids)]


def _lease(leases: LeaseManager, board: RackBoard, timeout: float) -> Lease:
    return leases.acquire(Selector(id=board.id), timeout=timeout)


def _check_all(plans: list[Plan], manifest: Manifest, mode: Mode, verify_timeout: float) -> None:
    """Ask every leased board what it runs, all at once (each answer waits on a serial link)."""
    todo = [plan for plan in plans if plan.error is None]
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=len(todo)) as pool:
        list(pool.map(lambda plan: _check(plan, manifest, mode, verify_timeout), todo))


def _check(plan: Plan, manifest: Manifest, mode: Mode, verify_timeout: float) -> None:
    board = plan.board
    try:
        if board.firmware is None:
            raise ConfigError("the rack pins no firmware for this board", where=board.id)
        entry = manifest.get(board.firmware, where=board.id)
        open_board = board_opener(board)
        plan.decision = decide(open_board, entry, mode, where=board.id)
        if not plan.decision.flash:
            return
        flasher = make_flasher(board, make_target(board, open_board))

        def check() -> None:
            wait_for_version(open_board, entry, where=board.id, timeout=verify_timeout)

        plan.job = FlashJob(board.id, flasher, entry, check)
    except HilError as exc:
        plan.error = exc
    except Exception as exc:  # one board's surprise must not hide the others' results
        plan.error = FlashError(f"unexpected {type(exc).__name__}: {exc}", where=board.id)


def board_opener(board: RackBoard) -> OpenBoard:
    """Opens a fresh REPL connection to a rack board, finding its port anew each time."""
    from hil.board import Board
    from hil.rack.ports import resolve_port

    def port() -> str:
        return resolve_port(board.port_spec, where=board.id)

    def open_board() -> Board:
        return Board.open(port, name=board.id, baudrate=board.baudrate)

    return open_board


def check_table(plans: Sequence[Plan], width: int = 200) -> Table | Group:
    """One row per board: its pin, what it runs, and what happens to it; laid out for a
    ``width``-column terminal (a block per board when no table fits: ids are never cut)."""
    columns = (
        Column("Board", "id", style="bold"),
        Column("Pin", shrink_to=10),
        Column("Running", shrink_to=10),
        Column("Action", "text", shrink_to=20),
    )
    rows = []
    for plan in plans:
        decision = plan.decision
        running = decision.before if decision is not None and decision.before else "?"
        if plan.error is not None:
            action = Text.assemble(("FAILED", "red"), f": {_one_line(plan.error, plan.board.id)}")
        elif decision is not None and decision.flash:
            action = Text(f"flash ({decision.reason})")
        else:
            action = Text.assemble(("left alone", "green"), " (on the pin)")
        rows.append((plan.board.id, plan.board.firmware or "-", running, action))
    return layout("Firmware check", columns, rows, width)


def _one_line(error: HilError, board: str) -> str:
    """The error without what its row already says (the board)."""
    return f"{error.where}: {error.what}" if error.where and error.where != board else error.what


def exit_code(plans: Sequence[Plan], results: Sequence[FlashResult]) -> int:
    """1 when any board failed its check or its flash, else 0."""
    return 1 if any(p.error for p in plans) or not all(r.ok for r in results) else 0
