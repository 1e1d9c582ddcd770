"""The REPL view: the wire as a person at the REPL would have seen it (see the seed documents)."""

from __future__ import annotations

import pytest

from hil.replview import board_lines, exchange_view, repl_view, tail
from hil.transcript import CHECK, QUIET, STEP, Direction, Transcript


def exec_paste(tap: Transcript, code: bytes, out: bytes, err: bytes = b"", cut: int = 5) -> None:
    """An exec by raw-paste as the driver does it, the code split at a flow-control ack."""
    tap.note(f"exec {code[:20].decode()}")
    tap.record(Direction.TX, b"\x05A\x01")
    tap.record(Direction.RX, b"R\x01\x80\x00\x01")
    tap.record(Direction.TX, code[:cut])
    tap.record(Direction.RX, b"\x01")
    tap.record(Direction.TX, code[cut:] + b"\x04")
    tap.record(Direction.RX, b"\x04" + out[:3])
    tap.record(Direction.RX, out[3:] + b"\x04" + err + b"\x04>")


def test_code_at_prompts_then_output_and_traceback_nothing_split() -> None:
    tap = Transcript()
    exec_paste(tap, b"import test_simple", b"")
    traceback = (
        b"Traceback (most recent call last):\r\n"
        b'  File "<stdin>", line 1, in <module>\r\n'
        b"NameError: name 'sdcard_helper' isn't defined\r\n"
    )
    exec_paste(tap, b"sdcard_helper._mounted", b"", traceback)
    exec_paste(tap, b"print(repr(test_simple.sdcard_helper._mounted))", b"True\r\n", cut=13)
    assert repl_view(tap.entries()) == "\n".join(
        [
            ">>> import test_simple",
            ">>> sdcard_helper._mounted",
            "Traceback (most recent call last):",
            '  File "<stdin>", line 1, in <module>',
            "NameError: name 'sdcard_helper' isn't defined",
            ">>> test_simple.sdcard_helper._mounted",
            "True",
        ]
    )


def test_a_block_is_typed_with_continuation_prompts_and_ended() -> None:
    tap = Transcript()
    exec_paste(tap, b"for i in range(2):\n    print(i)\n", b"0\r\n1\r\n")
    assert repl_view(tap.entries()).split("\n") == [
        ">>> for i in range(2):",
        "...     print(i)",
        "...",
        "0",
        "1",
    ]


def test_plain_raw_repl_of_old_firmware_reads_the_same() -> None:
    tap = Transcript()
    tap.note("exec 1")
    tap.record(Direction.TX, b"\x05A\x01")
    tap.record(Direction.RX, b"raw REPL; CTRL-B to exit\r\n>")  # predates raw-paste
    tap.note("firmware predates raw-paste: plain raw REPL for this connection")
    tap.record(Direction.TX, b"print('hi')\x04")
    tap.record(Direction.RX, b"OKhi\r\n\x04\x04>")
    assert repl_view(tap.entries()).split("\n") == [
        ">>> print('hi')",
        "hi",
        "# firmware predates raw-paste: plain raw REPL for this connection",
    ]


def test_soft_reset_and_recovery_are_notes_with_what_the_board_printed() -> None:
    tap = Transcript()
    tap.note("soft reset")
    tap.record(Direction.TX, b"\x04")
    tap.record(
        Direction.RX, b"OK\r\nMPY: soft reboot\r\nboot.py ran\r\nraw REPL; CTRL-B to exit\r\n>"
    )
    tap.note("recovery: hard reset")
    tap.note("enter raw REPL")
    tap.record(Direction.TX, b"\r\x03\x03")
    tap.record(Direction.RX, b"\x1b[2Jgarbage\r\n")
    tap.record(Direction.TX, b"\r\x01")
    tap.record(Direction.RX, b"raw REPL; CTRL-B to exit\r\n>")
    assert repl_view(tap.entries()).split("\n") == [
        "# soft reset (Ctrl-D)",
        "MPY: soft reboot",
        "boot.py ran",
        "# recovery: hard reset",
        "# interrupt (Ctrl-C) and enter the raw REPL (Ctrl-A)",
        "\\x1b[2Jgarbage",  # board text is data: escaped
    ]


