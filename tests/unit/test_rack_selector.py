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
        # before a board is probed, only what it declares can rule it out; sd may be probed
        (Selector(capabilities=["sd"]), ["esp32-a", "esp32-sd", "pico"]),  # type: ignore[arg-type]
        (Selector(platform="rp2", capabilities=["sd"]), ["pico"]),  # type: ignore[arg-type]
        (Selector(platform="pyboard"), []),  # pyboard is stm32 by its port name
        (Selector(id="pico"), ["pico"]),
        (Selector(platform="stm32"), []),
    ],
)
def test_selection(selector: Selector, expected: list[str]) -> None:
    assert ids(selector.select(BOARDS)) == expected


def test_explain_says_why_each_board_does_not_match() -> None:
    selector = Selector(platform="esp32", tags=["lab-2"], capabilities=["sd"])  # type: ignore[arg-type]
    assert selector.explain(BOARDS) == ""

    text = Selector(platform="stm32", tags=["wifi"]).explain(BOARDS)  # type: ignore[arg-type]

    assert text == (
        "no board matches (platform='stm32', tags=['wifi']): "
        "esp32-a: platform esp32; esp32-sd: platform esp32; pico: platform rp2"
    )


def test_a_capability_matches_what_the_rack_declares_or_the_probe_found() -> None:
    pico, esp32_sd = BOARDS[2], BOARDS[1]
    wants = Selector(capabilities=["sd", "sys.modules"])  # type: ignore[arg-type]

    assert wants.matches(pico)  # not asked yet: cannot be ruled out
    assert wants.mismatch(pico, frozenset({"sys.modules"})) == "lacks capability sd"
    assert wants.mismatch(pico, frozenset()) == "lacks capabilities sd, sys.modules"
    assert wants.matches(pico, frozenset({"sd", "sys.modules", "hashlib"}))
    assert wants.matches(esp32_sd, frozenset({"sys.modules"}))  # sd declared, not probed


def test_platforms_are_an_open_list_with_port_names_for_aliases() -> None:
    microbit = Board(id="mb", port="/dev/ttyACM1", platform="microbit")
    pyboard = Board(id="pyb", port="/dev/ttyACM2", platform="pyboard")

    assert Selector(platform="microbit").matches(microbit)
    assert pyboard.platform == "stm32" and Selector(platform="pyboard").matches(pyboard)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"platform": "esp 32"}, "field 'platform': 'esp 32' is not a platform name"),
        ({"tags": "wifi"}, "field 'tags': expected an array of strings, got 'wifi'"),
        ({"capabilities": ["sd card"]}, "field 'capabilities[0]': 'sd card' is not a capability"),
    ],
)
def test_a_mistyped_selector_is_an_error_not_an_empty_match(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidField, match=re.escape(message)):
        Selector(**kwargs)
