"""Every option of ``hil rack``, ``hil flash`` and ``hil report`` says what it is for."""

from __future__ import annotations

import argparse

import pytest

from hil.cli import build_parser


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) of every command and verb below ``parser``."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from subcommands(sub, (*path, name))


@pytest.mark.parametrize("command", ["rack", "flash", "report"])
def test_every_option_and_argument_has_help_without_markup(command: str) -> None:
    found = [(p, sub) for p, sub in subcommands(build_parser()) if p[:1] == (command,)]
    assert found
    for path, parser in found:
        assert "``" not in (parser.description or ""), path
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            where = f"hil {' '.join(path)} {action.option_strings or action.dest}"
            assert action.help, f"{where} has no help"
            assert "``" not in action.help, f"{where}: literal double backticks"
        assert "``" not in parser.format_help(), path