def test_an_exchange_the_board_did_not_finish_says_so() -> None:
    tap = Transcript()
    tap.note("exec while True: pass")
    tap.record(Direction.TX, b"\x05A\x01while True: pass\x04")
    tap.record(Direction.RX, b"R\x01\x80\x00\x01\x04")
    assert repl_view(tap.entries()).split("\n") == [
        ">>> while True: pass",
        "# (the board's answer ends here)",
    ]


def test_helper_programs_of_an_action_fold_into_its_title() -> None:
    tap = Transcript()
    with tap.action("deploy firmware/") as act:
        with tap.action("checksum 5 files"):
            exec_paste(tap, b"def _hil(a0):\n    pass\n", b"{}\r\n")
        with tap.action("put /main.py (2.1 kB)"):
            exec_paste(tap, b"_hil_w(b'x')", b"")
        act.title = "deploy firmware/ (5 files, 1 sent)"
    exec_paste(tap, b"import main", b"")
    assert repl_view(tap.entries()).split("\n") == [
        "# deploy firmware/ (5 files, 1 sent)",
        ">>> import main",
    ]
    unfolded = repl_view(tap.entries(), fold=False)
    assert ">>> _hil_w(b'x')" in unfolded
    assert "# put /main.py (2.1 kB)" in unfolded


def test_a_failing_helper_is_shown_in_full() -> None:
    tap = Transcript()
    with pytest.raises(OSError), tap.action("put /sd/x.txt (5 B)"):
        exec_paste(tap, b"_hil_f = open('/sd/x.txt', 'wb')", b"", b"OSError: [Errno 2] ENOENT\r\n")
        raise OSError("on the board")
    lines = repl_view(tap.entries()).split("\n")
    assert lines[0] == "# put /sd/x.txt (5 B): failed: OSError: on the board"
    assert lines[1:] == [">>> _hil_f = open('/sd/x.txt', 'wb')", "OSError: [Errno 2] ENOENT"]


def test_quiet_and_passing_check_actions_are_left_out_and_steps_kept() -> None:
    tap = Transcript()
    with tap.action("measure free heap", mode=QUIET):
        exec_paste(tap, b"import gc", b"12345\r\n")
    with tap.action("health check", mode=CHECK):
        exec_paste(tap, b"print(repr(1 + 1))", b"2\r\n")
    with tap.action("hard reset", mode=STEP):
        tap.note("launch import machine")
        tap.record(Direction.TX, b"\x05A\x01import machine\nmachine.reset()\x04")
        tap.record(Direction.RX, b"R\x01\x80\x00\x01\x04")
    assert repl_view(tap.entries()).split("\n") == [
        "# hard reset",
        ">>> import machine",
        "... machine.reset()",
        "# (started; not waiting for it to finish)",
    ]


def test_friendly_repl_shows_its_screen() -> None:
    tap = Transcript()
    tap.record(Direction.TX, b"\x02")
    tap.record(Direction.RX, b'\r\nMicroPython v1.24 on x; y with z\r\nType "help()" for more')
    tap.record(Direction.RX, b" information.\r\n>>> ")
    tap.note("friendly 2 ** 10")
    tap.record(Direction.TX, b"2 ** 10\r")
    tap.record(Direction.RX, b"2 ** 10\r\n1024\r\n>>> ")
    tap.record(Direction.TX, b"\x01")
    tap.record(Direction.RX, b"\r\nraw REPL; CTRL-B to exit\r\n>")
    assert repl_view(tap.entries()).split("\n") == [
        "MicroPython v1.24 on x; y with z",
        'Type "help()" for more information.',
        ">>> 2 ** 10",
        "1024",
    ]


def test_one_exchange_from_its_bytes() -> None:
    view = exchange_view(
        "exec", b"\x05A\x01print(repr(1+1))\x04", b"R\x01\x80\x00\x01\x042\r\n\x04\x04>"
    )
    assert view == ">>> 1+1\n2"


def test_tail_says_how_much_came_before() -> None:
    text = "\n".join(str(i) for i in range(100))
    rest = "see the report's REPL session"
    assert tail(text, 3, rest=rest) == f"# (97 earlier lines: {rest})\n97\n98\n99"
    assert tail("a\nb", 3) == "a\nb"
    assert tail("a\nb\nc", 2) == "# (1 earlier line)\nb\nc"


