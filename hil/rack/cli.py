"""``hil rack status`` and ``hil rack check``: what the rack looks like right now."""

from __future__ import annotations

import argparse
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hil.errors import HilError
from hil.processes import pid_alive
from hil.rack.inventory import Board, Rack, load_rack
from hil.rack.leases import LeaseManager
from hil.rack.ports import port_present, resolve_port
from hil.rack.quarantine import Quarantine, QuarantineRecord
from hil.run_dirs import process_start


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


def _quarantined(manager: LeaseManager, holding: set[str]) -> dict[str, str]:
    """The latest quarantine record of each board, over the runs still going.

    A quarantine lasts for its run only, and the run's own report names it: a record that a
    finished run left behind says nothing about the board now, so it is not shown. A run is
    going while a process that recorded one of its quarantines lives (that very process: a pid
    that started after the record is another one), or while it holds a lease (``holding``:
    a worker that quarantined a board may be gone while the rest of its run goes on). What
    cannot be told (another host's process, an unreadable record) is shown."""
    found: dict[str, tuple[float, str]] = {}
    runs = manager.lock_dir / "runs"
    for run in runs.iterdir() if runs.is_dir() else ():
        records = Quarantine(run / "quarantine").records()
        if not records or (run.name not in holding and all(map(_ended, records.values()))):
            continue
        for board, record in records.items():
            if board not in found or record.since > found[board][0]:
                found[board] = (record.since, f"by run {run.name}: {record.reason}")
    return {board: text for board, (_, text) in found.items()}


def _ended(record: QuarantineRecord) -> bool:
    """Whether the process that wrote ``record`` is gone (False when that cannot be told)."""
    if record.pid is None or record.host != socket.gethostname():
        return False
    alive = pid_alive(record.pid)
    if alive is None:
        return False
    return not alive or _started_after(record.pid, record.since)


def _started_after(pid: int, when: float) -> bool:
    """Whether process ``pid`` started after ``when`` (a reused pid, not the recorder)."""
    ticks = process_start(pid)
    try:
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return False
    if ticks is None:
        return False
    return boot + ticks / os.sysconf("SC_CLK_TCK") > when + 1.0


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

    states = {board.id: manager.state(board.id) for board in rack.boards}
    holding = {s.holder.run for s in states.values() if s.holder is not None and s.holder.run}
    quarantined = _quarantined(manager, holding)
    rows = []
    for board in rack.boards:
        state = states[board.id]
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
        return (
            board.id,
            "?",
            "?",
            manager.state(board.id).describe().removeprefix(f"{board.id} "),
            "?",
        )
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
