"""``hil sim ...``: start, inspect, poke and stop virtual boards from a shell."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import hil.sim
from hil.errors import ConfigError
from hil.sim import inputs
from hil.sim.config import DEFAULT_KIND
from hil.sim.control import SimControl
from hil.sim.hosts import HOST_KINDS


def add_parser(commands: argparse._SubParsersAction) -> None:
    sim = commands.add_parser(
        "sim",
        help="virtual boards (a real MicroPython behind a pty)",
        description="Virtual boards: a real MicroPython (the unix port, or a micro:bit in "
        "QEMU) behind a pseudo-terminal, with flash and SD card images. Start them, look at "
        "them, and press their buttons, pull their cables or inject faults from a shell.",
    )
    verbs = sim.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_text: str, board: bool = True) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--state-dir",
            type=Path,
            default=None,
            help="the boards' state directory (default: $HIL_SIM_DIR, else mpy-hil-sim-<uid> "
            "under $XDG_RUNTIME_DIR or the temp directory); it must be yours and private",
        )
        if board:
            p.add_argument("board", help="board name, e.g. vb0")
        return p

    start = verb("start", "start N boards; prints each port, one per line", board=False)
    start.add_argument(
        "-n",
        "--count",
        type=inputs.arg(inputs.count),
        default=1,
        metavar="N",
        help=f"how many boards (1 to {inputs.MAX_BOARDS}; default 1)",
    )
    start.add_argument(
        "--kind",
        choices=sorted(HOST_KINDS),
        default=DEFAULT_KIND,
        help=f"board kind (default: {DEFAULT_KIND}, the MicroPython unix port)",
    )
    start.add_argument(
        "--sd",
        metavar="SIZE",
        type=inputs.arg(inputs.size, "--sd"),
        help="an SD card of SIZE (e.g. 64M) in each board",
    )
    start.add_argument(
        "--sd-slot",
        type=inputs.arg(inputs.integer, "--sd-slot"),
        default=2,
        metavar="SLOT",
        help="the card's slot number, as machine.SDCard(slot=SLOT) names it (default 2)",
    )
    start.add_argument(
        "--baud",
        type=inputs.arg(inputs.baud, "--baud"),
        metavar="RATE",
        help="throttle the link like a UART of RATE bits per second (default: unthrottled)",
    )
    start.add_argument(
        "--usb",
        choices=["native", "uart"],
        default="native",
        help="native: the port vanishes while the board resets (rp2, ESP32-S3); "
        "uart: a USB-serial bridge whose port stays (default native)",
    )
    start.add_argument(
        "--timeout",
        type=inputs.arg(inputs.seconds, "--timeout", zero=False),
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for every board to reach its prompt (default 60)",
    )
    verb("stop", "stop the boards and everything they started", board=False)
    status = verb("status", "a table of the boards (or JSON)", board=False)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    verb("reset", "press the reset button (hard reset)")
    power = verb("power", "switch power")
    power.add_argument("state", choices=["on", "off"], help="on or off")
    verb("unplug", "pull the USB cable (the port disappears)")
    replug = verb("replug", "plug the cable back in")
    replug.add_argument("--new-path", action="store_true", help="re-enumerate under a new path")
    card = verb("card", "eject or insert the SD card")
    card.add_argument("action", choices=["eject", "insert"], help="eject or insert")
    card.add_argument(
        "--slot",
        type=inputs.arg(inputs.integer, "--slot"),
        default=None,
        help="which slot (default: the board's first)",
    )
    card.add_argument("--image", type=Path, default=None, help="insert this FAT image instead")
    fault = verb("fault", "inject a fault")
    fault.add_argument(
        "kind",
        choices=[
            "stall",
            "hang",
            "noise",
            "drop",
            "corrupt",
            "slow_boot",
            "no_raw_paste",
            "raw_paste_abort",
        ],
        help="the fault to inject",
    )
    fault.add_argument(
        "--seconds",
        type=inputs.arg(inputs.seconds, "--seconds"),
        help="stall, slow_boot: how long (finite, not negative)",
    )
    fault.add_argument(
        "--count",
        type=inputs.arg(inputs.integer, "--count"),
        help="noise, drop: how many bytes (not negative)",
    )
    fault.add_argument(
        "--after",
        type=inputs.arg(inputs.integer, "--after"),
        help="raw_paste_abort: abort after this many bytes of code",
    )
    fault.add_argument("--style", choices=["refuse", "old"], help="for no_raw_paste")
    fault.add_argument(
        "--rate", type=float, help="noise, drop, corrupt: probability per byte in flight, (0, 1]"
    )
    fault.add_argument("--seed", type=int, help="noise, drop, corrupt: reproducible choices")
    fault.add_argument("--direction", choices=["tx", "both"], help="corrupt: tx = board to host")
    verb("clear-faults", "remove all injected faults")
    baud = verb("baud", "set or remove (0) the UART throttle")
    baud.add_argument(
        "rate",
        type=inputs.arg(inputs.integer, "the baud rate", high=inputs.MAX_BAUD),
        help="bits per second; 0 removes the throttle",
    )
    flash = verb("flash", "write a firmware image into the board's firmware slot")
    flash.add_argument("image", type=Path, help="a virtual-board firmware image (.bin)")
    flash.add_argument("--erase", action="store_true", help="also wipe the flash filesystem")
    verb("erase", "erase the flash filesystem")
    sim.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    state = Path(os.path.abspath(args.state_dir or hil.sim.default_state_dir()))
    if args.verb == "start":
        running = hil.sim.running_pid(state)
        if running is not None:  # asked twice: the user's slip, the boards are fine
            raise ConfigError(
                f"virtual boards already running there (pid {running}); stop them first "
                "(`hil sim stop`) or give another --state-dir",
                where=str(state),
            )
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
        raise ConfigError(
            f"no running virtual board {args.board!r} (`hil sim status` lists them)",
            where=str(state),
        )
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
            if args.image is not None:
                _readable(args.image, "card image")
            print(control.card_insert(args.slot, args.image))
    elif args.verb == "fault":
        names = ("seconds", "count", "after", "style", "rate", "seed", "direction")
        params = {k: getattr(args, k) for k in names}
        control.fault(args.kind, **{k: v for k, v in params.items() if v is not None})
    elif args.verb == "clear-faults":
        control.clear_faults()
    elif args.verb == "baud":
        control.set_baud(args.rate or None)
    elif args.verb == "flash":
        _readable(args.image, "firmware image")
        _firmware_for(control, args.image)
        status = control.flash(args.image, erase=args.erase)
        print(status["firmware"].get("version", "?"))
    elif args.verb == "erase":
        control.erase()
    return 0


def _readable(path: Path, what: str) -> None:
    """A file the user named must be there before the board is asked to take it."""
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"no readable {what} there", where=str(path))


def _firmware_for(control: SimControl, image: Path) -> None:
    """A unix-kind board takes only a virtual-board firmware image: another file is the user's
    mistake, said before the board is asked (a micro:bit's server refuses one as usage)."""
    from hil.errors import SimError
    from hil.sim.images import read_firmware_info

    if control.status().get("kind", DEFAULT_KIND) != "unix":
        return
    with open(image, "rb") as f:
        head = f.read(4096)
    try:
        read_firmware_info(head if b"\n" in head else head + b"\n")
    except SimError as e:
        raise ConfigError(e.what, where=str(image)) from None


def _status(state: Path, as_json: bool) -> int:
    boards = [board.control.status() for board in hil.sim.find(state)]
    if as_json:
        print(json.dumps(boards, indent=2))
        return 0
    if not boards:
        print(f"no virtual boards running in {state}")
        return 0
    from rich.console import Console

    from hil.tables import Column, fit, render

    console = Console()
    title = f"virtual boards in {state}"
    columns = (
        Column("board", "id"),
        Column("kind"),
        Column("state"),
        Column("firmware", shrink_to=10),
        Column("card", "text", shrink_to=10),
        Column("boots", justify="right"),
        Column("pid", justify="right"),
    )
    rows = [_status_row(b) for b in boards]
    with_ports = [(*row, port) for row, port in rows]
    port_column = Column("port", "id")
    if fit(columns, [row for row, _ in rows], console.width) is None or fit(
        (*columns, port_column), with_ports, console.width
    ):  # a table with the port last, or (narrower still) a block per board
        console.print(render(console, title, (*columns, port_column), with_ports))
        return 0
    # The port, which a person copies, does not fit as a column: each whole on a line of its own.
    console.print(render(console, title, columns, [row for row, _ in rows]))
    for row, port in rows:
        console.print(f"{row[0]} port: {port}", soft_wrap=True, highlight=False, markup=False)
    return 0


def _status_row(b: dict) -> tuple[tuple[str, ...], str]:
    """A board's cells (the port apart: it never wraps, and goes last or on a line of its own)."""
    cards = ", ".join(
        f"slot {slot}: {'in' if c['present'] else 'empty'}"
        for slot, c in b.get("cards", {}).items()
    )
    row = (
        b["name"],
        b.get("kind", "unix"),
        b["state"],
        b.get("firmware", {}).get("version", "?"),
        cards or "-",
        str(b["boots"]),
        str(b["pid"] or "-"),
    )
    return row, b["port"] if b["plugged"] else "(unplugged)"
