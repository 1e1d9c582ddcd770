"""``hil report``: render the Allure results of a run to HTML with the local Allure 3."""

from __future__ import annotations

import argparse
from pathlib import Path

from hil.report.render import find_tooling, render, serve


def add_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="render Allure results to an HTML report (Allure 3 from npm, no Java)",
        description="Render the results of `pytest --alluredir DIR` with the Allure 3 pinned in "
        "ci/package.json; its modules are installed with `npm ci` on first use.",
    )
    report.add_argument(
        "--results", type=Path, default=Path("allure-results"), help="default: allure-results"
    )
    report.add_argument(
        "--output", type=Path, default=Path("allure-report"), help="default: allure-report"
    )
    report.add_argument("--name", default="mpy-hil", help="the report's title")
    report.add_argument(
        "--tooling",
        type=Path,
        default=None,
        help="folder with package.json and allurerc.mjs "
        "(default: $HIL_REPORT_TOOLING, else ci/ of the checkout)",
    )
    report.add_argument(
        "--no-install", action="store_true", help="fail instead of running `npm ci` when missing"
    )
    report.add_argument(
        "--open",
        action="store_true",
        help="then serve it on localhost and open a browser (Ctrl-C ends)",
    )
    report.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    tooling = args.tooling or find_tooling()
    index = render(
        args.results,
        args.output,
        tooling=tooling,
        name=args.name,
        install=not args.no_install,
    )
    print(index)
    if args.open:
        # The report loads its data with fetch(), which browsers refuse to file:// pages.
        return serve(args.output, tooling=tooling)
    return 0
