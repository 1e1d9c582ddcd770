"""``hil sim ...``: start, inspect, poke and stop virtual boards from a shell."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import hil.sim
from hil.errors import SimError
from hil.sim.config import DEFAULT_KIND
from hil.sim.control import SimControl
from hil.sim.hosts import HOST_KINDS


def add_parser(commands: argparse._SubParsersAction) -> None:
    sim = commands.add_parser("sim", help="virtual boards (a real MicroPython behind a pty)")
    verbs = sim.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_text: str, board: bool = True) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help_text)
        p.add_argument(
            "--state-dir", type=Path, default=None, help="default: $HIL_SIM_DIR or a per-user dir"
        )
        if board:
            p.add_argument("board", help="board name, e.g. vb0")
        return p

    start = verb("start", "start N boards; prints each port, one per line", board=False)
    start.add_argument("-n", "--count", type=int, default=1)
    start.add_argument(
        "--kind",
        choices=sorted(HOST_KINDS),
        default=DEFAULT_KIND,
        help=f"board kind (default: {DEFAULT_KIND}, the MicroPython unix port)",
    )
    start.add_argument("--sd", metavar="SIZE", help="an SD card of SIZE (e.g. 64M) in each board")
    start.add_argument("--sd-slot", type=int, default=2)
    start.add_argument("--baud", type=int, metavar="RATE", help="throttle the link like a UART")
    start.add_argument("--usb", choices=["native", "uart"], default="native")
    start.add_argument("--timeout", type=float, default=60.0)
    verb("stop", "stop the boards and everything they started", board=False)
    status = verb("status", "a table of the boards (or JSON)", board=False)
    status.add_argument("--json", action="store_true")
    verb("reset", "press the reset button (hard reset)")
    power = verb("power", "switch power")
    power.add_argument("state", choices=["on", "off"])
    verb("unplug", "pull the USB cable (the port disappears)")
    replug = verb("replug", "plug the cable back in")
    replug.add_argument("--new-path", action="store_true", help="re-enumerate under a new path")
    card = verb("card", "eject or insert the SD card")
    card.add_argument("action", choices=["eject", "insert"])
    card.add_argument("--slot", type=int, default=None)
    card.add_argument("--image", type=Path, default=None, help="insert this FAT image instead")
    fault = verb("fault", "inject a fault")
    fault.add_argument(
        "kind",
        choices=["stall", "hang", "noise", "drop", "slow_boot", "no_raw_paste", "raw_paste_abort"],
    )
    fault.add_argument("--seconds", type=float)
    fault.add_argument("--count", type=int)
    fault.add_argument("--after", type=int)
    fault.add_argument("--style", choices=["refuse", "old"], help="for no_raw_paste")
    verb("clear-faults", "remove all injected faults")
    baud = verb("baud", "set or remove (0) the UART throttle")
    baud.add_argument("rate", type=int)
    flash = verb("flash", "write a firmware image into the board's firmware slot")
    flash.add_argument("image", type=Path)
    flash.add_argument("--erase", action="store_true")
    verb("erase", "erase the flash filesystem")
    sim.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    state = args.state_dir or hil.sim.default_state_dir()
    if args.verb == "start":
        started = hil.sim.start(
            state,
            args.count,
            kind=args.kind,
            sd=args.sd,
            sd_slot=args.sd_slot,
            baud=args.baud,
            usb=args.usb,
            timeout=args.timeout,
        )
        for board in started.boards:
            print(board.port)
        return 0
    if args.verb == "stop":
        if not hil.sim.stop(state):
            print(f"no virtual boards running in {state}")
        return 0
    if args.verb == "status":
        return _status(state, args.json)
    board_dir = state / args.board
    if not (board_dir / "control.sock").exists():
        raise SimError(f"no running virtual board {args.board!r}", where=str(state))
    control = SimControl(board_dir)
    if args.verb == "reset":
        control.reset()
    elif args.verb == "power":
        control.power(args.state == "on")
    elif args.verb == "unplug":
        control.unplug()
    elif args.verb == "replug":
        control.replug(new_path=args.new_path)
        print(control.port())
    elif args.verb == "card":
        if args.action == "eject":
            control.card_eject(args.slot)
        else:
            print(control.card_insert(args.slot, args.image))
    elif args.verb == "fault":
        params = {k: getattr(args, k) for k in ("seconds", "count", "after", "style")}
        control.fault(args.kind, **{k: v for k, v in params.items() if v is not None})
    elif args.verb == "clear-faults":
        control.clear_faults()
    elif args.verb == "baud":
        control.set_baud(args.rate or None)
    elif args.verb == "flash":
        status = control.flash(args.image, erase=args.erase)
        print(status["firmware"].get("version", "?"))
    elif args.verb == "erase":
        control.erase()
    return 0


def _status(state: Path, as_json: bool) -> int:
    boards = [board.control.status() for board in hil.sim.find(state)]
    if as_json:
        print(json.dumps(boards, indent=2))
        return 0
    if not boards:
        print(f"no virtual boards running in {state}")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"virtual boards in {state}")
    for column in ("board", "kind", "state", "port", "firmware", "card", "boots", "pid"):
        table.add_column(column)
    for b in boards:
        cards = ", ".join(
            f"slot {slot}: {'in' if c['present'] else 'empty'}"
            for slot, c in b.get("cards", {}).items()
        )
        table.add_row(
            b["name"],
            b.get("kind", "unix"),
            b["state"],
            b["port"] if b["plugged"] else "(unplugged)",
            b.get("firmware", {}).get("version", "?"),
            cards or "-",
            str(b["boots"]),
            str(b["pid"] or "-"),
        )
    Console().print(table)
    return 0
