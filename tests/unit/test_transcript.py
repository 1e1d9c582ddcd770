"""The transcript tap: every byte with direction and time, rendered readably."""

from __future__ import annotations

from hil.transcript import Direction, Transcript, render_bytes


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def test_render_names_control_bytes_and_splits_board_lines() -> None:
    tap = Transcript(clock=Ticks())
    tap.note("exec print(1)")
    tap.record(Direction.TX, b"\x05A\x01")
    tap.record(Direction.RX, b"R\x01\x80\x00\x01")
    tap.record(Direction.TX, b"print(1)\x04")
    tap.record(Direction.RX, b"\x041\r")
    tap.record(Direction.RX, b"\n\x04\x04>")
    lines = tap.render().split("\n")
    assert [line[12:] for line in lines] == [
        "## exec print(1)",
        "-> <CTRL-E>A<CTRL-A>",
        "<- R<CTRL-A>\\x80\\x00<CTRL-A>",
        "-> print(1)<CTRL-D>",
        "<- <CTRL-D>1\\r\\n",
        "<- <CTRL-D><CTRL-D>>",
    ]
    assert lines[0].startswith("[    0.001]")


def test_payload_and_marks_select_one_step() -> None:
    tap = Transcript()
    tap.record(Direction.RX, b"old")
    mark = tap.mark()
    tap.record(Direction.TX, b"a")
    tap.record(Direction.RX, b"new")
    assert tap.payload(Direction.RX) == b"oldnew"
    assert tap.payload(Direction.RX, since=mark) == b"new"
    assert "old" not in tap.render(since=mark)


def test_bounded_transcript_drops_oldest_and_says_so() -> None:
    tap = Transcript(max_bytes=100)
    for i in range(50):
        tap.record(Direction.RX, b"%09d\n" % i)
    assert tap.dropped_bytes > 0
    assert tap.payload(Direction.RX).endswith(b"000000049\n")
    assert len(tap.payload(Direction.RX)) + tap.dropped_bytes == 500
    assert tap.render().startswith(f"(... {tap.dropped_bytes} earlier bytes dropped ...)")
    assert len(tap) == 50  # positions stay stable while old entries go


def test_render_bytes_escapes_what_is_not_printable() -> None:
    assert render_bytes(b"a\\b\x1b\xff\x03") == "a\\\\b\\x1b\\xff<CTRL-C>"
