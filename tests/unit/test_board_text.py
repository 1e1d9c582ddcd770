"""Board text is data: one rule (``hil.board_text``) for which characters never reach a reader
raw, the same in error messages, the REPL view, report attachments and the report's
environment file; each keeps its own form of showing them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hil import board_text, replview
from hil.errors import InfrastructureError, escape_text
from hil.report import steps
from hil.report.results import write_environment

#: Every C0 control but the newline and tab a transcript keeps, DEL, every C1 control.
CONTROLS = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if chr(c) not in "\n\t"]
#: Not printable either: bidi override, zero-width space, line separator, no-break space.
UNICODE_INVISIBLE = ["\u202e", "\u200b", "\u2028", "\xa0"]


def read_properties_value(line: str) -> str:
    """A value of a Java properties line as a reader (Allure) gets it back."""
    value = line.partition("=")[2]
    escapes = {"n": "\n", "t": "\t", "r": "\r", "f": "\f"}

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("u"):
            return chr(int(code[1:], 16))
        return escapes.get(code, code)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", one, value)


def shown_by_every_caller(text: str, tmp_path: Path) -> dict[str, str]:
    """``text`` (from a board) as each place that shows board text shows it to a reader."""
    data = text.encode()
    path = write_environment(tmp_path, {"firmware.b": text})
    line = next(x for x in path.read_text(encoding="utf-8").splitlines() if x.startswith("firm"))
    return {
        "escape_text": escape_text(text),
        "error message": str(InfrastructureError(text)).removesuffix(" [infrastructure fault]"),
        "REPL view": replview.readable(data),
        "report attachment": steps.readable(data),
        "step title": steps.summarize(data),
        "environment.properties": read_properties_value(line),
    }


@pytest.mark.parametrize("ch", CONTROLS + UNICODE_INVISIBLE, ids=lambda ch: f"U+{ord(ch):04X}")
def test_every_caller_escapes_the_same_characters(ch: str, tmp_path: Path) -> None:
    for where, shown in shown_by_every_caller(f"ok{ch}[2J ok", tmp_path).items():
        assert ch not in shown, f"{where} let U+{ord(ch):04X} through: {shown!r}"
        assert all(board_text.is_shown(c) for c in shown), f"{where}: {shown!r}"
        assert shown.startswith("ok") and shown.endswith("[2J ok"), f"{where}: {shown!r}"


def test_newline_and_tab_are_kept_where_text_keeps_its_lines(tmp_path: Path) -> None:
    shown = shown_by_every_caller("def f():\n\treturn 1", tmp_path)
    for where in ("escape_text", "error message", "REPL view", "report attachment"):
        assert shown[where] == "def f():\n\treturn 1", where
    assert shown["environment.properties"] == "def f():\n\treturn 1"  # the format's own \n, \t
    assert shown["step title"] == "def f(): (+1 line)"


def test_printable_text_of_any_script_is_left_alone(tmp_path: Path) -> None:
    text = "café ☃ Ünïcödé \\ 'quoted'"
    shown = shown_by_every_caller(text, tmp_path)
    assert set(shown.values()) == {text}


def test_each_caller_keeps_its_own_form() -> None:
    assert escape_text("a\x1b[2J\r\x9b\u202e") == "a\\x1b[2J\\r\\x9b\\u202e"
    assert replview.readable(b"a\x1b[2J\r\xc2\x9b\xff") == "a\\x1b[2J\\r\\x9b\\xff"
    assert steps.readable(b"\x05A\x01\xc2\x9b\x04\r") == "<CTRL-E>A<CTRL-A>\\x9b<CTRL-D>\\r"
    assert steps.summarize(b"x\xc2\x9b = 1\x7f") == "x = 1"  # titles drop what they would escape


def test_the_environment_file_shows_a_control_character_as_its_escape(tmp_path: Path) -> None:
    path = write_environment(tmp_path, {"firmware.vb0": "v1.24\x1b[2J\r"})
    assert path.read_text(encoding="utf-8") == "firmware.vb0=v1.24\\\\x1b[2J\\\\r\n"


def test_visible_forms_are_those_of_a_python_string_literal() -> None:
    for ch in CONTROLS + UNICODE_INVISIBLE + ["\U000e0001", "\ud800"]:
        assert board_text.visible(ch) == repr(ch)[1:-1]
        assert eval(f"'{board_text.visible(ch)}'") == ch  # and it reads back as the character


def test_keep_and_names_choose_the_form_never_whether_a_character_is_escaped() -> None:
    assert board_text.escape("a\nb\tc", keep="") == "a\\nb\\tc"  # one-line text
    assert board_text.escape("a\x03b\x85", names={"\x03": "<CTRL-C>"}) == "a<CTRL-C>b\\x85"
    assert board_text.escape("ab", names={"a": "\x1b"}) == "ab"  # a printable is never renamed
    assert board_text.escape("") == ""
