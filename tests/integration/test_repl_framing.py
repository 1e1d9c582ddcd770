"""Control bytes in code and in output, on a virtual board, both with raw-paste and on a plain
raw link (no flow control: code travels checked): each comes back exactly, at once, and the
next command works (issue 13 item 1)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hil.errors import RemoteError
from hil.repl import Mode, Repl
from hil.sim import SimBoard
from hil.transport import Transport


@pytest.fixture(params=["raw-paste", "plain"])
def repl(request: pytest.FixtureRequest, virtual_board: SimBoard) -> Iterator[Repl]:
    transport = Transport.open(virtual_board.port)
    yield Repl(transport, raw_paste=request.param == "raw-paste")
    transport.close()


def quick(repl: Repl, code: str) -> bytes:
    start = time.monotonic()
    out = repl.exec(code, timeout=10)
    assert time.monotonic() - start < 3, "waited out a deadline"
    assert repl.exec("print('next')") == b"next\n"
    return out


def test_output_holding_ctrl_d_comes_back_at_once(repl: Repl) -> None:
    assert quick(repl, "print('a\\x04b')") == b"a\x04b\n"
    assert quick(repl, "print('\\x04', end='')\nprint('>more')") == b"\x04>more\n"
    assert quick(repl, "print('\\x04\\x04\\x04')") == b"\x04\x04\x04\n"


def test_output_that_mimics_the_frame_end_is_not_taken_for_it(repl: Repl) -> None:
    """``\\x04 text \\x04>`` in the middle of the output looks like an answer's end whose
    error report is ``text``; no error report reads like that, so the end is confirmed."""
    code = "print('\\x04text\\x04>', end='')\nprint('and more')"
    assert quick(repl, code) == b"\x04text\x04>and more\n"
    chunks: list[bytes] = []
    repl.exec(code, on_output=chunks.append, timeout=10)
    assert b"".join(chunks) == b"\x04text\x04>and more\n"


def test_all_byte_values_written_to_stdout(repl: Repl) -> None:
    code = "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 4)"
    assert quick(repl, code) == bytes(range(256)) * 4


def test_output_holding_ctrl_d_then_an_exception(repl: Repl) -> None:
    with pytest.raises(RemoteError) as info:
        repl.exec("print('x\\x04y')\nraise ValueError('boom')", timeout=10)
    assert (info.value.type_name, info.value.message) == ("ValueError", "boom")
    assert 'File "<stdin>", line 2' in info.value.traceback
    assert repl.mode is Mode.RAW and repl.exec("print('next')") == b"next\n"


def test_streamed_output_holding_ctrl_d(repl: Repl) -> None:
    chunks: list[bytes] = []
    repl.exec("print('p\\x04q')\nprint('r')", on_output=chunks.append, timeout=10)
    assert b"".join(chunks) == b"p\x04q\nr\n"


def test_code_holding_control_bytes_runs(repl: Repl) -> None:
    # literal control bytes (not escapes) inside string literals of the code itself
    code = b"s = '\x01\x02\x03\x04'\nprint(len(s), [ord(c) for c in s])"
    assert repl.exec(code, timeout=10) == b"4 [1, 2, 3, 4]\n"
    assert repl.exec("print(s == '\\x01\\x02\\x03\\x04')") == b"True\n"


def test_checked_code_reads_like_code_sent_directly(repl: Repl) -> None:
    with pytest.raises(RemoteError) as info:
        repl.exec(b"x = 1\ndef f():\n    return y\n# \x04\nf()", timeout=10)
    tb = info.value.traceback
    assert 'File "<stdin>", line 5, in <module>' in tb and "line 3, in f" in tb
    assert "_hil" not in tb and "<string>" not in tb
    assert "_hil" not in repl.exec("print(dir())").decode()
    with pytest.raises(RemoteError) as info:
        repl.exec(b"x = (\n\x04", timeout=10)
    assert info.value.type_name == "SyntaxError"
