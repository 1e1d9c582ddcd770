"""Raw-paste flow control: the host never sends more than the board has granted.

The counterpart here is a byte link that enforces the credit rule of py/pyexec.c (the window
size plus the first 0x01 are two windows; each window consumed earns a 0x01) and consumes input
only when the host polls, so the host really has to wait for grants.
"""

from __future__ import annotations

import struct

import pytest

from hil.errors import ProtocolError
from hil.repl import Mode, Repl
from hil.transport import Transport


class WindowedLink:
    def __init__(self, window: int, *, consume_per_poll: int) -> None:
        self.window = window
        self.consume_per_poll = consume_per_poll
        self.out = bytearray()
        self.pending = bytearray()  # received, not yet consumed by the "board"
        self.code = bytearray()
        self.credit = 0
        self.state = "command"
        self.max_outstanding = 0

    # the board side
    def _run(self) -> None:
        if self.state != "paste":
            return
        take = self.pending[: self.consume_per_poll]
        del self.pending[: len(take)]
        for byte in take:
            if byte == 0x04:
                self.state = "done"
                self.out += b"\x04" + str(len(self.code)).encode() + b"\r\n\x04\x04>"
                return
            self.code.append(byte)
            if len(self.code) % self.window == 0:
                self.out += b"\x01"

    # the pyserial-like side
    @property
    def in_waiting(self) -> int:
        self._run()
        return len(self.out)

    def read(self, size: int = 1) -> bytes:
        self._run()
        data = bytes(self.out[:size])
        del self.out[:size]
        return data

    def write(self, data: bytes) -> int:
        if self.state == "command":
            assert data == b"\x05A\x01"
            self.state = "paste"
            self.out += b"R\x01" + struct.pack("<H", self.window) + b"\x01"
            return len(data)
        self.pending += data
        granted = 2 * self.window + (len(self.code) // self.window) * self.window
        outstanding = len(self.code) + len(self.pending) - (1 if data.endswith(b"\x04") else 0)
        assert outstanding <= granted, f"host sent {outstanding} bytes with {granted} granted"
        self.max_outstanding = max(self.max_outstanding, outstanding - len(self.code))
        return len(data)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("window", "consume"), [(128, 1), (128, 50), (32, 7), (512, 4096)])
def test_host_stays_within_the_granted_windows(window: int, consume: int) -> None:
    link = WindowedLink(window, consume_per_poll=consume)
    transport = Transport(lambda: link, name="windowed")
    transport.connect()
    repl = Repl(transport)
    repl.mode = Mode.RAW
    code = b"#" * 5000
    assert repl.exec(code, timeout=5) == b"5000\n"
    assert bytes(link.code) == code
    # the host used the credit it had, or it would crawl one window per round trip
    assert link.max_outstanding > window


class GarbageLink(WindowedLink):
    def write(self, data: bytes) -> int:
        written = super().write(data)
        if self.state == "paste" and self.pending:
            self.out += b"?"
        return written


def test_unexpected_byte_during_paste_is_a_protocol_error() -> None:
    link = GarbageLink(16, consume_per_poll=0)
    transport = Transport(lambda: link, name="garbage")
    transport.connect()
    repl = Repl(transport)
    repl.mode = Mode.RAW
    with pytest.raises(ProtocolError, match="unexpected byte") as info:
        repl.exec(b"#" * 100, timeout=1)
    assert info.value.tail.endswith(b"?")
