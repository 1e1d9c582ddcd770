"""The REPL driver against recorded board conversations, each fed split at every byte boundary.

The recordings are byte streams of real sessions (the virtual board, and MicroPython's
pyexec.c for behaviour only a real firmware shows: raw-paste refused, firmware without
raw-paste, a paste aborted on a SyntaxError). A parser that only works when the board's bytes
arrive in convenient chunks fails here.
"""

from __future__ import annotations

import warnings

import pytest
from replay_port import Script, ScriptedPort, cut_points

from hil.checked import wrap
from hil.errors import BoardTimeout, RawReplError, RemoteError
from hil.repl import Mode, Repl, Uncooker, parse_value
from hil.transport import Transport

RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
PASTE_OK = [("tx", b"\x05A\x01"), ("rx", b"R\x01\x80\x00\x01")]


def repl_for(script: Script, cuts: list[int] = (), mode: Mode = Mode.RAW, **options) -> Repl:
    port = ScriptedPort(script, cuts)
    transport = Transport(lambda: port, name="replay")
    transport.connect()
    repl = Repl(transport, **options)
    repl.mode = mode
    repl.port = port  # for the tests' final check that the whole recording was used
    return repl


def each_split(script: Script):
    return pytest.mark.parametrize("cuts", cut_points(script), ids=lambda c: f"cut{c[0]}-{len(c)}")


# -- raw-paste with flow control --------------------------------------------------------------

LONG_CODE = b"x = '" + b"y" * 300 + b"'\nprint(len(x))\nprint('a\\nb')"
GRANTS: Script = [
    *PASTE_OK,
    ("tx", LONG_CODE[:256]),  # two windows of credit: the window size and the first 0x01
    ("rx", b"\x01"),
    ("tx", LONG_CODE[256:] + b"\x04"),
    ("rx", b"\x01\x04300\r\na\r\nb\r\n\x04\x04>"),
]


@each_split(GRANTS)
def test_exec_with_window_grants(cuts: list[int]) -> None:
    repl = repl_for(GRANTS, cuts)
    assert repl.exec(LONG_CODE) == b"300\na\nb\n"
    assert repl.mode is Mode.RAW and repl.window == 128 and repl.port.done


@each_split(GRANTS)
def test_streamed_output_is_uncooked_across_chunks(cuts: list[int]) -> None:
    repl = repl_for(GRANTS, cuts)
    chunks: list[bytes] = []
    assert repl.exec(LONG_CODE, on_output=chunks.append) == b""
    assert b"".join(chunks) == b"300\na\nb\n"
    assert b"\x04" not in b"".join(chunks)


TRACEBACK: Script = [
    *PASTE_OK,
    ("tx", b"def f():\n    return undefined\nf()\x04"),
    (
        "rx",
        b"\x04\x04Traceback (most recent call last):\r\n"
        b'  File "<stdin>", line 3, in <module>\r\n'
        b'  File "<stdin>", line 2, in f\r\n'
        b"NameError: name 'undefined' isn't defined\r\n\x04>",
    ),
]


@each_split(TRACEBACK)
def test_board_exception_is_a_remote_error(cuts: list[int]) -> None:
    repl = repl_for(TRACEBACK, cuts)
    with pytest.raises(RemoteError) as info:
        repl.exec("def f():\n    return undefined\nf()")
    err = info.value
    assert (err.type_name, err.message) == ("NameError", "name 'undefined' isn't defined")
    assert "line 2, in f\n" in err.traceback and err.fault == "product"
    assert repl.mode is Mode.RAW and repl.port.done


SYNTAX_ABORT: Script = [
    # A real board compiles while it reads: on a SyntaxError it stops reading, says 0x04, and
    # discards input up to the host's 0x04 (py/pyexec.c mp_reader_stdin_close).
    *PASTE_OK,
    ("tx", b"x = (\n" + b"#" * 250),
    ("rx", b"\x04"),
    ("tx", b"\x04"),
    ("rx", b'\x04Traceback (most recent call last):\r\n  File "<stdin>", line 2\r\n'),
    ("rx", b"SyntaxError: invalid syntax\r\n\x04>"),
]


