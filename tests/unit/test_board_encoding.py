"""The file transfer encoding and the board-side helpers, checked against MicroPython's own
compiler (the unix port from PyPI; not a board, just the lexer that a board runs)."""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hil import boardcode
from hil.board import Board
from hil.boardcode import helper
from hil.checked import answer_function, read_answer
from hil.deadline import Deadline, as_deadline
from hil.encoding import (
    ADLER32,
    ADLER_STEP,
    SHA256,
    ascii_literal,
    board_checksum,
    bytes_literal,
    checksum,
    decode_repr_lines,
)
from hil.errors import BoardTimeout, ConfigError, LinkError, ProtocolError, RemoteError
from hil.probe import BoardFacts, MissingFeature

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
        (boardcode.get_code("raw", True), ("/x.bin", 1536)),
        (boardcode.get_code("base64", False), ("/x.bin", 1536)),
        (boardcode.get_code("repr", False), ("/x.bin", 256)),
        (boardcode.IDENTITY, ()),
    ],
)
def test_helpers_are_valid_python_and_clean_up_after_themselves(body: str, args: tuple) -> None:
    code = helper(body, *args, answer=answer_function("raw", True))
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

    def exec(
        self, code: str | bytes, *, timeout: Deadline | float = 10.0, checked_only: bool = False
    ) -> bytes:
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


