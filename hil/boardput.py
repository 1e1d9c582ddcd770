"""Writing a file to a board: chunked, verified, and atomic.

Why its own module: ``put`` is the one board operation that changes state in several steps over
a link that can fail between any two of them, so its order matters. The data goes to
``<path>.hil-tmp`` in chunks, is checked there (the board's checksum against the data's), and
only then replaces the target in one step on the board (``os.rename``; where the firmware lacks
it, as on the micro:bit, a copy done by the board in one exec, which a link cut cannot
interrupt). A put cut off at any point leaves the old file, and at worst the temp file. A failed
put removes its temp file when the call's deadline leaves time for it; the deadline bounds the
whole call, clean-up included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from hil import boardcode
from hil.boardcode import helper
from hil.deadline import Deadline
from hil.encoding import ascii_literal, base64_call, bytes_literal, checksum
from hil.errors import HilError, InfrastructureError, LinkError, RemoteError

if TYPE_CHECKING:
    from hil.board import Board

#: Literals shorter than this are interned by MicroPython's parser, for good.
SHORT = 16
#: Fewest file bytes per ``put`` exec.
MIN_CHUNK = 64
#: Bytes per second ``put`` budgets for: a quarter of 9600 baud (raw-paste flow control, the
#: board compiling and writing what it received). A merely slow link must not time out.
SLOW_RATE = 9600 / 10 / 4
#: Seconds added to each ``put`` exec's budget for round trips and the board's own work.
EXEC_MARGIN = 5.0
#: ``put`` writes here, verifies, then renames over the target.
TMP_SUFFIX = ".hil-tmp"
#: Most seconds the clean-up exec of a failed ``put`` gets (within the call's deadline).
CLEANUP_TIMEOUT = 5.0


def put(board: Board, data: bytes, path: str, deadline: Deadline, *, verify: bool) -> None:
    """``Board.put``: see the module doc."""
    encode, base64_used = chunk_encoder(board)
    step = board.put_chunk
    if encode is ascii_literal:
        step = max(MIN_CHUNK, step // 3)  # up to 4 source bytes per data byte
    target, temp = board.board_path(path), board.board_path(path + TMP_SUFFIX)
    board.repl.note(f"put {len(data)} bytes to {target} (through {temp})")
    opening = boardcode.PUT_OPEN.format(path=temp) + (boardcode.PUT_BASE64 if base64_used else "")
    _exec(board, opening.encode(), deadline, chunk=False)
    cleanup = (boardcode.PUT_CLOSE_BASE64 if base64_used else boardcode.PUT_CLOSE).encode()
    try:
        start = 0
        while start < len(data):
            end = _chunk_end(start, step, len(data))
            try:
                _exec(board, b"_hil_w(" + _chunk(encode, data[start:end]) + b")", deadline)
            except RemoteError as exc:
                # The heap could not hold the chunk's source (a fragmented small heap): the
                # statement never ran, so the same bytes go again in smaller chunks.
                if exc.type_name != "MemoryError":
                    raise
                if step <= MIN_CHUNK:  # the board has no heap left for our chunks
                    raise InfrastructureError(
                        f"no heap for put chunks of {step} bytes: {exc.what}", where=board.name
                    ) from exc
                step = board.put_chunk = max(MIN_CHUNK, step // 2)
                board.repl.note(f"MemoryError: put chunks of {step} bytes from now on")
                continue
            start = end
    except BaseException:
        # Best effort, within what is left of the call: close and remove the temp file if the
        # board still listens; the error that stopped the transfer is the one to report.
        if deadline.remaining > 0.1:
            with contextlib.suppress(HilError):
                remove = helper(boardcode.RM, temp, False).encode()
                board.repl.exec(cleanup + remove, timeout=deadline.cap(CLEANUP_TIMEOUT))
        raise
    _exec(board, cleanup, deadline, chunk=False)
    if verify:
        kind = board.checksum_kind
        got = board.checksums([path + TMP_SUFFIX], timeout=deadline)[path + TMP_SUFFIX]
        sent = checksum(data, kind)
        if got != sent:
            raise LinkError(
                f"{path}: data corrupted in transit (on the board {got}, sent {sent})",
                where=board.name,
                tail=board.transport.tail,
            )
    swap = boardcode.RENAME if board.facts.has("os.rename") else boardcode.COPY
    board.run_helper(helper(swap, temp, target), deadline)


def _chunk_end(start: int, step: int, size: int) -> int:
    """Where the chunk from ``start`` ends: ``step`` bytes, or the rest split in two when the
    last chunk would be short (MicroPython interns short literals for good: a unique one per
    put would leak heap on a small board)."""
    rest = size - start
    if rest <= step:
        return size
    if rest < step + SHORT:
        return start + rest // 2
    return start + step


def _chunk(encode: Callable[[bytes], bytes], data: bytes) -> bytes:
    """A chunk's source; a short one as a tuple of numbers (never interned)."""
    if len(data) < SHORT:
        return b"bytes((%s,))" % b",".join(b"%d" % c for c in data)
    return encode(data)


def _exec(board: Board, code: bytes, deadline: Deadline, *, chunk: bool = True) -> None:
    """One exec of a ``put``: within the transfer's deadline and what ``code`` needs. Chunks
    travel checked or fail with ``MemoryError`` (then they are halved); the short opening and
    closing statements may go unchecked on a heap too full to check them."""
    limit = deadline.cap(EXEC_MARGIN + len(code) / SLOW_RATE)
    board.repl.exec(code, timeout=limit, checked_only=chunk)


def chunk_encoder(board: Board) -> tuple[Callable[[bytes], bytes], bool]:
    """The densest encoding this board takes, and whether it is base64 (``_hil_a``): 8-bit
    literals where the board proved it takes them, else base64 with ``binascii``, else
    ASCII-escaped literals."""
    if board.literal_ok():
        return bytes_literal, False
    if board.facts.has("binascii"):
        return base64_call, True
    return ascii_literal, False