@each_split(SYNTAX_ABORT)
def test_paste_aborted_by_syntax_error(cuts: list[int]) -> None:
    repl = repl_for(SYNTAX_ABORT, cuts)
    with pytest.raises(RemoteError) as info:
        repl.exec(b"x = (\n" + b"#" * 600)
    assert info.value.type_name == "SyntaxError"
    assert repl.raw_paste is True and repl.port.done  # a SyntaxError is the code's fault


MEMORY_ABORT: Script = [
    *PASTE_OK,
    ("tx", b"print('a' * 3)\n" + b"#" * 241),
    ("rx", b"\x04"),
    ("tx", b"\x04"),
    ("rx", b"\x04Traceback (most recent call last):\r\nMemoryError: memory allocation failed\r\n"),
    ("rx", b"\x04>"),
    # the code never ran: resent the plain way, which stays in use for this connection
    ("tx", b"print('a' * 3)\n" + b"#" * 300 + b"\x04"),
    ("rx", b"OKaaa\r\n\x04\x04>"),
]


@each_split(MEMORY_ABORT)
def test_paste_aborted_by_the_board_falls_back_to_plain_raw(cuts: list[int]) -> None:
    repl = repl_for(MEMORY_ABORT, cuts)
    assert repl.exec(b"print('a' * 3)\n" + b"#" * 300) == b"aaa\n"
    assert repl.raw_paste is False and repl.port.done


REFUSED: Script = [
    ("tx", b"\x05A\x01"),
    ("rx", b"R\x00>"),
    ("tx", b"print(1)\x04"),
    ("rx", b"OK1\r\n\x04\x04>"),
    ("tx", b"print(2)\x04"),  # no second raw-paste request on this connection
    ("rx", b"OK2\r\n\x04\x04>"),
]


@each_split(REFUSED)
def test_raw_paste_refused_falls_back_for_the_connection(cuts: list[int]) -> None:
    repl = repl_for(REFUSED, cuts)
    assert repl.exec("print(1)") == b"1\n"
    assert repl.exec("print(2)") == b"2\n"
    assert repl.raw_paste is False and repl.port.done


OLD_FIRMWARE: Script = [
    # firmware before raw-paste: "\x05A" is code, "\x01" resets the raw REPL (re-prints banner)
    ("tx", b"\x05A\x01"),
    ("rx", RAW_PROMPT),
    ("tx", b"print(3)\x04"),
    ("rx", b"OK3\r\n\x04\x04>"),
]


@each_split(OLD_FIRMWARE)
def test_firmware_without_raw_paste(cuts: list[int]) -> None:
    repl = repl_for(OLD_FIRMWARE, cuts)
    assert repl.exec("print(3)") == b"3\n"
    assert repl.raw_paste is False and repl.port.done


# -- entering the raw REPL, soft resets -------------------------------------------------------

NOISY_ENTRY: Script = [
    ("tx", b"\r\x03\x03"),
    ("rx", b"\xfe\x00\x13garbage>\x04 from a board\r\n>>> \r\n>>> "),
    ("tx", b"\r\x01"),
    ("rx", b"\r\n>>> \r\n" + RAW_PROMPT),
]


@each_split(NOISY_ENTRY)
def test_enter_raw_after_noise(cuts: list[int]) -> None:
    repl = repl_for(NOISY_ENTRY, cuts, mode=Mode.UNKNOWN)
    repl.enter_raw()
    assert repl.mode is Mode.RAW and repl.port.done


def test_enter_raw_gives_up_with_the_last_bytes() -> None:
    port = ScriptedPort([("rx", b"rebooting... ets Jul 29 2019")])
    port.expected_tx = b"\r\x03\x03\r\x01" * 100  # the host may retry as often as it likes
    transport = Transport(lambda: port, name="replay")
    transport.connect()
    repl = Repl(transport, enter_timeout=0.3)
    with pytest.raises(RawReplError) as info:
        repl.enter_raw()
    assert b"ets Jul 29 2019" in info.value.tail
    assert info.value.fault == "infrastructure"


SYSTEM_EXIT: Script = [
    *PASTE_OK,
    ("tx", b"print('bye')\nimport sys\nsys.exit()\x04"),
    ("rx", b"\x04bye\r\n\x04\x04MPY: soft reboot\r\nboot.py ran\r\n" + RAW_PROMPT),
]


