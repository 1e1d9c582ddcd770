"""The friendly REPL as a person sees it: auto-indent, keys, screen rendering, transcripts."""

from __future__ import annotations

import pytest
from replay_port import Script, ScriptedPort, cut_points

from hil.friendly import FriendlyRepl, auto_indent, keys_for_line, render_screen
from hil.repl import Mode, Repl
from hil.transport import Transport


def repl_for(script: Script, cuts: list[int] = ()) -> Repl:
    port = ScriptedPort(script, cuts)
    transport = Transport(lambda: port, name="replay")
    transport.connect()
    repl = Repl(transport)
    repl.mode = Mode.FRIENDLY
    repl.port = port
    return repl


@pytest.mark.parametrize(
    ("typed", "indent"),
    [
        ("x = 1\n", ""),
        ("for i in range(3):\n", "    "),
        ("for i in range(3):\n    if i:\n", "        "),
        ("for i in range(3):\n    print(i)\n", "    "),
        ("def f():\n    pass\n    \n", "    "),  # one blank line: still indented
        ("def f():\n    pass\n    \n    \n", ""),  # two all-space lines: no more auto-indent
    ],
)
def test_auto_indent_follows_readline(typed: str, indent: str) -> None:
    assert auto_indent(typed) == indent


@pytest.mark.parametrize(
    ("line", "auto", "keys"),
    [
        ("    print(i)", 4, "print(i)"),
        ("        deeper()", 4, "    deeper()"),
        ("", 4, "\x08"),
        ("", 8, "\x08\x08"),
        ("    back()", 8, "\x08back()"),
        ("  odd()", 4, "\x08  odd()"),
        ("x = 1", 0, "x = 1"),
    ],
)
def test_keys_for_line(line: str, auto: int, keys: str) -> None:
    assert keys_for_line(line, auto) == keys


def test_render_screen_applies_backspaces_and_erase() -> None:
    raw = b"...     \x08\x08\x08\x08\x1b[K\r\n0\r\n>>> ab\x1b[1Dc"
    assert render_screen(raw) == "... \n0\n>>> ac"


FOR_LOOP: Script = [
    ("tx", b"for i in range(2):\r"),
    ("rx", b"for i in range(2):\r\n...     "),
    ("tx", b"print(i)\r"),  # the board already inserted the indentation
    ("rx", b"print(i)\r\n...     "),
    ("tx", b"\x08\r"),  # one backspace removes the 4 auto-inserted spaces
    ("rx", b"\x08\x08\x08\x08\x1b[K\r\n0\r\n1\r\n>>> "),
]


@pytest.mark.parametrize("cuts", cut_points(FOR_LOOP), ids=lambda c: f"cut{c[0]}-{len(c)}")
def test_friendly_compound_statement(cuts: list[int]) -> None:
    repl = repl_for(FOR_LOOP, cuts)
    shown = FriendlyRepl(repl).type("for i in range(2):\n    print(i)\n")
    assert shown.screen == ">>> for i in range(2):\n...     print(i)\n... \n0\n1\n"
    assert shown.output == "0\n1\n"
    assert shown.error is None
    assert repl.mode is Mode.FRIENDLY and repl.port.done


SESSION: Script = [
    ("tx", b"1 + 1\r"),
    ("rx", b"1 + 1\r\n2\r\n>>> "),
    ("tx", b"print('abcdef')\r"),
    ("rx", b"print('abcdef')\r\nabcdef\r\n>>> "),
    ("tx", b"x\r"),
    (
        "rx",
        b'x\r\nTraceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n'
        b"NameError: name 'x' isn't defined\r\n>>> ",
    ),
    ("tx", b"2 * 3\r"),
    ("rx", b"2 * 3\r\n6\r\n>>> "),
]

TRANSCRIPT = """
>>> 1 + 1
2
>>> print('abcdef')
ab...ef
>>> x
Traceback (most recent call last):
  ...
NameError: name 'x' isn't defined
>>> 2 * 3
7
>>> print('never typed')
never typed
"""


def test_transcript_player_reports_the_first_mismatch_with_both_texts() -> None:
    from hil.friendly import play

    repl = repl_for(SESSION)
    result = play(repl, TRANSCRIPT)
    assert not result
    assert (result.examples, result.passed) == (4, 3)
    failure = result.failure
    assert failure is not None and failure.lineno == 10
    assert (failure.want, failure.got) == ("7\n", "6\n")
    text = str(failure)
    assert ">>> 2 * 3" in text and "expected:\n    7" in text and "got:\n    6" in text
    with pytest.raises(AssertionError, match="line 10"):
        result.check()
    assert repl.port.done


def test_transcript_player_passes_a_matching_transcript() -> None:
    from hil.friendly import play

    repl = repl_for(SESSION)
    result = play(repl, TRANSCRIPT.replace("7\n", "6\n").split(">>> print('never")[0])
    assert result and (result.examples, result.passed) == (4, 4)
    result.check()
    assert "NameError" in result.screen[2]
