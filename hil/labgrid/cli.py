"""``hil lab``: stand a lab up on a labgrid coordinator and look at it.

``hil lab exporter RACK --coordinator HOST:PORT`` runs this host's exporter for the boards of a rack
file; ``hil lab places RACK --coordinator ... --exporter NAME`` creates or updates their places;
``hil lab status`` shows places, holders and quarantine; ``hil lab clear PLACE`` puts a quarantined
place back into service; ``hil lab reclaim`` releases what dead holders left, once.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
from pathlib import Path

from hil.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction) -> None:
    text = "a lab across hosts, through a labgrid coordinator"
    lab = commands.add_parser(
        "lab",
        help=text,
        description=f"{text[0].upper()}{text[1:]}: serve a rack's boards as labgrid places "
        "(exporter, places), look at them (status) and put them back into service (clear, "
        "reclaim). Needs labgrid, the package's labgrid extra.",
    )
    verbs = lab.add_subparsers(dest="verb", required=True, metavar="VERB")
    default = os.environ.get("LG_COORDINATOR")
    now = f"now {default}" if default else "unset now"

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]}.")
        parser.add_argument(
            "--coordinator",
            default=default,
            metavar="HOST:PORT",
            help=f"the labgrid coordinator (default: $LG_COORDINATOR, {now}; one of the two "
            "is needed)",
        )
        return parser

    exporter = verb("exporter", "run this host's labgrid exporter for boards of a rack file")
    exporter.add_argument(
        "rack_file", type=Path, metavar="RACK", help="the rack file (TOML) naming the boards"
    )
    exporter.add_argument(
        "--name",
        default=socket.gethostname(),
        help="the exporter's name, as `hil lab places --exporter` names it (default: this "
        "host's name)",
    )
    exporter.add_argument(
        "--hostname", default=None, help="address clients reach this host by (default: its name)"
    )
    exporter.add_argument("--board", action="append", help="serve only this board (repeatable)")
    exporter.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where its config goes (default: mpy-hil-lab-<uid> in the temp directory)",
    )
    places = verb("places", "create or update the places of a rack file's boards")
    places.add_argument(
        "rack_file", type=Path, metavar="RACK", help="the rack file (TOML) naming the boards"
    )
    places.add_argument("--exporter", required=True, help="the exporter name serving them")
    places.add_argument("--board", action="append", help="only this board (repeatable)")
    verb("status", "places, holders, heartbeats and quarantine")
    clear = verb("clear", "put a quarantined place back into service")
    clear.add_argument("place", help="the place's name, as `hil lab status` lists it")
    verb("reclaim", "release places and reservations whose holder is gone (once)")
    lab.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hil.labgrid import require
    from hil.labgrid.session import check_address

    if not args.coordinator:
        raise ConfigError(
            "no labgrid coordinator: give --coordinator HOST:PORT or set $LG_COORDINATOR",
            where=f"hil lab {args.verb}",
        )
    try:
        address = check_address(args.coordinator)
    except ConfigError as e:
        raise ConfigError(e.what, where="--coordinator") from None
    require()
    if args.verb == "exporter":
        from hil.labgrid.exporter import serve
        from hil.rack.inventory import load_rack

        state = args.state_dir or Path(tempfile.gettempdir()) / f"mpy-hil-lab-{os.getuid()}"
        return serve(
            load_rack(args.rack_file),
            coordinator=address,
            name=args.name,
            hostname=args.hostname or socket.gethostname(),
            boards=args.board,
            state_dir=state,
        )
    from hil.labgrid.client import Coordinator
    from hil.labgrid.holder import holder_name

    with Coordinator(address, name=str(holder_name(run="cli", worker=args.verb))) as session:
        if args.verb == "places":
            from hil.labgrid.exporter import select_boards
            from hil.labgrid.places import sync_places
            from hil.rack.inventory import load_rack

            boards = select_boards(load_rack(args.rack_file), args.board)
            for line in sync_places(session, boards, args.exporter):
                print(line)
        elif args.verb == "status":
            from hil.labgrid.status import show

            show(session)
        elif args.verb == "clear":
            from hil.labgrid.quarantine import PlaceQuarantine

            session.place(args.place)
            PlaceQuarantine(session).clear(args.place)
            print(f"{args.place}: back in service")
        else:
            from hil.labgrid.reclaim import Reclaimer

            for line in Reclaimer(session).scan():
                print(line)
    return 0
