"""The file transfer encoding and the board-side helpers, checked against MicroPython's own
compiler (the unix port from PyPI; not a board, just the lexer that a board runs)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hil import boardcode
from hil.board import Board
from hil.boardcode import helper
from hil.deadline import Deadline, as_deadline
from hil.encoding import bytes_literal
from hil.errors import BoardTimeout, LinkError, ProtocolError, RemoteError
from hil.probe import BoardFacts

MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent))
#: A board with every convenience (the facts a probe of our virtual board gives, less the card).
EVERYTHING = BoardFacts.everything()


def test_bytes_literal_escapes_only_what_the_repl_and_lexer_act_on() -> None:
    literal = bytes_literal(bytes(range(256)))
    body = literal[2:-1]
    for special in b"\x00\x01\x02\x03\x04\n\r":
        assert bytes([special]) not in body
    assert len(body) == 256 + 3 * 5 + 4 * 1  # five \xNN escapes, four two-character ones
    assert bytes(range(0x80, 0x100)) in body  # high bytes travel as they are


@pytest.mark.skipif(MICROPYTHON is None, reason="the MicroPython unix port is not installed")
def test_micropython_reads_the_literal_back_exactly(tmp_path: Path) -> None:
    data = bytes(range(256)) * 2 + os.urandom(4096)
    source = (
        b"import hashlib, binascii\nx = "
        + bytes_literal(data)
        + b"\nprint(len(x), binascii.hexlify(hashlib.sha256(x).digest()).decode())\n"
    )
    script = tmp_path / "probe.py"
    script.write_bytes(source)
    out = subprocess.run([MICROPYTHON, str(script)], capture_output=True, timeout=30, check=True)
    expected = [str(len(data)).encode(), hashlib.sha256(data).hexdigest().encode()]
    assert out.stdout.split() == expected


@pytest.mark.parametrize(
    ("body", "args"),
    [
        (boardcode.LS, ("/lib",)),
        (boardcode.LS_PLAIN, ("/lib", True)),
        (boardcode.SHA256, (["/a.py", "/b'q.py"],)),
        (boardcode.ADLER32, (["/a.py"], 256)),
        (boardcode.MKDIR, ("/a/b", True, True)),
        (boardcode.RM, ("/a", True)),
        (boardcode.GET_BASE64, ("/x.bin", 1536)),
        (boardcode.GET_REPR, ("/x.bin", 256)),
        (boardcode.IDENTITY, ()),
    ],
)
def test_helpers_are_valid_python_and_clean_up_after_themselves(body: str, args: tuple) -> None:
    code = helper(body, *args)
    compile(code, "<helper>", "exec")
    assert code.rstrip().endswith("del _hil")


# -- put and the encoding probe, against a scripted REPL ----------------------------------------


class _Tail:
    tail = b""


class ScriptedRepl:
    """Just what ``Board.put`` uses of a ``Repl``: each exec is handed to ``on_exec``, which
    sees the code and the budget (a ``Deadline``) and may sleep or raise; the probe's answer
    (or error) is ``probe``."""

    where = "scripted"
    transport = _Tail()

    def __init__(
        self,
        on_exec: Callable[[bytes, Deadline], None] = lambda code, budget: None,
        probe: object = None,
    ) -> None:
        self.on_exec = on_exec
        self.probe = probe
        self.budgets: list[tuple[bytes, float]] = []

    def note(self, text: str) -> None:
        pass

    def exec(self, code: str | bytes, *, timeout: Deadline | float = 10.0) -> bytes:
        data = code.encode() if isinstance(code, str) else code
        budget = as_deadline(timeout)
        self.budgets.append((data, budget.remaining))
        self.on_exec(data, budget)
        return b""

    def eval(self, expression: bytes, *, timeout: Deadline | float = 10.0) -> object:
        if isinstance(self.probe, Exception):
            raise self.probe
        return self.probe


def _is_chunk(code: bytes) -> bool:
    return code.startswith(b"_hil_w(")


def _is_cleanup(code: bytes) -> bool:
    return code.startswith(b"_hil_f.close()")


def test_put_gives_each_chunk_what_it_needs_not_the_whole_budget() -> None:
    repl = ScriptedRepl()
    board = Board(repl, facts=EVERYTHING)  # type: ignore[arg-type]
    board.put(os.urandom(3 * board.put_chunk), "/x.bin", timeout=1000.0, verify=False)
    chunks = [budget for code, budget in repl.budgets if _is_chunk(code)]
    assert len(chunks) == 3
    # about 4096 encoded bytes at a quarter of 9600 baud plus margin, far below the 1000 s
    assert all(budget < 60 for budget in chunks), chunks


def test_a_stalled_chunk_fails_after_its_own_budget_and_is_what_put_reports() -> None:
    def stall(code: bytes, budget: Deadline) -> None:
        if _is_chunk(code):
            raise BoardTimeout(f"stalled ({budget.remaining:.0f} s)", where="scripted")
        if _is_cleanup(code):
            raise LinkError("port vanished", where="scripted")

    repl = ScriptedRepl(stall)
    board = Board(repl, facts=EVERYTHING)  # type: ignore[arg-type]
    with pytest.raises(BoardTimeout, match="stalled"):
        board.put(os.urandom(3 * board.put_chunk), "/x.bin", timeout=1000.0, verify=False)
    assert [_is_chunk(code) for code, _ in repl.budgets] == [False, True, False]
    assert repl.budgets[1][1] < 60  # the stall was noticed after one chunk's budget
    assert _is_cleanup(repl.budgets[-1][0])  # the file was still closed, or tried to be


def test_put_shares_one_deadline_across_all_chunks() -> None:
    cost = 0.15  # real seconds per chunk; four of them do not fit in 0.5 s

    def slow(code: bytes, budget: Deadline) -> None:
        if _is_chunk(code):
            if budget.remaining < cost:
                raise BoardTimeout("out of time", where="scripted")
            time.sleep(cost)

    repl = ScriptedRepl(slow)
    board = Board(repl, facts=EVERYTHING)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(BoardTimeout, match="out of time"):
        board.put(os.urandom(6 * board.put_chunk), "/x.bin", timeout=0.5, verify=False)
    assert time.monotonic() - started < 0.5 + 0.2
    assert sum(_is_chunk(code) for code, _ in repl.budgets) == 4


def test_a_board_error_during_put_is_not_hidden_by_a_failing_cleanup() -> None:
    def full(code: bytes, budget: Deadline) -> None:
        if _is_chunk(code):
            raise RemoteError("OSError", "28", "OSError: 28", where="scripted")
        if _is_cleanup(code):
            raise BoardTimeout("cleanup hung", where="scripted")

    board = Board(ScriptedRepl(full), facts=EVERYTHING)  # type: ignore[arg-type]
    with pytest.raises(RemoteError, match="OSError: 28"):
        board.put(b"data", "/x.bin", verify=False)


def test_a_failing_cleanup_after_a_good_transfer_still_fails_put() -> None:
    def hung(code: bytes, budget: Deadline) -> None:
        if _is_cleanup(code):
            raise BoardTimeout("cleanup hung", where="scripted")

    board = Board(ScriptedRepl(hung), facts=EVERYTHING)  # type: ignore[arg-type]
    with pytest.raises(BoardTimeout, match="cleanup hung"):
        board.put(b"data", "/x.bin", verify=False)


@pytest.mark.parametrize(
    "error",
    [
        RemoteError("SyntaxError", "invalid syntax", "SyntaxError: invalid syntax"),
        ProtocolError("eval(...) did not return a literal"),
    ],
)
def test_a_board_that_rejects_the_probe_gets_base64(error: Exception) -> None:
    repl = ScriptedRepl(probe=error)
    board = Board(repl, facts=EVERYTHING)  # type: ignore[arg-type]
    board.put(b"\x00\xff", "/x.bin", verify=False)
    assert board._literal_ok is False
    (chunk,) = [code for code, _ in repl.budgets if _is_chunk(code)]
    assert chunk == b"_hil_w(_hil_a(b'AP8='))"


@pytest.mark.parametrize(
    "error", [LinkError("port vanished"), BoardTimeout("no answer within 10 s")]
)
def test_a_link_failure_during_the_probe_propagates_and_is_probed_again(
    error: Exception,
) -> None:
    repl = ScriptedRepl(probe=error)
    board = Board(repl, facts=EVERYTHING)  # type: ignore[arg-type]
    with pytest.raises(type(error)):
        board.put(b"data", "/x.bin", verify=False)
    assert board._literal_ok is None  # not condemned to base64 by a flaky link
    assert repl.budgets == []  # nothing was sent
    repl.probe = bytes(range(256))
    board.put(b"data", "/x.bin", verify=False)
    assert board._literal_ok is True
