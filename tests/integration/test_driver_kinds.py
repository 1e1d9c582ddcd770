"""The REPL driver and the Board API on both kinds of virtual board: our unix-port board (every
convenience, raw-paste) and real MicroPython 1.9.2 firmware on a QEMU micro:bit (no raw-paste,
no ``sys.modules``/``hashlib``/``binascii``/``os.ilistdir``, a flat filesystem, ~9 kB of heap).

The same checks run on both; where the kinds differ the test says what each must do.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.board import Board, FileInfo
from hil.errors import BoardTimeout, RemoteError
from hil.friendly import FriendlyRepl
from hil.probe import MissingFeature

KINDS = ["unix", "microbit"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def port(kind: str, request: pytest.FixtureRequest) -> str:
    """The serial port of a fresh board of the kind (stopped after the test). The unix board
    gets its card in slot 1, where ``machine.SDCard()`` without arguments looks."""
    if kind == "unix":
        return request.getfixturevalue("start_virtual_boards")(1, sd="8M", sd_slot=1)[0].port
    return request.getfixturevalue("microbit_board").port


@pytest.fixture
def board(port: str) -> Iterator[Board]:
    with Board.open(port) as b:
        yield b


def test_exec_and_eval(board: Board) -> None:
    board.exec("total = 0\nfor i in range(10):\n    total += i")
    assert board.exec("print(total)\nprint('two\\nlines')") == "45\ntwo\nlines\n"
    assert board.eval("[total, 'x' * 3, b'\\x00\\xff', 2 ** 40, (1.5, None, True)]") == [
        45,
        "xxx",
        b"\x00\xff",
        2**40,
        (1.5, None, True),
    ]


def test_remote_error_carries_the_type_message_and_traceback(board: Board) -> None:
    with pytest.raises(RemoteError) as info:
        board.exec("def f():\n    return missing_name\nf()")
    error = info.value
    assert error.type_name == "NameError" and "missing_name" in error.message
    assert "Traceback" in error.traceback and error.fault == "product"
    assert board.eval("6 * 7") == 42  # the session goes on


def test_interrupt_ends_an_endless_loop_and_keeps_the_session(board: Board) -> None:
    board.exec("counter = 41")
    with pytest.raises(BoardTimeout):
        board.exec("while True:\n    counter += 0", timeout=1.0)
    assert b"KeyboardInterrupt" in board.repl.interrupt()
    assert board.eval("counter + 1") == 42


def test_soft_reset_clears_state(board: Board) -> None:
    board.exec("kept = 1")
    board.soft_reset()
    with pytest.raises(RemoteError, match="NameError"):
        board.exec("kept")
    board.soft_reset(raw=False)  # from the friendly REPL too, then back to raw
    assert board.eval("'raw again'") == "raw again"


def test_long_output(board: Board) -> None:
    out = board.exec("for i in range(2000):\n    print('line', i)", timeout=60)
    assert out == "".join(f"line {i}\n" for i in range(2000))


def test_long_code_goes_the_way_the_firmware_takes(board: Board, kind: str) -> None:
    code = "x = " + repr("z" * 1500) + "\nprint(len(x))\ndel x"
    # (on the plain link of the micro:bit, code this long goes unchecked: see hil.replrun)
    assert board.exec(code) == "1500\n"
    # the micro:bit answers the raw-paste request with its raw banner: plain raw from then on
    assert board.repl.raw_paste is (kind == "unix")
    assert board.exec("print('again')") == "again\n"


def test_friendly_repl(board: Board) -> None:
    shown = board.friendly("x = 6\nfor i in range(2):\n    x += i\nx * 7")
    assert shown.output == "49\n" and shown.error is None
    assert FriendlyRepl(board.repl).type("undefined_name").error.type_name == "NameError"
    assert board.eval("x") == 7  # the friendly and raw REPL share __main__


def test_probe_facts(board: Board, kind: str) -> None:
    before = board.eval("sorted(dir())")
    facts = board.facts
    assert board.facts is facts  # once per Board
    assert facts.implementation == "micropython" and facts.mem_free
    assert facts.has("writable-fs") and facts.has("machine.unique_id")
    if kind == "unix":
        assert facts.platform == "linux"
        assert facts.lacks("sys.modules", "hashlib", "binascii", "os.ilistdir", "raw-paste") == []
        assert facts.sd is not None and facts.has("sd")
    else:
        assert (facts.platform, facts.version) == ("microbit", (1, 9, 2))
        assert facts.lacks("sys.modules", "hashlib", "binascii", "os.ilistdir", "raw-paste") == [
            "sys.modules",
            "hashlib",
            "binascii",
            "os.ilistdir",
            "raw-paste",
        ]
        assert facts.mem_free < 16_000 and facts.sd is None
    assert board.eval("sorted(dir())") == before  # no name left behind
    assert "_hilprobe.tmp" not in [f.name for f in board.ls("/")]  # no file either


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(range(256)) * 4,  # every byte value, the REPL's control bytes included
        bytes(range(256))[::-1] + os.urandom(2500),
    ],
    ids=["empty", "all-bytes", "random"],
)
def test_put_get_round_trip(board: Board, data: bytes) -> None:
    board.put(data, "/blob.bin")
    assert board.get("/blob.bin") == data
    assert FileInfo("blob.bin", False, len(data)) in board.ls("/")
    kind = board.checksum_kind
    expected = {
        "sha256": f"sha256:{hashlib.sha256(data).hexdigest()}",
        "adler32": f"adler32:{zlib.adler32(data):08x}:{len(data)}",
    }[kind]
    assert board.checksum("/blob.bin") == expected
    board.rm("/blob.bin")
    assert board.checksum("/blob.bin") is None


def test_every_encoding_the_board_can_take(board: Board) -> None:
    data = bytes(range(256)) * 3
    for literal_ok in (True, False):  # 8-bit literals, then the fallback for this board
        board._literal_ok = literal_ok
        board.put(data, "/enc.bin")
        assert board.get("/enc.bin") == data
    board.rm("/enc.bin")


def test_deploy_skips_unchanged_files(board: Board, tmp_path: Path) -> None:
    (tmp_path / "mod_a.py").write_text("A = 1\n")
    (tmp_path / "mod_b.py").write_text("B = 2\n" * 40)
    first = board.deploy(tmp_path)
    assert sorted(first.copied) == ["/mod_a.py", "/mod_b.py"] and not first.skipped
    second = board.deploy(tmp_path)
    assert not second.copied and sorted(second.skipped) == ["/mod_a.py", "/mod_b.py"]
    (tmp_path / "mod_b.py").write_text("B = 3\n" * 40)
    third = board.deploy(tmp_path)
    assert third.copied == ["/mod_b.py"] and third.skipped == ["/mod_a.py"]
    assert board.exec("import mod_a, mod_b\nprint(mod_a.A + mod_b.B)") == "4\n"


def test_ls_mkdir_where_the_filesystem_has_directories(board: Board) -> None:
    board.put(b"x" * 10, "/ten.txt")
    assert FileInfo("ten.txt", False, 10) in board.ls()
    if board.facts.has("os.mkdir"):
        board.mkdir("/d")
        board.put(b"y", "/d/y.txt")
        assert board.ls("/d") == [FileInfo("y.txt", False, 1)]
        board.rm("/d", recursive=True)
    else:  # the micro:bit's filesystem is flat: a clear usage error, nothing half done
        with pytest.raises(MissingFeature, match=r"os\.mkdir"):
            board.put(b"y", "/d/y.txt")
        with pytest.raises(MissingFeature, match=r"os\.mkdir"):
            board.mkdir("/d")
    board.rm("/ten.txt")
    assert "ten.txt" not in [f.name for f in board.ls()]


def test_identity(board: Board, kind: str) -> None:
    ident = board.identity()
    assert ident.implementation == "micropython"
    assert ident.unique_id and len(ident.unique_id) >= 8  # both kinds have machine.unique_id
    assert ident.platform == ("linux" if kind == "unix" else "microbit")


def test_hard_reset(board: Board) -> None:
    board.exec("gone = 1")
    board.hard_reset()
    with pytest.raises(RemoteError, match="NameError"):
        board.exec("gone")
    assert board.eval("1 + 1") == 2


def test_files_on_a_board_with_under_5_kb_of_heap(microbit_board, tmp_path: Path) -> None:
    """A micro:bit with 7 kB exists, and tests take heap too: with a ballast in ``__main__``
    the board API still fits, in chunks sized from the free heap it measured."""
    with Board.open(microbit_board.port) as board:
        free = board.facts.mem_free
        board.exec(f"ballast = bytearray({free - 4500})")
        facts = board.probe(refresh=True)
        assert facts.mem_free is not None and facts.mem_free < 5000
        data = bytes(range(256)) * 6 + os.urandom(1500)
        board.put(data, "/small.bin")
        assert board.get("/small.bin") == data
        assert board.put_chunk <= 500
        (tmp_path / "mod_s.py").write_text("S = 'small heap'\n" * 30)
        assert board.deploy(tmp_path).copied == ["/mod_s.py"]
        assert board.deploy(tmp_path).skipped == ["/mod_s.py"]
        assert board.eval("len(ballast)") == free - 4500  # the ballast stayed all along
