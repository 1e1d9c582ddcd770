"""Which boards a selector picks, and what it says when none fits."""

from __future__ import annotations

import re

import pytest

from hil.rack import Board, Selector
from hil.rack._validate import InvalidField

BOARDS = (
    Board(id="esp32-a", port="/dev/ttyUSB0", platform="esp32", tags=("wifi",)),
    Board(
        id="esp32-sd",
        port="/dev/ttyUSB1",
        platform="esp32",
        tags=("wifi", "lab-2"),
        capabilities={"sd": {"driver": "machine.SDCard", "slot": 2}},  # type: ignore[arg-type]
    ),
    Board(id="pico", port="/dev/ttyACM0", platform="rp2"),
)


def ids(boards: tuple[Board, ...]) -> list[str]:
    return [board.id for board in boards]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (Selector(), ["esp32-a", "esp32-sd", "pico"]),
        (Selector(platform="esp32"), ["esp32-a", "esp32-sd"]),
        (Selector(platform="rp2"), ["pico"]),
        (Selector(tags=["wifi"]), ["esp32-a", "esp32-sd"]),  # type: ignore[arg-type]
        (Selector(tags={"wifi", "lab-2"}), ["esp32-sd"]),  # type: ignore[arg-type]
        (Selector(capabilities=["sd"]), ["esp32-sd"]),  # type: ignore[arg-type]
        (Selector(platform="rp2", capabilities=["sd"]), []),  # type: ignore[arg-type]
        (Selector(id="pico"), ["pico"]),
        (Selector(platform="stm32"), []),
    ],
)
def test_selection(selector: Selector, expected: list[str]) -> None:
    assert ids(selector.select(BOARDS)) == expected


def test_explain_says_why_each_board_does_not_match() -> None:
    selector = Selector(platform="esp32", tags=["lab-2"], capabilities=["sd"])  # type: ignore[arg-type]
    assert selector.explain(BOARDS) == ""

    text = Selector(platform="rp2", capabilities=["sd"]).explain(BOARDS)  # type: ignore[arg-type]

    assert text == (
        "no board matches (platform='rp2', capabilities=['sd']): "
        "esp32-a: platform esp32; esp32-sd: platform esp32; pico: lacks capability sd"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"platform": "esp-32"}, "field 'platform': unknown value 'esp-32'"),
        ({"tags": "wifi"}, "field 'tags': expected an array of strings, got 'wifi'"),
        ({"capabilities": ["sdcard"]}, "field 'capabilities[0]': unknown value 'sdcard'"),
    ],
)
def test_a_mistyped_selector_is_an_error_not_an_empty_match(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidField, match=re.escape(message)):
        Selector(**kwargs)