@each_split(SYSTEM_EXIT)
def test_uncaught_system_exit_soft_resets(cuts: list[int]) -> None:
    repl = repl_for(SYSTEM_EXIT, cuts)
    result = repl.exec_raw("print('bye')\nimport sys\nsys.exit()")
    assert (result.stdout, result.stderr, result.soft_reset) == (b"bye\n", b"", True)
    assert repl.mode is Mode.RAW and repl.port.done


SOFT_RAW: Script = [
    ("tx", b"\x04"),
    ("rx", b"OK\r\nMPY: soft reboot\r\nhello from boot.py\r\n" + RAW_PROMPT),
]


@each_split(SOFT_RAW)
def test_soft_reset_raw_form(cuts: list[int]) -> None:
    repl = repl_for(SOFT_RAW, cuts)
    assert repl.soft_reset() == b"hello from boot.py\n"
    assert repl.mode is Mode.RAW and repl.port.done


SOFT_FRIENDLY: Script = [
    ("tx", b"\x04"),
    (
        "rx",
        b"\r\nMPY: soft reboot\r\nmain.py says hi\r\n"
        b"MicroPython v1.24.1 on 2024-11-29; Raspberry Pi Pico with RP2040\r\n"
        b'Type "help()" for more information.\r\n>>> ',
    ),
]


@each_split(SOFT_FRIENDLY)
def test_soft_reset_friendly_form(cuts: list[int]) -> None:
    repl = repl_for(SOFT_FRIENDLY, cuts, mode=Mode.FRIENDLY)
    assert repl.soft_reset(raw=False) == b"main.py says hi\n"
    assert repl.mode is Mode.FRIENDLY and repl.port.done


#: MicroPython 1.9.2 (micro:bit, checked on QEMU): no "MPY: " before "soft reboot".
SOFT_RAW_OLD: Script = [("tx", b"\x04"), ("rx", b"OK\r\nsoft reboot\r\n" + RAW_PROMPT)]
SOFT_FRIENDLY_OLD: Script = [
    ("tx", b"\x04"),
    (
        "rx",
        b"\r\nsoft reboot\r\n"
        b"MicroPython v1.9.2-34-gd64154c73 on 2017-09-01; micro:bit v1.1.1 with nRF51822\r\n"
        b'Type "help()" for more information.\r\n>>> ',
    ),
]


@each_split(SOFT_RAW_OLD)
def test_soft_reset_of_old_firmware_raw_form(cuts: list[int]) -> None:
    repl = repl_for(SOFT_RAW_OLD, cuts)
    assert repl.soft_reset() == b""
    assert repl.mode is Mode.RAW and repl.port.done
    assert "without 'soft reboot'" not in repl.transport.tap.render()


@each_split(SOFT_FRIENDLY_OLD)
def test_soft_reset_of_old_firmware_friendly_form(cuts: list[int]) -> None:
    repl = repl_for(SOFT_FRIENDLY_OLD, cuts, mode=Mode.FRIENDLY)
    assert repl.soft_reset(raw=False) == b""
    assert repl.mode is Mode.FRIENDLY and repl.port.done


# -- deadlines and interrupting ----------------------------------------------------------------

NEVER_ENDS: Script = [
    *PASTE_OK,
    ("tx", b"while True: pass\x04"),
    ("rx", b"\x04"),
    ("tx", b"\x03"),
    (
        "rx",
        b'\x04Traceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n'
        b"KeyboardInterrupt: \r\n\x04>",
    ),
]


def test_program_that_never_ends_times_out_and_interrupt_recovers() -> None:
    repl = repl_for(NEVER_ENDS)
    with pytest.raises(BoardTimeout) as info:
        repl.exec("while True: pass", timeout=0.2)
    assert str(info.value) == (
        "replay: code did not finish within 0.2 s [infrastructure fault]; "
        "the board printed nothing since the code was sent"
    )
    assert info.value.tail == b"\x04"  # raw-paste's end of input: all it sent since
    assert repl.mode is Mode.UNKNOWN
    assert b"KeyboardInterrupt" in repl.interrupt()
    assert repl.mode is Mode.RAW and repl.port.done


