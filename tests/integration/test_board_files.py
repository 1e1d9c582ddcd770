"""Board file operations on a virtual board: exact bytes in and out, hashes, deploy."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.board import Board, FileInfo
from hil.errors import RemoteError
from hil.sim import SimBoard


@pytest.fixture
def board(virtual_board: SimBoard) -> Iterator[Board]:
    with Board.open(virtual_board.port) as b:
        yield b


@pytest.mark.parametrize("size", [0, 1, 255, 4096, 50_000])
def test_put_get_round_trip_is_exact(board: Board, size: int) -> None:
    data = os.urandom(size)
    board.put(data, "/blob.bin")
    assert board.get("/blob.bin") == data
    assert board.sha256("/blob.bin") == hashlib.sha256(data).hexdigest()
    assert FileInfo("blob.bin", False, size) in board.ls("/")


def test_every_byte_value_survives_both_encodings(board: Board) -> None:
    data = bytes(range(256)) * 20
    board.put(data, "/all.bin")
    assert board._literal_ok is True  # the board took 8-bit literals
    assert board.get("/all.bin") == data
    board._literal_ok = False  # as on a board whose probe failed: base64
    board.put(data[::-1], "/all64.bin")
    assert board.get("/all64.bin") == data[::-1]


def test_put_local_file_and_run_it(board: Board, tmp_path: Path) -> None:
    module = tmp_path / "greet.py"
    module.write_text("def greet(name):\n    return 'hello ' + name\n")
    board.put(module, "/greet.py")
    assert board.exec("import greet\nprint(greet.greet('board'))") == "hello board\n"
    script = tmp_path / "script.py"
    script.write_text("print(sum(range(5)))\n")
    assert board.run(script) == "10\n"


def test_mkdir_ls_rm(board: Board) -> None:
    board.mkdir("/a/b/c", parents=True)
    board.mkdir("/a/b", exist_ok=True)
    with pytest.raises(RemoteError) as info:
        board.mkdir("/a")
    assert info.value.type_name == "OSError" and "EEXIST" in info.value.message
    board.put(b"x", "/a/b/c/f.txt")
    assert board.ls("/a/b") == [FileInfo("c", True, 0)]
    board.rm("/a/b/c/f.txt")
    assert board.ls("/a/b/c") == []
    board.rm("/a", recursive=True)
    assert "a" not in [entry.name for entry in board.ls("/")]
    with pytest.raises(RemoteError, match="ENOENT"):
        board.rm("/a")
    assert board.sha256("/a") is None


def test_file_operations_leave_the_repl_namespace_alone(board: Board) -> None:
    before = board.eval("sorted(globals())")
    board.put(b"data", "/n.bin")
    board.get("/n.bin")
    board.ls("/")
    board.sha256_many(["/n.bin", "/missing"])
    board.mkdir("/d", exist_ok=True)
    board.rm("/d")
    board.identity(refresh=True)
    assert board.eval("sorted(globals())") == before


def test_deploy_copies_only_what_changed(board: Board, tmp_path: Path) -> None:
    src = tmp_path / "app"
    (src / "lib" / "pkg").mkdir(parents=True)
    (src / "main_app.py").write_text("VALUE = 1\n")
    (src / "lib" / "pkg" / "__init__.py").write_text("")
    (src / "lib" / "pkg" / "util.py").write_text("def f():\n    return 42\n")
    (src / "lib" / "__pycache__").mkdir()
    (src / "lib" / "__pycache__" / "junk.pyc").write_bytes(b"\x00")

    first = board.deploy(src, "/app")
    assert sorted(first.copied) == [
        "/app/lib/pkg/__init__.py",
        "/app/lib/pkg/util.py",
        "/app/main_app.py",
    ]
    assert first.skipped == []

    second = board.deploy(src, "/app")
    assert second.copied == [] and len(second.skipped) == 3

    (src / "main_app.py").write_text("VALUE = 2\n")
    third = board.deploy(src, "/app")
    assert third.copied == ["/app/main_app.py"]
    board.exec("import sys\nsys.path[:0] = ['/app', '/app/lib']")
    assert board.exec("import main_app\nprint(main_app.VALUE)") == "2\n"
    assert board.exec("from pkg.util import f\nprint(f())") == "42\n"
