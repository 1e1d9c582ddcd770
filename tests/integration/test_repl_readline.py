"""The friendly-REPL driver against MicroPython's own readline (shared/readline/readline.c, as
built into the unix port): auto-indent, backspace dedent and block endings exactly as a board's
firmware does them. The unix port is not a board (its raw REPL and stdout differ); only its
friendly line editor is used here, on the master side of a pty."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.friendly import FriendlyRepl, play
from hil.repl import Mode, Repl
from hil.transport import Transport

MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(MICROPYTHON is None, reason="MicroPython unix port not installed")


class PtyMaster:
    """The terminal side of a pty, with the part of pyserial's interface Transport uses."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @property
    def in_waiting(self) -> int:
        return struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0"))[0]

    def read(self, size: int = 1) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], 0.02)
        return os.read(self.fd, size) if ready else b""

    def write(self, data: bytes) -> int:
        return os.write(self.fd, data)

    def close(self) -> None:
        pass


@pytest.fixture
def repl() -> Iterator[Repl]:
    master, slave = pty.openpty()
    tty.setraw(slave)  # bytes as the interpreter writes them, like a board's UART
    proc = subprocess.Popen([MICROPYTHON], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    transport = Transport(lambda: PtyMaster(master), name="unix-readline")
    transport.connect()
    try:
        transport.read_until(b">>> ", deadline=10)
        repl = Repl(transport)
        repl.mode = Mode.FRIENDLY
        yield repl
    finally:
        proc.kill()
        proc.wait(timeout=10)
        os.close(master)


def test_nested_blocks_are_typed_without_doubled_indentation(repl: Repl) -> None:
    shown = FriendlyRepl(repl).type(
        "for i in range(3):\n    if i:\n        print(i * 10)\nprint('done')"
    )
    assert shown.screen == (
        ">>> for i in range(3):\n"
        "...     if i:\n"
        "...         print(i * 10)\n"
        "... \n"
        "10\n20\n"
        ">>> print('done')\n"
        "done\n"
    )
    assert shown.output == "done\n"


def test_dedent_inside_a_block_and_else(repl: Repl) -> None:
    source = (
        "def sign(x):\n    if x < 0:\n        return -1\n    elif x:\n        return 1\n"
        "    return 0\n"
    )
    FriendlyRepl(repl).type(source)
    assert FriendlyRepl(repl).type("[sign(v) for v in (-5, 0, 7)]").output == "[-1, 0, 1]\n"
    shown = FriendlyRepl(repl).type("if 1 > 2:\n    print('no')\nelse:\n    print('yes')")
    assert shown.output == "yes\n"


def test_transcript_with_a_function_definition(repl: Repl) -> None:
    result = play(
        repl,
        """
        >>> def double(x):
        ...     return 2 * x
        >>> [double(i) for i in range(4)]
        [0, 2, 4, 6]
        >>> double(undefined)
        Traceback (most recent call last):
          ...
        NameError: name 'undefined' isn't defined
        """,
    )
    result.check()
    assert result.passed == 3
