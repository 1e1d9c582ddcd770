"""Error messages a person reads (``hil.errors``): what the board printed as a REPL shows it,
never protocol bytes, durations in rounded seconds; the raw bytes stay in ``tail``."""

from __future__ import annotations

import pytest

from hil.errors import TAIL_BYTES, BoardTimeout, LinkError, RawReplError, seconds_text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2.0, "2 s"), (1.99996, "2 s"), (0.25, "0.25 s"), (1.5, "1.5 s"), (119.6, "120 s")],
)
def test_seconds_read_rounded(seconds: float, text: str) -> None:
    assert seconds_text(seconds) == text


def test_nothing_since_the_code_was_sent_is_said_as_such() -> None:
    error = BoardTimeout("code did not finish within 2 s", where="vb0", since="the code was sent")
    assert str(error) == (
        "vb0: code did not finish within 2 s [infrastructure fault]; "
        "the board sent nothing since the code was sent"
    )
    acked = BoardTimeout("x", tail=b"R\x01\x80\x00\x01\x01\x04", since="the code was sent")
    assert str(acked).endswith("; the board printed nothing since the code was sent")
    assert acked.tail == b"R\x01\x80\x00\x01\x01\x04"


def test_what_was_printed_since_the_code_was_sent_is_its_last_lines() -> None:
    tail = b"\x04" + b"".join(b"tick %d\r\n" % i for i in range(9))
    error = BoardTimeout("code did not finish within 2 s", tail=tail, since="the code was sent")
    assert str(error).endswith(
        '; since the code was sent the board printed: "tick 4\\ntick 5\\ntick 6\\ntick 7\\ntick 8"'
    )


def test_a_links_last_bytes_show_as_lines_without_framing() -> None:
    tail = (
        b"x" * TAIL_BYTES + b"'nodename': 'vb0'}\r\n#hil 9 00ff\r\n\x04\x04>OK\x06boot\r\nready\r\n"
    )
    error = LinkError("link lost: EIO", where="vb0", tail=tail)
    assert str(error) == (
        'vb0: link lost: EIO [infrastructure fault]; the board\'s last lines: "boot\\nready"'
    )
    assert error.tail == tail[-TAIL_BYTES:]
    framing = RawReplError("no prompt", tail=b"\x04\x04>raw REPL; CTRL-B to exit\r\n>")
    assert str(framing).endswith("; the board's last bytes hold no output, only the REPL's framing")
