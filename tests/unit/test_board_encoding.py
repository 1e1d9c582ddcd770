"""The file transfer encoding and the board-side helpers, checked against MicroPython's own
compiler (the unix port from PyPI; not a board, just the lexer that a board runs)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hil.board import _GET, _LS, _MKDIR, _RM, _SHA256, _helper, bytes_literal

MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent))


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
        (_LS, ("/lib",)),
        (_SHA256, (["/a.py", "/b'q.py"],)),
        (_MKDIR, ("/a/b", True, True)),
        (_RM, ("/a", True)),
        (_GET, ("/x.bin", 1536)),
    ],
)
def test_helpers_are_valid_python_and_clean_up_after_themselves(body: str, args: tuple) -> None:
    code = _helper(body, *args)
    compile(code, "<helper>", "exec")
    assert code.rstrip().endswith("del _hil")
