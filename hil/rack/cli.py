"""``hil rack status`` and ``hil rack check``: what the rack looks like right now."""

from __future__ import annotations

import argparse
from pathlib import Path

from hil.errors import HilError
from hil.rack.inventory import Board, Rack, load_rack
from hil.rack.leases import LeaseManager
from hil.rack.ports import port_present, resolve_port
from hil.rack.quarantine import Quarantine


def add_parser(commands: argparse._SubParsersAction) -> None:
    rack = commands.add_parser("rack", help="the boards of a rack file: status and health")
    verbs = rack.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, text in (
        ("status", "a table: board, port present, lease holder, firmware, quarantined"),
        ("check", "connect to every free board: does it answer the REPL, which firmware?"),
    ):
        verb = verbs.add_parser(name, help=text)
        verb.add_argument("rack_file", type=Path, metavar="RACK")
        verb.add_argument("--lock-dir", type=Path, default=None)
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
                found[board] = (record.since, f"run {run.name}: {record.reason}")
    return {board: text for board, (_, text) in found.items()}


def _present(board: Board) -> str:
    try:
        present = port_present(board.port_spec)
    except HilError:
        present = False
    return {True: "yes", False: "NO", None: "?"}[present]


def _status(rack: Rack, manager: LeaseManager) -> None:
    from rich.console import Console
    from rich.table import Table

    quarantined = _quarantined(manager)
    table = Table(title=f"rack ({len(rack.boards)} boards, locks in {manager.lock_dir})")
    for column in ("board", "platform", "port", "present", "lease", "firmware", "quarantined"):
        table.add_column(column)
    for board in rack.boards:
        state = manager.state(board.id)
        lease = "free" if state.free else state.describe().removeprefix(f"{board.id} ")
        table.add_row(
            board.id,
            board.platform,
            board.port,
            _present(board),
            lease,
            board.firmware or "-",
            quarantined.get(board.id, "-"),
        )
    Console().print(table)


def _check(rack: Rack, manager: LeaseManager) -> int:
    """Lease each free board briefly and ask it who it is; non-zero exit if one fails."""
    from rich.console import Console
    from rich.table import Table

    from hil.board import Board as BoardLink
    from hil.rack.selector import Selector

    table = Table(title="rack check")
    for column in ("board", "answers", "firmware", "detail", "capabilities (declared + probed)"):
        table.add_column(column, overflow="fold")
    failures = 0
    for board in rack.boards:
        lease = manager.try_acquire(Selector(id=board.id))
        if lease is None:
            table.add_row(board.id, "?", "?", manager.state(board.id).describe(), "?")
            continue
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
            table.add_row(board.id, "yes", version, machine, ", ".join(sorted(capabilities)))
        except HilError as e:
            failures += 1
            table.add_row(board.id, "NO", "?", str(e), "?")
        finally:
            lease.release()
    Console().print(table)
    return 1 if failures else 0
