"""The host's end of the link with a virtual board's firmware: two pipes that carry the board's
events and requests (``hil/sim/firmware/linkcodes.py`` names every code) and the host's answers.

Why a part of its own: the framing (header line, optional payload, OK/ERR answers) is the
contract with ``hilfw.py``; keeping it here, with the codes imported from the one module both
sides share, leaves the host with only "what does this message mean for the board".
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from hil.sim.firmware import linkcodes as code

#: Longest header line the firmware sends; more without a newline is a broken link.
MAX_HEADER = 4096


class BadLinkMessage(ValueError):
    """The firmware sent something that is not a link message (a bug on the board's side)."""


@dataclass(frozen=True)
class Message:
    """One message from the firmware: its code (``linkcodes``), its words and its payload."""

    code: str
    args: tuple[str, ...] = ()
    payload: bytes = b""

    def int_arg(self, index: int) -> int:
        try:
            return int(self.args[index])
        except (IndexError, ValueError) as e:
            raise BadLinkMessage(f"link message {self!r}: argument {index} is not a number") from e


def parse_message(buffer: bytearray) -> Message | None:
    """Take one complete message off the front of ``buffer``; None while more bytes are needed.

    An empty line is a message with an empty code (ignored by the host)."""
    end = buffer.find(b"\n")
    if end < 0:
        if len(buffer) > MAX_HEADER:
            raise BadLinkMessage(
                f"link header longer than {MAX_HEADER} bytes: {bytes(buffer[:60])!r}"
            )
        return None
    words = bytes(buffer[:end]).decode(errors="replace").split()
    payload_size = 0
    if words[:2] == [code.CARD, code.CARD_WRITE]:
        if len(words) < 5 or not words[4].isdigit():
            raise BadLinkMessage(f"card write without a block count: {bytes(buffer[:end])!r}")
        payload_size = int(words[4]) * code.CARD_BLOCK
    if len(buffer) < end + 1 + payload_size:
        return None
    payload = bytes(buffer[end + 1 : end + 1 + payload_size])
    del buffer[: end + 1 + payload_size]
    if not words:
        return Message("")
    return Message(words[0], tuple(words[1:]), payload)


def encode_ok(payload: bytes = b"") -> bytes:
    return f"{code.REPLY_OK} {len(payload)}\n".encode() + payload


def encode_error(errno: int, message: str = "") -> bytes:
    return f"{code.REPLY_ERR} {errno} {message}\n".encode()


class FirmwareLink:
    """One power-on's pair of link pipes (non-blocking ends): ``read_fd`` carries the firmware's
    messages, ``write_fd`` the host's answers."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.inbuf = bytearray()
        self.outbuf = bytearray()

    def read(self) -> bool:
        """Take in what the firmware sent; False once it closed its end (the board is gone)."""
        try:
            data = os.read(self.read_fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.inbuf += data
        return True

    def next_message(self) -> Message | None:
        return parse_message(self.inbuf)

    def reply(self, payload: bytes = b"") -> None:
        self.outbuf += encode_ok(payload)
        self.flush()

    def reply_error(self, errno: int, message: str = "") -> None:
        self.outbuf += encode_error(errno, message)
        self.flush()

    def flush(self) -> None:
        """Write what the pipe takes now; the rest waits for the loop's next writable event."""
        if not self.outbuf:
            return
        try:
            n = os.write(self.write_fd, self.outbuf)
        except BlockingIOError:
            return
        except BrokenPipeError:
            self.outbuf.clear()
            return
        del self.outbuf[:n]

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
