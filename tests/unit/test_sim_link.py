"""The link between a virtual board's host and its firmware: framing, answers, and that both
sides take their message codes from the one module they share."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from hil.sim import images
from hil.sim.firmware import linkcodes as code
from hil.sim.link import BadLinkMessage, FirmwareLink, Message, encode_error, encode_ok
from hil.sim.link import parse_message as parse
from hil.sim.server import default_interpreter


def test_an_event_is_one_line() -> None:
    buffer = bytearray(b"E\nI\n")
    assert parse(buffer) == Message(code.EXECUTING)
    assert parse(buffer) == Message(code.IDLE)
    assert parse(buffer) is None and buffer == b""


def test_a_partial_line_waits_for_the_rest() -> None:
    buffer = bytearray(b"S ra")
    assert parse(buffer) is None
    buffer += b"w\n"
    assert parse(buffer) == Message(code.SOFT_RESET, ("raw",))


def test_a_card_write_waits_for_all_its_blocks() -> None:
    block = bytes(range(256)) * 2
    buffer = bytearray(b"C W 2 7 2\n" + block)
    assert parse(buffer) is None  # one of two blocks so far
    buffer += block + b"B\n"
    message = parse(buffer)
    assert message == Message(code.CARD, (code.CARD_WRITE, "2", "7", "2"), block * 2)
    assert message is not None and message.int_arg(2) == 7
    assert parse(buffer) == Message(code.BOOTED)


def test_a_card_read_carries_no_payload() -> None:
    buffer = bytearray(b"C R 2 0 8\nE\n")
    assert parse(buffer) == Message(code.CARD, (code.CARD_READ, "2", "0", "8"))
    assert parse(buffer) == Message(code.EXECUTING)


def test_an_empty_line_is_an_empty_message() -> None:
    assert parse(bytearray(b"\n")) == Message("")


def test_malformed_messages_are_errors_not_guesses() -> None:
    with pytest.raises(BadLinkMessage, match="without a block count"):
        parse(bytearray(b"C W 2 7\n"))
    with pytest.raises(BadLinkMessage, match="not a number"):
        Message(code.CARD, (code.CARD_READ, "x")).int_arg(1)
    with pytest.raises(BadLinkMessage, match="longer than"):
        parse(bytearray(b"E" * 5000))


def test_answers_as_the_firmware_reads_them() -> None:
    assert encode_ok(b"12") == b"OK 2\n12"
    assert encode_ok() == b"OK 0\n"
    assert encode_error(16) == b"ERR 16 \n"
    assert encode_error(5, "card gone") == b"ERR 5 card gone\n"


@pytest.fixture
def link() -> Iterator[tuple[FirmwareLink, int, int]]:
    """A host link over real pipes, and the firmware's ends (write events, read answers)."""
    to_host_r, to_host_w = os.pipe()
    to_fw_r, to_fw_w = os.pipe()
    os.set_blocking(to_host_r, False)
    os.set_blocking(to_fw_w, False)
    host = FirmwareLink(to_host_r, to_fw_w)
    yield host, to_host_w, to_fw_r
    host.close()
    for fd in (to_host_w, to_fw_r):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_link_over_pipes(link: tuple[FirmwareLink, int, int]) -> None:
    host, fw_w, fw_r = link
    assert host.read() and host.next_message() is None  # nothing yet: not an end
    os.write(fw_w, b"Q paste\n")
    assert host.read()
    assert host.next_message() == Message(code.QUERY, (code.QUERY_PASTE,))
    host.reply(b"refuse")
    host.reply_error(5)
    assert os.read(fw_r, 100) == b"OK 6\nrefuse" + b"ERR 5 \n"
    os.close(fw_w)
    assert host.read() is False  # the firmware closed its end: the board is gone


def test_codes_are_distinct_single_letters() -> None:
    events = [code.EXECUTING, code.IDLE, code.BOOTED, code.SOFT_RESET, code.HARD_RESET]
    requests = [code.BOOTLOADER, code.QUERY, code.CARD]
    assert len(set(events + requests)) == len(events + requests)
    assert all(len(c) == 1 and c.isupper() for c in events + requests)
    assert len({code.CARD_INIT, code.CARD_READ, code.CARD_WRITE}) == 3


def test_the_firmware_spells_no_code_of_its_own() -> None:
    """hilfw.py sends only linkcodes names; rom/machine.py (frozen into committed images)
    passes card operations that linkcodes knows."""
    firmware = (images.FIRMWARE_DIR / "hilfw.py").read_text()
    assert "import linkcodes" in firmware
    assert not re.search(r"\.(event|request)\(\s*[\"'][^%]", firmware)  # "%s" formats codes
    machine = (images.ROM_DIR / "machine.py").read_text()
    ops = set(re.findall(r"_board\.card\(\"(\w)\"", machine))
    assert ops == {code.CARD_INIT, code.CARD_READ, code.CARD_WRITE}


def test_linkcodes_runs_on_the_board() -> None:
    """The shared module is plain enough for the unix port (the board imports it)."""
    probe = "import linkcodes as c; print(c.CARD + c.CARD_WRITE + str(c.CARD_BLOCK))"
    result = subprocess.run(
        [*default_interpreter(), "-c", probe],
        cwd=images.FIRMWARE_DIR,
        capture_output=True,
        timeout=30,
        check=False,
        env={"MICROPYPATH": str(images.FIRMWARE_DIR), "PATH": os.environ.get("PATH", "")},
    )
    assert result.stdout.strip() == f"{code.CARD}{code.CARD_WRITE}{code.CARD_BLOCK}".encode(), (
        result.stderr
    )
