"""``hil rack status`` and ``hil rack check``: what the rack looks like right now."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hil.errors import HilError
from hil.rack.inventory import Board, Rack, load_rack
from hil.rack.leases import LeaseManager
from hil.rack.ports import port_present, resolve_port
from hil.rack.quarantine import Quarantine


def add_parser(commands: argparse._SubParsersAction) -> None:
    rack = commands.add_parser(
        "rack",
        help="the boards of a rack file: status and health",
        description="Look at the boards of a rack file (see ci/rack.example.toml).",
    )
    verbs = rack.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, text in (
        (
            "status",
            "a table: board, port present, lease holder, firmware; then the boards that a "
            "running test run has quarantined",
        ),
        (
            "check",
            "connect to every free board at once (each leased for the moment it takes): "
            "does it answer the REPL, which firmware, what does it have? Exit 1 if one fails",
        ),
    ):
        verb = verbs.add_parser(name, help=text, description=text)
        verb.add_argument(
            "rack_file", type=Path, metavar="RACK", help="the rack file (TOML) naming the boards"
        )
        verb.add_argument(
            "--lock-dir",
            type=Path,
            default=None,
            help="where the leases' lock files are (default: the rack's lock_dir, else the "
            "per-user default that pytest uses too)",
        )
    rack.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rack = load_rack(args.rack_file)
    manager = LeaseManager(rack.boards, args.lock_dir or _lock_dir(rack), label="hil rack")
    if args.verb == "status":
        _status(rack, manager)
        return 0
    return _check(rack, manager)


def _lock_dir(rack: Rack) -> Path | None:
    return Path(rack.lock_dir) if rack.lock_dir else None


def _quarantined(manager: LeaseManager) -> dict[str, str]:
    """The latest quarantine record of each board, over all recorded runs."""
    found: dict[str, tuple[float, str]] = {}
    runs = manager.lock_dir / "runs"
    for run in runs.iterdir() if runs.is_dir() else ():
        for board, record in Quarantine(run / "quarantine").records().items():
            if board not in found or record.since > found[board][0]:
                found[board] = (record.since, f"by run {run.name}: {record.reason}")
    return {board: text for board, (_, text) in found.items()}


def _present(board: Board) -> str:
    try:
        present = port_present(board.port_spec)
    except HilError:
        present = False
    return {True: "yes", False: "NO", None: "?"}[present]


def _status(rack: Rack, manager: LeaseManager) -> None:
    from rich.console import Console
    from rich.text import Text

    from hil.tables import Column, render

    quarantined = _quarantined(manager)
    rows = []
    for board in rack.boards:
        state = manager.state(board.id)
        lease = "free" if state.free else state.describe().removeprefix(f"{board.id} ")
        rows.append(
            (
                board.id,
                board.platform,
                board.port,
                _present(board),
                lease,
                board.firmware or "-",
            )
        )
    columns = (
        Column("board", "id"),
        Column("platform"),
        Column("port", shrink_to=14),
        Column("present"),
        Column("lease", "text", shrink_to=12),
        Column("firmware", shrink_to=8),
    )
    title = f"rack ({_count(len(rack.boards), 'board')}, locks in {manager.lock_dir})"
    console = Console()
    console.print(render(console, title, columns, rows))
    # Rare and long: below the table, at the full width, rather than a mostly empty column.
    for board in rack.boards:
        if board.id in quarantined:
            console.print(Text(f"{board.id} quarantined {quarantined[board.id]}", overflow="fold"))


def _count(n: int, noun: str) -> str:
    """``1 board``, ``2 boards``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _check(rack: Rack, manager: LeaseManager) -> int:
    """Lease each free board briefly and ask it who it is, all boards at once (a missing board
    costs its connect timeout once, not once per board before it); non-zero exit if one fails."""
    from rich.console import Console

    from hil.tables import Column, render

    workers = max(1, min(16, len(rack.boards)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rack-check") as pool:
        rows = list(pool.map(lambda board: _check_one(board, manager), rack.boards))
    columns = (
        Column("board", "id"),
        Column("answers"),
        Column("firmware", "text", shrink_to=10),
        Column("detail", "text", shrink_to=16),
        Column("capabilities", "text", shrink_to=18),  # machine.unique_id, on one line
    )
    console = Console()
    console.print(render(console, "rack check", columns, rows))
    return 1 if any(row[1] == "NO" for row in rows) else 0


def _check_one(board: Board, manager: LeaseManager) -> tuple[str, str, str, str, str]:
    """One board's row: leased only while it is asked, released whatever happens."""
    from hil.board import Board as BoardLink
    from hil.rack.selector import Selector

    try:
        lease = manager.try_acquire(Selector(id=board.id))
    except HilError as e:
        return board.id, "?", "?", _error_text(e, board.id), "?"
    if lease is None:
        return board.id, "?", "?", manager.state(board.id).describe(), "?"
    try:
        with BoardLink.open(
            lambda b=board: resolve_port(b.port_spec, where=b.id),
            name=board.id,
            baudrate=board.baudrate,
            wait=5.0,
        ) as link:
            identity = link.identity()
            capabilities = board.capabilities.names | link.facts.features
        version = identity.uname.get("version") or ".".join(map(str, identity.version[:3]))
        machine = identity.uname.get("machine", identity.machine)
        return board.id, "yes", version, machine, ", ".join(sorted(capabilities))
    except HilError as e:
        return board.id, "NO", "?", _error_text(e, board.id), "?"
    finally:
        lease.release()


def _error_text(error: HilError, board: str) -> str:
    """The error without what its row already says (the board)."""
    text = str(error)
    return text.removeprefix(f"{board}: ") if error.where == board else text
