"""How file bytes cross the REPL, and how both ends agree that a file is unchanged.

Host-side halves of the board helpers in ``hil.boardcode``; pure functions, so each is checked
against a reference (Python's own ``zlib``, ``base64``, ``ast``) and against MicroPython's lexer
without a board.

* ``bytes_literal``: 8-bit clean, escapes only what the REPL or the lexer would act on (about
  7 % overhead on random data). Needs a lexer that keeps bytes >= 0x80 as they are, which the
  board proves once (``Board`` probes it).
* ``ascii_literal``: every byte outside printable ASCII as ``\\xNN``; any MicroPython reads it
  (up to 4x the size: the fallback where neither 8-bit literals nor ``binascii`` work).
* base64 through ``binascii.a2b_base64`` where the board has it (33 %).
* Checksums: sha256 where the board has ``hashlib``; else Adler-32 plus the size, which plain
  MicroPython computes in a few lines with small integers only (no big-int arithmetic on a
  micro:bit) and the host takes from ``zlib``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib

from hil.replparse import parse_value

#: Bytes a raw-paste/raw REPL or the lexer would act on inside ``b'...'``: Ctrl-A..D, NUL,
#: CR/LF (the lexer turns CR into LF), the backslash and the quote.
_LITERAL_ESCAPES = {
    0x00: b"\\x00",
    0x01: b"\\x01",
    0x02: b"\\x02",
    0x03: b"\\x03",
    0x04: b"\\x04",
    0x0A: b"\\n",
    0x0D: b"\\r",
    0x5C: b"\\\\",
    0x27: b"\\'",
}
_LITERAL_SPECIAL = re.compile(b"[\x00-\x04\n\r\\\\']")
_ASCII_SPECIAL = re.compile(b"[^\x20-\x7e]|[\\\\']")

SHA256 = "sha256"
ADLER32 = "adler32"
#: Bytes the board reads per step when it computes Adler-32: small enough that the running
#: sums stay small integers (below 2**30) until the modulo at the end of each step.
ADLER_STEP = 256


def bytes_literal(data: bytes) -> bytes:
    """``data`` as MicroPython source for a bytes literal, escaping only what must be."""
    return b"b'" + _LITERAL_SPECIAL.sub(lambda m: _LITERAL_ESCAPES[m.group()[0]], data) + b"'"


def ascii_literal(data: bytes) -> bytes:
    """``data`` as a bytes literal of printable ASCII only (``\\xNN`` for everything else)."""
    return b"b'" + _ASCII_SPECIAL.sub(lambda m: b"\\x%02x" % m.group()[0], data) + b"'"


def base64_call(data: bytes) -> bytes:
    """``data`` as a call of the board's ``a2b_base64`` (bound as ``_hil_a`` by ``put``)."""
    return b"_hil_a(b'" + base64.b64encode(data) + b"')"


def checksum(data: bytes, kind: str) -> str:
    """The token the board's checksum helper prints for the same bytes."""
    if kind == SHA256:
        return f"{SHA256}:{hashlib.sha256(data).hexdigest()}"
    if kind == ADLER32:
        return adler_token(len(data), zlib.adler32(data))
    raise ValueError(f"unknown checksum kind {kind!r}")


def adler_token(size: int, value: int) -> str:
    """``adler32:<8 hex digits>:<size>``: the size makes the weak checksum much stronger
    for the one question deploy asks (did this file change?)."""
    return f"{ADLER32}:{value:08x}:{size}"


def board_checksum(value: object, kind: str) -> str | None:
    """A board helper's answer for one file to a token (None: no such file)."""
    if value is None:
        return None
    if kind == SHA256:
        return f"{SHA256}:{value}"
    size, low, high = value  # type: ignore[misc]
    return adler_token(int(size), (int(high) << 16) | int(low))


def decode_repr_lines(out: bytes) -> bytes:
    """What ``get`` receives from a board without ``binascii``: one ``repr`` of a bytes chunk
    per line, parsed as a literal."""
    data = bytearray()
    for line in out.decode("ascii", "replace").splitlines():
        if line.strip():
            chunk = parse_value(line)
            if not isinstance(chunk, bytes):
                raise ValueError(f"not a bytes literal: {line[:80]!r}")
            data += chunk
    return bytes(data)