def test_code_sent_with_its_checksum_shows_as_the_users_code() -> None:
    checked = pytest.importorskip("hil.checked")
    code = b"import sdcard_helper\nsdcard_helper.mount()"
    tap = Transcript()
    tap.note("exec import sdcard_helper")
    tap.record(Direction.TX, checked.wrap(code) + b"\x04")  # plain raw REPL (micro:bit)
    traceback = (
        b"Traceback (most recent call last):\r\n"
        b'  File "<stdin>", line 9, in <module>\r\n'
        b'  File "<stdin>", line 8, in _hil\r\n'
        b'  File "<string>", line 2, in <module>\r\n'
        b"OSError: no SD card\r\n"
    )
    tap.record(Direction.RX, b"OK\x06\x04" + traceback + b"\x04>")
    lines = repl_view(tap.entries()).split("\n")
    assert lines[:2] == [">>> import sdcard_helper", "... sdcard_helper.mount()"]
    assert "_hil" not in "\n".join(lines) and "\\x06" not in "\n".join(lines)
    assert lines[-1] == "OSError: no SD card"
    assert '  File "<stdin>", line 2, in <module>' in lines


def test_an_eval_with_a_checked_answer_shows_expression_and_value() -> None:
    checked = pytest.importorskip("hil.checked")
    boardcode = pytest.importorskip("hil.boardcode")
    source = checked.answer_function("raw", False)
    head = boardcode.compact(
        "def _hil():\n" + "".join(" " + line + "\n" for line in source.split("\n"))
    )
    code = f"{head} return _o\ntry:\n _hil()((\nsdcard_helper._mounted\n))\nfinally:\n del _hil\n"
    tap = Transcript()
    exec_paste(tap, code.encode(), b"rTrue\r\n#hil 4 0123abcd\r\n", cut=40)
    assert repl_view(tap.entries()).split("\n") == [">>> sdcard_helper._mounted", "True"]


def test_an_evals_traceback_reads_as_the_expression_typed_at_the_prompt() -> None:
    checked = pytest.importorskip("hil.checked")
    boardcode = pytest.importorskip("hil.boardcode")
    head = boardcode.compact(
        "def _hil():\n" + boardcode.indent(checked.answer_function("raw", True))
    )
    code = f"{head} return _o\ntry:\n _hil()((\n(1,\n 1 / 0)\n))\nfinally:\n del _hil\n"
    start = code.split("\n").index("(1,") + 1  # the expression's line in the helper code
    traceback = (
        b"Traceback (most recent call last):\r\n"
        b'  File "<stdin>", line %d, in <module>\r\n'
        % (start + 4)  # the helper's finally
        + b'  File "<stdin>", line %d, in <module>\r\n' % (start + 1)
        + b"ZeroDivisionError: divide by zero\r\n"
    )
    tap = Transcript()
    exec_paste(tap, code.encode(), b"", traceback, cut=40)
    assert repl_view(tap.entries()).split("\n") == [
        ">>> (1,",
        "...  1 / 0)",
        "...",
        "Traceback (most recent call last):",
        '  File "<stdin>", line 2, in <module>',
        "ZeroDivisionError: divide by zero",
    ]


def test_code_the_board_never_took_is_shown_from_the_drivers_note() -> None:
    tap = Transcript()
    tap.note("exec print('still there?')")
    tap.record(Direction.TX, b"\x05A\x01")  # a hung board: no answer to the raw-paste request
    assert repl_view(tap.entries()).split("\n") == [
        ">>> print('still there?')",
        "# (not sent: the board did not take the code)",
        "# (the board's answer ends here)",
    ]


def test_a_health_check_that_recovered_the_board_is_shown() -> None:
    tap = Transcript()
    with tap.action("health check", mode=CHECK):
        tap.note("enter raw REPL")
        tap.record(Direction.TX, b"\r\x03\x03\r\x01")  # a hung board: nothing comes back
        tap.note("recovery: hard reset")
        tap.note("enter raw REPL")
        tap.record(Direction.TX, b"\r\x03\x03\r\x01")
        tap.record(Direction.RX, b"\r\nraw REPL; CTRL-B to exit\r\n>")
        exec_paste(tap, b"print(repr(1 + 1))", b"2\r\n")
    assert repl_view(tap.entries()).split("\n") == [
        "# health check",
        "# interrupt (Ctrl-C) and enter the raw REPL (Ctrl-A)",
        "# (no raw REPL prompt came back)",
        "# recovery: hard reset",
        "# interrupt (Ctrl-C) and enter the raw REPL (Ctrl-A)",
        ">>> 1 + 1",
        "2",
    ]


