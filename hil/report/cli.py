"""``hil report``: render the Allure results of a run to HTML with the local Allure 3."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hil.errors import ConfigError
from hil.report.render import CONFIG_NAME, TOOLING_ENV, find_tooling, has_results, render, serve


def add_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="render Allure results to an HTML report (Allure 3 from npm, no Java)",
        description="Render the results of `pytest --alluredir DIR` with the Allure 3 that "
        "mpy-hil pins (hil/report/tooling, linked from a checkout's ci/); its modules are "
        "installed with `npm ci` on first use (in ci/ of a checkout, else in "
        "~/.cache/mpy-hil). Needs Node.js 20+ and npm, no Java.",
    )
    report.add_argument(
        "--results",
        type=Path,
        default=Path("allure-results"),
        help="the folder pytest wrote with --alluredir (default: allure-results)",
    )
    report.add_argument(
        "--output",
        type=Path,
        default=Path("allure-report"),
        help="where the HTML report goes; replaced (default: allure-report)",
    )
    report.add_argument(
        "--history",
        type=Path,
        default=None,
        help="JSON-lines file of earlier runs for the trend charts; this run is appended "
        "(default: allure-history.jsonl beside the report)",
    )
    report.add_argument(
        "--no-history", action="store_true", help="a report of this run alone, no trend"
    )
    report.add_argument("--name", default="mpy-hil", help="the report's title (default: mpy-hil)")
    report.add_argument(
        "--tooling",
        type=Path,
        default=None,
        help="folder with package.json and allurerc.mjs "
        "(default: $HIL_REPORT_TOOLING, else ci/ of the checkout, else the packaged copy)",
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
    _check_inputs(args)
    tooling = args.tooling or find_tooling()
    history = None
    if not args.no_history:
        history = args.history or args.output.resolve().parent / "allure-history.jsonl"
    index = render(
        args.results,
        args.output,
        tooling=tooling,
        name=args.name,
        install=not args.no_install,
        history=history,
    )
    print(index)
    if args.open:
        # The report loads its data with fetch(), which browsers refuse to file:// pages.
        return serve(args.output, tooling=tooling)
    return 0


def _check_inputs(args: argparse.Namespace) -> None:
    """What the user named must be there before anything is installed or rendered: a wrong
    folder is the user's mistake (usage), not a failing tool."""
    if not has_results(args.results):
        what = "no such folder" if not args.results.exists() else "no *-result.json in it"
        raise ConfigError(
            f"no Allure results ({what}): run pytest with --alluredir {args.results} first, "
            "or give --results DIR",
            where=str(args.results),
        )
    named = [(args.tooling, f"--tooling {args.tooling}")] if args.tooling else []
    if not named and os.environ.get(TOOLING_ENV):
        env = os.environ[TOOLING_ENV]
        named = [(Path(env), f"${TOOLING_ENV}={env}")]
    for folder, source in named:
        if not ((folder / "package.json").is_file() and (folder / CONFIG_NAME).is_file()):
            raise ConfigError(f"{source} has no package.json and {CONFIG_NAME}")
