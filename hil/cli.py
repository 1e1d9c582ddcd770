"""The ``hil`` command. Errors of ours print as one line (what, where, whose fault), exit 2.

A bad option value is refused by the option's own check (``hil.sim.inputs``), which raises a
``ConfigError`` while the arguments are parsed: it prints like every other error of ours, one line
ending "[usage fault]", rather than as argparse's usage text.
"""

from __future__ import annotations

import argparse
import sys

from hil.errors import HilError


def build_parser() -> argparse.ArgumentParser:
    from hil.flash import cli as flash_cli
    from hil.labgrid import cli as lab_cli
    from hil.rack import cli as rack_cli
    from hil.report import cli as report_cli
    from hil.sim import cli as sim_cli

    parser = argparse.ArgumentParser(prog="hil", description="MicroPython hardware-in-the-loop")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sim_cli.add_parser(commands)
    rack_cli.add_parser(commands)
    flash_cli.add_parser(commands)
    report_cli.add_parser(commands)
    lab_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.handler(args) or 0)
    except HilError as e:
        print(f"hil: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