# -- eval and value parsing ---------------------------------------------------------------------

EVAL_BYTES: Script = [
    *PASTE_OK,
    ("tx", b"print(repr(bytes(range(3)) + b'\\xff\\r\\n'))\x04"),
    ("rx", b"\x04b'\\x00\\x01\\x02\\xff\\r\\n'\r\n\x04\x04>"),
]


@each_split(EVAL_BYTES)
def test_eval_returns_bytes_exactly(cuts: list[int]) -> None:
    repl = repl_for(EVAL_BYTES, cuts)
    assert repl.eval("bytes(range(3)) + b'\\xff\\r\\n'") == b"\x00\x01\x02\xff\r\n"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("{'a': (1, 2.5, None)}\n", {"a": (1, 2.5, None)}),
        ("[inf, -inf]", [float("inf"), float("-inf")]),
        ("'caf\\xe9'", "café"),
        ("b'\\x00'", b"\x00"),
    ],
)
def test_parse_value(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_parse_value_rejects_non_literals() -> None:
    with pytest.raises(ValueError, match="not a Python literal"):
        parse_value("<function f at 0x3ffe>")
    with pytest.raises(ValueError):
        parse_value("__import__('os')")


def test_uncooker_holds_back_a_split_crlf() -> None:
    cooker = Uncooker()
    assert cooker.feed(b"a\r") + cooker.feed(b"\nb\r") + cooker.flush() == b"a\nb\r"


LAUNCH_RESET: Script = [
    *PASTE_OK,
    ("tx", b"import machine\nmachine.reset()\x04"),
    ("rx", b"\x04"),  # the board acknowledges the end of the code, then resets
    ("rx", b"\x00MicroPython v1.9.2 on 2017-09-01; micro:bit with nRF51822\r\n"),
]


@each_split(LAUNCH_RESET)
def test_launch_waits_for_the_acknowledgement_and_then_for_a_sign_of_the_reset(
    cuts: list[int],
) -> None:
    repl = repl_for(LAUNCH_RESET, cuts)
    repl.launch("import machine\nmachine.reset()")
    assert repl.mode is Mode.UNKNOWN
    assert repl.await_reset(timeout=2.0) is True  # the NUL and banner after the reset


def test_a_silent_reset_is_noted_not_fatal() -> None:
    repl = repl_for([*PASTE_OK, ("tx", b"machine.reset()\x04"), ("rx", b"\x04")])
    repl.launch("machine.reset()")
    assert repl.port.done
    assert repl.await_reset(timeout=0.1) is False
    assert "no sign of the reset" in repl.transport.tap.render()


CHECKED_PLAIN: Script = [
    # a board known to afford checked code (``Board`` says so from its facts): on a plain raw
    # link the user's code travels checked too
    ("tx", b"\x05A\x01"),
    ("rx", b"R\x00>"),
    ("tx", wrap(b"print(1)") + b"\x04"),
    ("rx", b"OK\x061\r\n\x04\x04>"),
]


@each_split(CHECKED_PLAIN)
def test_checked_code_on_a_plain_link(cuts: list[int]) -> None:
    repl = repl_for(CHECKED_PLAIN, cuts)
    repl.check_user_code = True
    assert repl.exec("print(1)") == b"1\n"
    assert repl.raw_paste is False and repl.port.done


@pytest.mark.parametrize("damaged", [r"b'a\.b'", r"'\q'", r"b'\u00e9'", r"[b'ok', b'\z']"])
def test_an_escape_no_repr_writes_is_damage_not_a_warning(damaged: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the parser's own verdict would be a mere warning
        with pytest.raises(ValueError, match="escape"):
            parse_value(damaged)


def test_every_escape_a_repr_writes_parses() -> None:
    value = b"\\'\"\a\b\f\n\r\t\v\x00\x7f\xff"
    assert parse_value(repr(value)) == value
    assert parse_value(repr("é\\\u2028\U0001f600")) == "é\\\u2028\U0001f600"
    assert parse_value(r"b'a\\.b'") == b"a\\.b"  # an escaped backslash, then a dot
