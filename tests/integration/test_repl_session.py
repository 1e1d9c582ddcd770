"""The REPL driver's behaviours on a virtual board that works: exec, eval, state, resets, the
friendly REPL and the transcript player."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hil.errors import RemoteError
from hil.friendly import FriendlyRepl, play
from hil.repl import Mode, Repl
from hil.sim import SimBoard
from hil.transcript import Direction
from hil.transport import Transport


@pytest.fixture
def repl(virtual_board: SimBoard) -> Iterator[Repl]:
    transport = Transport.open(virtual_board.port)
    yield Repl(transport)
    transport.close()


def test_exec_uses_raw_paste_and_keeps_state(repl: Repl) -> None:
    repl.exec("total = 0\nfor i in range(10):\n    total += i")
    assert repl.exec("print(total)\nprint('two\\nlines')") == b"45\ntwo\nlines\n"
    assert repl.raw_paste is True and repl.window


@pytest.mark.parametrize(
    "expression",
    [
        "b'\\x00\\x01\\xfe\\xff\\r\\n' * 3",
        "'caf\\xe9 \\u2603'",
        "{'a': [1, 2.5, None, True], 'b': (b'', -3)}",
        "float('inf')",
        "'x' * 10000",
        "bytes(range(256)) * 40",
    ],
)
def test_eval_round_trips_values(repl: Repl, expression: str) -> None:
    assert repl.eval(expression) == eval(expression)


def test_name_error_is_a_remote_error_with_the_traceback(repl: Repl) -> None:
    with pytest.raises(RemoteError) as info:
        repl.exec("def f():\n    return missing\nf()")
    err = info.value
    assert (err.type_name, err.message) == ("NameError", "name 'missing' isn't defined")
    assert "line 2, in f" in err.traceback


def test_soft_reset_clears_the_session(repl: Repl, virtual_board: SimBoard) -> None:
    repl.exec("import sys\nsys.modules['marker'] = sys\nkept = 1")
    before = virtual_board.control.status()["soft_resets"]
    repl.soft_reset()
    assert virtual_board.control.status()["soft_resets"] == before + 1
    assert repl.eval("'marker' in __import__('sys').modules") is False
    with pytest.raises(RemoteError, match="kept"):
        repl.exec("kept")


def test_soft_reset_returns_boot_output_in_both_forms(repl: Repl) -> None:
    repl.exec("f = open('/boot.py', 'w')\nf.write('print(\"boot says hi\")\\n')\nf.close()")
    assert repl.soft_reset(raw=True) == b"boot says hi\n"
    assert repl.mode is Mode.RAW
    friendly = repl.soft_reset(raw=False)
    assert friendly == b"boot says hi\n"
    assert repl.mode is Mode.FRIENDLY
    assert repl.exec("print('raw again')") == b"raw again\n"


def test_uncaught_system_exit_soft_resets(repl: Repl) -> None:
    repl.exec("left_over = 1")
    result = repl.exec_raw("print('bye')\nraise SystemExit")
    assert result.soft_reset and result.stdout == b"bye\n" and not result.stderr
    assert repl.mode is Mode.RAW
    assert repl.eval("'left_over' in globals()") is False


def test_friendly_repl_shows_what_a_person_sees(repl: Repl) -> None:
    shown = FriendlyRepl(repl).type("x = 6\nx * 7")
    assert shown.screen == ">>> x = 6\n>>> x * 7\n42\n"
    shown = FriendlyRepl(repl).type("undefined_name")
    assert shown.error is not None and shown.error.type_name == "NameError"
    assert "Traceback (most recent call last):" in shown.screen
    assert repl.eval("x") == 6  # the friendly and raw REPL share __main__


def test_friendly_compound_statement_with_auto_indent(repl: Repl) -> None:
    shown = FriendlyRepl(repl).type(
        "for i in range(3):\n    if i:\n        print(i * 10)\nprint('done')"
    )
    assert shown.output == "done\n"
    assert "...             print(i * 10)" not in shown.screen  # no doubled indentation
    assert "10\n20\n" in shown.screen


def test_transcript_player_on_the_board(repl: Repl) -> None:
    transcript = """
    >>> import sys
    >>> sys.implementation.name
    'micropython'
    >>> def double(x):
    ...     return 2 * x
    >>> [double(i) for i in range(4)]
    [0, 2, 4, 6]
    >>> undefined
    Traceback (most recent call last):
      ...
    NameError: name 'undefined' isn't defined
    >>> print('a long line of output')
    a long ... output
    """
    result = play(repl, transcript)
    result.check()
    assert result.examples == result.passed == 6


def test_transcript_player_reports_a_mismatch(repl: Repl) -> None:
    result = play(repl, ">>> 1 + 1\n2\n>>> 'ab' * 2\n'abab '\n>>> 3\n3\n")
    assert not result and result.passed == 1
    assert result.failure is not None
    assert (result.failure.want, result.failure.got) == ("'abab '\n", "'abab'\n")
    assert result.failure.lineno == 3


def test_every_byte_is_in_the_transcript(repl: Repl) -> None:
    repl.enter_raw()
    mark = repl.transport.tap.mark()
    repl.exec("print('traced')")
    sent = repl.transport.tap.payload(Direction.TX, since=mark)
    received = repl.transport.tap.payload(Direction.RX, since=mark)
    assert sent == b"\x05A\x01print('traced')\x04"
    assert received.endswith(b"\x04traced\r\n\x04\x04>")
    assert "exec print('traced')" in repl.transport.tap.render(since=mark)