class StepClock:
    """A clock that moves only when told: a chunk "takes" time without a real wait."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_put_shares_one_deadline_across_all_chunks() -> None:
    clock = StepClock()
    cost = 0.15  # seconds per chunk on that clock; four of them do not fit in 0.5 s

    def slow(code: bytes, budget: Deadline) -> None:
        if _is_chunk(code):
            if budget.remaining < cost:
                raise BoardTimeout("out of time", where="scripted")
            clock.now += cost

    repl = ScriptedRepl(slow)
    board = Board(repl, facts=EVERYTHING)  # type: ignore[arg-type]
    with pytest.raises(BoardTimeout, match="out of time"):
        board.put(
            os.urandom(6 * board.put_chunk),
            "/x.bin",
            timeout=Deadline(0.5, clock=clock),
            verify=False,
        )
    chunks = [budget for code, budget in repl.budgets if _is_chunk(code)]
    # each chunk got what the earlier ones left of the one budget, not a fresh one: the fourth
    # found too little and failed, and nothing ran past the deadline
    assert chunks == pytest.approx([0.5, 0.35, 0.2, 0.05])
    assert clock.now <= 0.5


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
    board.put(b"\x00\xff" * 8, "/x.bin", verify=False)
    assert board._literal_ok is False
    (chunk,) = [code for code, _ in repl.budgets if _is_chunk(code)]
    assert chunk == b"_hil_w(_hil_a(b'AP8A/wD/AP8A/wD/AP8A/w=='))"


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


# -- the fallbacks for firmware without binascii and hashlib --------------------------------------


def test_ascii_literal_is_printable_ascii_and_reads_back() -> None:
    data = bytes(range(256))
    literal = ascii_literal(data)
    assert all(0x20 <= c < 0x7F for c in literal)
    assert ast.literal_eval(literal.decode()) == data
    assert ascii_literal(b"a'b\\c") == b"b'a\\x27b\\x5cc'"


@pytest.mark.parametrize(
    ("data", "token"),
    [
        (b"", "adler32:00000001:0"),
        (b"Wikipedia", "adler32:11e60398:9"),  # the reference value of the Adler-32 article
        (b"abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ],
)
def test_host_checksums_match_reference_values(data: bytes, token: str) -> None:
    assert checksum(data, token.split(":")[0]) == token


def _run_on_micropython(tmp_path: Path, body: str, *args: object, answer: str = "") -> bytes:
    script = tmp_path.parent / f"{tmp_path.name}-helper.py"
    script.write_text(helper(body, *args, answer=answer or answer_function("repr", False)))
    out = subprocess.run([MICROPYTHON, str(script)], capture_output=True, timeout=60, check=True)
    return out.stdout


def _value(out: bytes, sha: bool = False) -> object:
    return read_answer(out, sha)


@pytest.mark.skipif(MICROPYTHON is None, reason="the MicroPython unix port is not installed")
def test_board_adler32_equals_the_host_checksum(tmp_path: Path) -> None:
    files = {
        "empty": b"",
        "all": bytes(range(256)) * 3,
        "ff": b"\xff" * 5000,  # the largest sums: stays exact across the per-step modulo
        "random": os.urandom(7777),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(tmp_path / name) for name in files] + [str(tmp_path / "missing")]
    answer = _value(_run_on_micropython(tmp_path, boardcode.ADLER32, paths, ADLER_STEP))
    for name, data in files.items():
        assert board_checksum(answer[str(tmp_path / name)], ADLER32) == checksum(data, ADLER32)
    assert board_checksum(answer[str(tmp_path / "missing")], ADLER32) is None


@pytest.mark.skipif(MICROPYTHON is None, reason="the MicroPython unix port is not installed")
def test_board_sha256_without_binascii_equals_the_host_checksum(tmp_path: Path) -> None:
    data = os.urandom(3000)
    (tmp_path / "f").write_bytes(data)
    answer = _value(_run_on_micropython(tmp_path, boardcode.SHA256, [str(tmp_path / "f")]))
    assert board_checksum(answer[str(tmp_path / "f")], SHA256) == checksum(data, SHA256)


@pytest.mark.skipif(MICROPYTHON is None, reason="the MicroPython unix port is not installed")
@pytest.mark.parametrize("style", ["raw", "base64", "repr"])
@pytest.mark.parametrize("sha", [True, False])
def test_get_in_each_style_is_exact_and_checked(tmp_path: Path, style: str, sha: bool) -> None:
    data = bytes(range(256)) * 4 + b"'\"\\\r\n\x10\x14\x04" + os.urandom(1000) + b"\r"
    (tmp_path / "f").write_bytes(data)
    code = boardcode.get_code(style, sha)
    out = _run_on_micropython(tmp_path, code, str(tmp_path / "f"), 99)
    assert read_answer(out, sha) == data
    damaged = bytearray(out)
    damaged[len(out) // 2] ^= 0x40
    with pytest.raises(LinkError):
        read_answer(bytes(damaged), sha)


@pytest.mark.skipif(MICROPYTHON is None, reason="the MicroPython unix port is not installed")
def test_ls_without_ilistdir(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "f.bin").write_bytes(b"x" * 123)
    out = _run_on_micropython(tmp_path, boardcode.LS_PLAIN, str(tmp_path), True)
    assert sorted(_value(out)) == [("f.bin", False, 123), ("sub", True, 0)]


def test_decode_repr_lines_refuses_what_is_not_bytes() -> None:
    with pytest.raises(ValueError, match="not a bytes literal"):
        decode_repr_lines(b"b'ok'\r\n'text'\r\n")


# -- the Board's choices on firmware without conveniences, against a scripted REPL ---------------

MICROBIT = BoardFacts("microbit", "micropython", (1, 9, 2), mem_free=7000, features=frozenset())


def test_a_bare_board_whose_literal_probe_fails_gets_ascii_literals() -> None:
    repl = ScriptedRepl(probe=RemoteError("SyntaxError", "", "SyntaxError:"))
    board = Board(repl, facts=MICROBIT)  # type: ignore[arg-type]
    board.put(b"\x00\xffA" * 6, "/x.bin", verify=False)
    opening, chunk, closing, swap = [code for code, _ in repl.budgets]
    # flat (no '/'), through a temp file copied over the target (no os.rename)
    assert opening == b"_hil_f = open('x.bin.hil-tmp', 'wb')\n_hil_w = _hil_f.write\n"
    assert chunk == b"_hil_w(b'" + b"\\x00\\xffA" * 6 + b"')"
    assert closing == b"_hil_f.close()\ndel _hil_f, _hil_w\n"  # no binascii name to delete
    assert b"_hil('x.bin.hil-tmp', 'x.bin')" in swap and b"os.rename" not in swap


def test_chunks_follow_the_heap() -> None:
    board = Board(ScriptedRepl(), facts=MICROBIT)  # type: ignore[arg-type]
    assert board.put_chunk == 700
    tiny = BoardFacts("x", "micropython", (1,), mem_free=100)
    assert Board(ScriptedRepl(), facts=tiny).put_chunk == 64  # type: ignore[arg-type]
    assert Board(ScriptedRepl(), facts=EVERYTHING).put_chunk == 4096  # type: ignore[arg-type]


def test_a_memory_error_halves_the_chunk_and_resends_the_same_bytes() -> None:
    written = bytearray()

    def small_heap(code: bytes, budget: Deadline) -> None:
        if _is_chunk(code):
            if len(code) > 300:
                raise RemoteError("MemoryError", "memory allocation failed", "MemoryError:")
            written.extend(ast.literal_eval(code[len(b"_hil_w(") : -1].decode("latin-1")))

    repl = ScriptedRepl(small_heap, probe=bytes(range(256)))
    board = Board(repl, facts=MICROBIT)  # type: ignore[arg-type]
    data = bytes(range(65, 91)) * 40
    board.put(data, "/x.bin", verify=False)
    assert bytes(written) == data
    assert board.put_chunk == 175  # 700 -> 350 -> 175, kept for the next put


def test_what_a_bare_board_cannot_do_is_a_usage_error_naming_the_feature() -> None:
    board = Board(ScriptedRepl(), facts=MICROBIT)  # type: ignore[arg-type]
    with pytest.raises(MissingFeature, match="lacks hashlib") as info:
        board.sha256("/x.bin")
    assert info.value.features == ["hashlib"] and isinstance(info.value, ConfigError)
    with pytest.raises(MissingFeature, match=r"os\.mkdir"):
        board.mkdir("/lib")
    with pytest.raises(MissingFeature, match=r"os\.mkdir"):
        board.put(b"x", "/lib/x.py")
    assert board.checksum_kind == ADLER32


def test_put_never_sends_a_short_literal() -> None:
    """MicroPython interns short literals for good: a short last chunk goes as numbers, and a
    short rest is split with the chunk before it."""
    repl = ScriptedRepl()
    board = Board(repl, facts=EVERYTHING)  # type: ignore[arg-type]
    board.put(b"ab", "/tiny.bin", verify=False)
    board.put(bytes(board.put_chunk + 3), "/x.bin", verify=False)
    chunks = [code for code, _ in repl.budgets if _is_chunk(code)]
    assert chunks[0] == b"_hil_w(bytes((97,98,)))"
    assert len(chunks) == 3 and all(len(c) > 30 for c in chunks[1:])
