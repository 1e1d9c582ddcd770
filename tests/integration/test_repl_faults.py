"""The REPL driver against a virtual board that misbehaves: every failure path ends in a typed
error within its deadline, and what can be recovered is recovered."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from hil.errors import BoardTimeout, LinkError, RawReplError, RemoteError
from hil.repl import Mode, Repl
from hil.sim import SimBoard
from hil.transport import Transport


@pytest.fixture
def repl(virtual_board: SimBoard) -> Iterator[Repl]:
    transport = Transport.open(virtual_board.port)
    yield Repl(transport)
    transport.close()


def test_program_that_never_ends_times_out_and_interrupt_recovers(
    repl: Repl, virtual_board: SimBoard
) -> None:
    repl.exec("counter = 41")
    with pytest.raises(BoardTimeout) as info:
        repl.exec("while True:\n    counter += 0", timeout=1.0)
    assert "did not finish within 1 s" in str(info.value)
    assert info.value.fault == "infrastructure"
    assert virtual_board.control.status()["executing"]  # still running: nothing was lost
    assert b"KeyboardInterrupt" in repl.interrupt()
    assert repl.mode is Mode.RAW
    assert repl.eval("counter + 1") == 42  # same session, state intact


def test_interrupt_from_the_output_stream(repl: Repl) -> None:
    seen = bytearray()

    def on_output(chunk: bytes) -> None:
        seen.extend(chunk)
        if b"\n3\n" in seen and not seen.endswith(b"#"):
            seen.extend(b"#")  # interrupt once
            repl.send_interrupt()

    code = "import time\nn = 0\nwhile True:\n    print(n)\n    n += 1\n    time.sleep_ms(5)"
    with pytest.raises(RemoteError) as info:
        repl.exec(code, timeout=10, on_output=on_output)
    assert info.value.type_name == "KeyboardInterrupt"
    assert repl.eval("n") >= 3


def test_unplugged_mid_exec_is_a_link_error_not_a_hang(repl: Repl, virtual_board: SimBoard) -> None:
    seen = bytearray()

    def on_output(chunk: bytes) -> None:
        seen.extend(chunk)
        if seen == b"running\n":  # exactly once, as soon as the program runs
            virtual_board.control.unplug()

    with pytest.raises(LinkError) as info:
        repl.exec(
            "import time\nprint('running')\nwhile True:\n    time.sleep_ms(10)",
            timeout=30,
            on_output=on_output,
        )
    assert info.value.fault == "infrastructure"
    with pytest.raises(LinkError):  # and it stays an error, fast, until reconnected
        repl.exec("print(1)")
    virtual_board.control.replug()
    repl.reconnect(timeout=20)
    assert repl.eval("6 * 7") == 42


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_noise_before_the_prompt(virtual_board: SimBoard, seed: int) -> None:
    transport = Transport.open(virtual_board.port)
    try:
        virtual_board.control.fault("noise", count=300, seed=seed)
        repl = Repl(transport)
        repl.enter_raw()
        assert repl.exec("print('clean')") == b"clean\n"
    finally:
        transport.close()


def test_dropped_bytes_during_raw_entry_are_retried(repl: Repl, virtual_board: SimBoard) -> None:
    virtual_board.control.fault("drop", count=20)
    repl.enter_raw(timeout=15)
    assert repl.eval("1 + 1") == 2


@pytest.mark.parametrize("style", ["refuse", "old"])
def test_raw_paste_refused_falls_back_to_plain_raw(
    repl: Repl, virtual_board: SimBoard, style: str
) -> None:
    virtual_board.control.fault("no_raw_paste", style=style)
    code = "x = " + repr("z" * 2000) + "\nprint(len(x))"
    assert repl.exec(code) == b"2000\n"
    assert repl.raw_paste is False
    assert repl.exec("print(x[:3])") == b"zzz\n"  # the connection stays on plain raw


def test_raw_paste_aborted_by_the_board_is_resent_plainly(
    repl: Repl, virtual_board: SimBoard
) -> None:
    virtual_board.control.fault("raw_paste_abort", after=64)
    code = "y = " + repr(list(range(200))) + "\nprint(sum(y))"
    assert repl.exec(code) == b"19900\n"
    assert repl.raw_paste is False


def test_syntax_error_in_the_sent_code(repl: Repl) -> None:
    with pytest.raises(RemoteError) as info:
        repl.exec("def broken(:\n    pass")
    assert info.value.type_name == "SyntaxError"
    assert info.value.fault == "product"
    assert repl.exec("print('still fine')") == b"still fine\n"


def test_hung_board_times_out_then_recovers_after_reset(start_virtual_boards) -> None:
    (board,) = start_virtual_boards(1, usb="uart")
    transport = Transport.open(board.port)
    try:
        repl = Repl(transport, enter_timeout=1.5)
        repl.enter_raw()
        board.control.fault("hang")
        with pytest.raises(BoardTimeout):
            repl.exec("print(1)", timeout=1.0)
        with pytest.raises(RawReplError) as info:
            repl.enter_raw()
        assert "could not enter the raw REPL" in str(info.value)
        board.control.reset()
        repl.enter_raw(timeout=15)
        assert repl.exec("print('back')") == b"back\n"
    finally:
        transport.close()


def test_slow_boot_does_not_defeat_raw_entry(start_virtual_boards) -> None:
    (board,) = start_virtual_boards(1, usb="uart")
    transport = Transport.open(board.port)
    try:
        board.control.fault("slow_boot", seconds=1.5)
        board.control.reset()
        repl = Repl(transport)
        repl.enter_raw(timeout=20)
        assert repl.eval("'booted'") == "booted"
    finally:
        transport.close()


def test_several_megabytes_streamed(repl: Repl) -> None:
    lines = 60_000  # 60 000 numbered lines of 64 bytes: 3.8 MB
    code = f"row = 'x' * 52\nfor i in range({lines}):\n    print('%010d' % i, row)\nprint('end')"
    digest = hashlib.sha256()
    received = 0

    def on_output(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)
        digest.update(chunk)

    repl.exec(code, timeout=120, on_output=on_output)
    expected = b"".join(b"%010d %s\n" % (i, b"x" * 52) for i in range(lines)) + b"end\n"
    assert received == len(expected) > 3_000_000
    assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()