def test_c1_controls_in_board_output_are_escaped_like_c0_ones() -> None:
    """U+009B is CSI on many terminals, like ESC [: the view shows it, never passes it on."""
    tap = Transcript()
    tap.note("exec print(s)")
    tap.record(Direction.TX, b"\x05A\x01print(s)\x04")
    tap.record(Direction.RX, b"R\x01\x80\x00\x01\x04\xc2\x9b2J\xc2\x85next\x7f\r\n\x04\x04>")
    view = repl_view(tap.entries())
    assert view.split("\n") == [">>> print(s)", "\\x9b2J\\x85next\\x7f"]
    assert not any(0x80 <= ord(ch) < 0xA0 for ch in view)


def test_c1_controls_on_the_friendly_screen_are_escaped() -> None:
    tap = Transcript()
    tap.note("friendly print(s)")
    tap.record(Direction.TX, b"print(s)\r")
    tap.record(Direction.RX, b"print(s)\r\n\xc2\x9b2Jx\x7f\x1b[K\r\n>>> ")
    assert repl_view(tap.entries()).split("\n") == [">>> print(s)", "\\x9b2Jx\\x7f"]


def test_an_errors_tail_shows_what_the_board_printed_not_the_protocol() -> None:
    # the walkthrough's tail: an earlier answer cut mid-word, its trailer, a prompt, raw-paste
    earlier = b"ard with unix', 'nodename': 'vb0'}\r\n#hil 12 0123abcd\r\n\x04\x04>"
    assert board_lines(earlier + b"R\x01\x80\x00\x01\x01\x04", whole=False) == []
    assert board_lines(earlier + b"OK\x06tick 1\r\ntick 2\r\n", whole=False) == [
        "tick 1",
        "tick 2",
    ]
    traceback = b'Traceback (most recent call last):\r\n  File "<stdin>", line 1\r\nOSError: 5\r\n'
    assert board_lines(b"\x04hello\x04" + traceback + b"\x04>", whole=True) == [
        "hello",
        "Traceback (most recent call last):",
        '  File "<stdin>", line 1',
        "OSError: 5",
    ]
    # a soft reset's answer reads as its boot lines; one cut line shows where it starts
    assert board_lines(b"OK\r\nMPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>", whole=True) == [
        "MPY: soft reboot"
    ]
    assert board_lines(b"ets Jul 29 2019 12:2", whole=False) == ["...ets Jul 29 2019 12:2"]


def test_an_errors_tail_keeps_the_last_few_whole_lines() -> None:
    out = b"".join(b"line %d \x1b\r\n" % i for i in range(40))
    assert board_lines(out, whole=True) == [f"line {i} \\x1b" for i in range(35, 40)]
    long = [f"{i:02d}" + "x" * 70 for i in range(3)]
    assert board_lines("\r\n".join(long).encode(), whole=True, chars=200) == long[1:]
    assert board_lines(b"y" * 300, whole=True, chars=200) == ["..." + "y" * 200]


def test_a_note_before_the_code_was_sent_reads_before_it_and_repeats_stay_on_the_wire() -> None:
    tap = Transcript()
    for code in (b"x = 1", b"print(x)"):
        tap.note(f"exec {code.decode()}")
        tap.note(
            "the board cannot afford checked code here: sent unchecked"
            if code == b"x = 1"
            else "sent unchecked"
        )
        tap.record(Direction.TX, code + b"\x04")
        tap.record(Direction.RX, b"OK" + (b"1\r\n" if b"print" in code else b"") + b"\x04\x04>")
    assert repl_view(tap.entries()).split("\n") == [
        "# the board cannot afford checked code here: sent unchecked",
        ">>> x = 1",
        ">>> print(x)",
        "1",
    ]
    assert "## sent unchecked" in tap.render()


def test_a_note_that_holds_for_the_session_is_shown_once() -> None:
    tap = Transcript()
    note = "the board cannot afford checked code here: sent unchecked"
    for code in (b"x = 1", b"y = 2"):
        tap.note(f"exec {code.decode()}")
        tap.note(note)  # the driver says it again after a reset
        tap.record(Direction.TX, code + b"\x04")
        tap.record(Direction.RX, b"OK\x04\x04>")
    assert repl_view(tap.entries()).split("\n") == [f"# {note}", ">>> x = 1", ">>> y = 2"]
