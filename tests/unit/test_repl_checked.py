"""Checked code and checked answers (``hil.checked``, ``hil.replread.split_answer``) without a
board: the wrapper run by the real MicroPython unix port, each kind of damage classified, and
answers that fail their trailer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hil import checked
from hil.checked import CodeDamaged, NoRoom, inner_code, pieces, read_answer, unwrap, wrap
from hil.errors import LinkError, ProtocolError
from hil.replparse import ExecResult
from hil.replread import split_answer

MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent))
needs_micropython = pytest.mark.skipif(MICROPYTHON is None, reason="MicroPython unix port missing")

CODE = b"x = 6\ndef f():\n    return x * 7\nprint(f(), '\\u2603', '\x01\x04')\n"


def _run(tmp_path: Path, source: bytes) -> ExecResult:
    script = tmp_path / "wrapped.py"
    script.write_bytes(source)
    proc = subprocess.run([MICROPYTHON, str(script)], capture_output=True, timeout=30)
    # the unix port prints a script's traceback to stdout and names its frames by the path;
    # a board's raw REPL frames it apart and says <stdin>
    out = proc.stdout.replace(str(script).encode(), b"<stdin>")
    cut = out.find(b"Traceback (most recent call last):")
    return ExecResult(out, b"") if cut < 0 else ExecResult(out[:cut], out[cut:])


@needs_micropython
@pytest.mark.parametrize("eight_bit", [False, True])
def test_the_wrapper_runs_the_code_once_checked(tmp_path: Path, eight_bit: bool) -> None:
    result = unwrap(_run(tmp_path, wrap(CODE, eight_bit=eight_bit)))
    assert result == ExecResult("42 \u2603 \x01\x04\n".encode(), b"")


@needs_micropython
def test_a_damaged_literal_is_refused_by_the_board_and_safe_to_resend(tmp_path: Path) -> None:
    damaged = wrap(CODE).replace(b"x * 7", b"x * 8")
    with pytest.raises(CodeDamaged) as info:
        unwrap(_run(tmp_path, damaged))
    assert info.value.resend_safe and info.value.fault == "infrastructure"


@needs_micropython
def test_the_users_error_reads_as_if_sent_directly(tmp_path: Path) -> None:
    result = unwrap(_run(tmp_path, wrap(b"a = 1\ndef g():\n    return nope\ng()\n")))
    error = result.error()
    assert error is not None and error.type_name == "NameError"
    assert 'File "<stdin>", line 4, in <module>' in error.traceback
    assert 'File "<stdin>", line 3, in g' in error.traceback
    assert "_hil" not in error.traceback and "<string>" not in error.traceback


@needs_micropython
def test_code_stored_in_pieces_runs_like_the_single_form(tmp_path: Path) -> None:
    code = b"s = " + repr("z" * 1000).encode() + b"\nprint(len(s))\n"
    parts = pieces(code, size=300)
    assert len(parts) == 4 and all(len(p) > 200 for p in parts)  # even: no short last one
    source = b"\n".join(parts) + b"\n" + wrap(code, stored=True)
    assert unwrap(_run(tmp_path, source)).stdout == b"1000\n"
    assert inner_code(wrap(code)) == code and inner_code(wrap(code, stored=True)) is None


def test_each_kind_of_answer_is_classified() -> None:
    own = b'Traceback (most recent call last):\n  File "<stdin>", line 7, in <module>\n'
    # the wrapper's own line failed (a damaged call): nothing ran, safe to resend
    with pytest.raises(CodeDamaged) as info:
        unwrap(ExecResult(b"", own + b"TypeError: function takes 4 positional arguments\n"))
    assert info.value.resend_safe
    # the check passed, then the wrapper's exec line was damaged: nothing ran either
    exec_line = own + b"  File \"<stdin>\", line 6, in _hil\nNameError: name 'xec' is not defined\n"
    with pytest.raises(CodeDamaged) as info:
        unwrap(ExecResult(checked.MARK, exec_line))
    assert info.value.resend_safe
    # output without the mark: the answer was damaged and the code may have run
    with pytest.raises(CodeDamaged) as info:
        unwrap(ExecResult(b"42\n", b""))
    assert not info.value.resend_safe
    # no room for the checked form
    with pytest.raises(NoRoom):
        unwrap(ExecResult(b"", b"Traceback (most recent call last):\nMemoryError: x\n"))


def test_a_confirmed_answer_splits_at_the_traceback() -> None:
    tb = b"Traceback (most recent call last):\r\nValueError: v\r\n"
    assert split_answer(b"a\x04b\r\n\x04" + tb + b"\x04>") == (b"a\x04b\r\n", tb, False)
    assert split_answer(b"\x00\x04\x05\x04\x04>") == (b"\x00\x04\x05", b"", False)
    with pytest.raises(ProtocolError):
        split_answer(b"no frame end")


@pytest.mark.parametrize("sha", [True, False])
def test_answers_must_match_their_trailer(sha: bool) -> None:
    good = b"r[1, 2]\n" + checked.trailer(b"[1, 2]", sha) + b"\n"
    assert read_answer(good, sha) == [1, 2]
    for bad in (
        good.replace(b"[1, 2]", b"[1, 3]", 1),
        good.replace(b"r[", b"x[", 1),
        good[: good.rindex(b"#")],
        b"b" + checked.escape_raw(b"\x10\x04") + b"\x10x\n" + checked.trailer(b"\x10\x04", sha),
    ):
        with pytest.raises(LinkError):
            read_answer(bad, sha)


def test_raw_bytes_escape_and_come_back() -> None:
    data = bytes(range(256)) * 3 + b"\x10\x14\x10\x10\x04"
    escaped = checked.escape_raw(data)
    assert b"\x04" not in escaped and checked.unescape(escaped) == data


def test_an_expressions_traceback_is_numbered_from_its_own_first_line() -> None:
    # MicroPython 1.9 reports the helper's ``finally`` (line 13) as well as the expression
    board = (
        "Traceback (most recent call last):\r\n"
        '  File "<stdin>", line 13, in <module>\r\n'
        '  File "<stdin>", line 11, in <module>\r\n'
        '  File "<stdin>", line 11, in <lambda>\r\n'
        '  File "lib.py", line 4, in f\r\n'
        '  File "<stdin>", line 5, in _o\r\n'
        "ZeroDivisionError: division by zero\r\n"
    )
    assert checked.expression_traceback(board, 10, 11) == (
        "Traceback (most recent call last):\r\n"
        '  File "<stdin>", line 2, in <module>\r\n'
        '  File "<stdin>", line 2, in <lambda>\r\n'
        '  File "lib.py", line 4, in f\r\n'
        "ZeroDivisionError: division by zero\r\n"
    )


def test_a_compile_error_past_the_expression_stays_on_its_last_line() -> None:
    # ``1 +`` is only found incomplete at the helper's ``))`` on the next line
    board = 'Traceback (most recent call last):\n  File "<stdin>", line 11\nSyntaxError: x\n'
    assert '"<stdin>", line 1\n' in checked.expression_traceback(board, 10, 10)
