"""The virtual board's card slots on their own: block requests as the board's SDCard driver makes
them, against image files on the host, and a person ejecting and inserting cards."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.sim.card_slot import CardSlots
from hil.sim.firmware import linkcodes as code

BLOCK = code.CARD_BLOCK


@pytest.fixture
def card(tmp_path: Path) -> Path:
    """A 16-block card image (the slots treat it as blocks; no filesystem needed here)."""
    image = tmp_path / "card.img"
    image.write_bytes(bytes(16 * BLOCK))
    return image


@pytest.fixture
def slots(tmp_path: Path) -> Iterator[CardSlots]:
    """A board with one empty slot, 2 (its own card would need the interpreter to format)."""
    slots = CardSlots("vb9", tmp_path, {2: 0}, interpreter=["false"])
    slots.prepare()
    yield slots
    slots.close()


def test_an_empty_slot_fails_like_a_missing_card(slots: CardSlots) -> None:
    with pytest.raises(OSError) as init:
        slots.request(code.CARD_INIT, 2, 0, 0)
    assert init.value.errno == errno.EBUSY
    with pytest.raises(OSError) as read:
        slots.request(code.CARD_READ, 2, 0, 1)
    assert read.value.errno == errno.EIO
    assert slots.status() == {"2": {"present": False, "image": None}}


def test_blocks_written_are_in_the_image(slots: CardSlots, card: Path) -> None:
    assert slots.insert(None, str(card)) == card
    assert slots.request(code.CARD_INIT, 2, 0, 0) == b"16"
    data = bytes(range(256)) * 4  # two blocks
    assert slots.request(code.CARD_WRITE, 2, 3, 2, data) == b""
    assert slots.request(code.CARD_READ, 2, 3, 2) == data
    slots.close()
    assert card.read_bytes()[3 * BLOCK : 5 * BLOCK] == data


def test_blocks_past_the_end_are_an_io_error(slots: CardSlots, card: Path) -> None:
    slots.insert(2, str(card))
    for block, count in ((15, 2), (16, 1), (-1, 1)):
        with pytest.raises(OSError) as e:
            slots.request(code.CARD_READ, 2, block, count)
        assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as bad_op:
        slots.request("Z", 2, 0, 1)
    assert bad_op.value.errno == errno.EINVAL


def test_eject_pulls_the_card_mid_session(slots: CardSlots, card: Path) -> None:
    slots.insert(2, str(card))
    slots.request(code.CARD_READ, 2, 0, 1)
    slots.eject(None)
    with pytest.raises(OSError):
        slots.request(code.CARD_READ, 2, 0, 1)
    assert slots.status()["2"]["present"] is False


def test_slots_the_board_lacks_are_refused_by_name(tmp_path: Path) -> None:
    slots = CardSlots("vb9", tmp_path, {2: 0}, interpreter=["false"])
    with pytest.raises(ValueError, match="board vb9 has no SD slot 1"):
        slots.eject(1)
    none = CardSlots("vb8", tmp_path, {}, interpreter=["false"])
    with pytest.raises(ValueError, match=r"board vb8 has no SD slot$"):
        none.insert(None)
