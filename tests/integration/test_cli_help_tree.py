"""``hil ... --help`` tells a person what every verb is and what every argument means.

The parser tree is walked as ``hil`` builds it (every command, every verb, every argument), and
the help a person reads is run as a command, at 80 columns.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator

from hil.cli import build_parser


def parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the ``hil`` command with its command line (``hil lab clear``)."""
    todo = [("hil", build_parser())]
    while todo:
        name, parser = todo.pop()
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {verb}", sub) for verb, sub in action.choices.items()]


def arguments() -> Iterator[tuple[str, argparse.Action]]:
    for name, parser in parsers():
        for action in parser._actions:
            if action.dest != "help" and not isinstance(action, argparse._SubParsersAction):
                yield name, action


def hil(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "LG_COORDINATOR"}
    return subprocess.run(
        [sys.executable, "-m", "hil.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "COLUMNS": "80", **(env or {})},
        check=False,
    )


def test_every_command_and_verb_has_a_description() -> None:
    missing = [name for name, parser in parsers() if not (parser.description or "").strip()]
    assert missing == []


def test_every_argument_has_help() -> None:
    missing = [
        f"{name} {action.option_strings or action.metavar or action.dest}"
        for name, action in arguments()
        if not (action.help or "").strip()
    ]
    assert missing == []


def test_every_option_with_a_default_states_it() -> None:
    silent = [
        f"{name} {action.option_strings}"
        for name, action in arguments()
        if action.option_strings
        and action.default not in (None, False, [], argparse.SUPPRESS)
        and "default" not in (action.help or "")
    ]
    assert silent == []


def test_lab_coordinator_is_optional_when_the_environment_can_name_it() -> None:
    unset = hil("lab", "status", "--help")
    assert unset.returncode == 0, unset.stderr
    assert "[--coordinator HOST:PORT]" in unset.stdout, unset.stdout
    assert "$LG_COORDINATOR" in unset.stdout, unset.stdout
    named = hil("lab", "status", "--help", env={"LG_COORDINATOR": "lab-host:20408"})
    assert "lab-host:20408" in named.stdout, named.stdout


def test_lab_without_a_coordinator_is_one_usage_line() -> None:
    done = hil("lab", "status")
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.endswith("[usage fault]") and "$LG_COORDINATOR" in line, line


def test_flash_help_states_the_verify_timeout_default() -> None:
    done = hil("flash", "--help")
    assert done.returncode == 0, done.stderr
    words = " ".join(done.stdout.split())
    assert "--verify-timeout SECONDS how long" in words and "(default 60)" in words, done.stdout
