"""The checks of what users give the virtual boards: each bad value a one-line usage error."""

from __future__ import annotations

import pytest

from hil.errors import ConfigError
from hil.sim import inputs


@pytest.mark.parametrize("text", ["0", "-1", "257", "x", "1.5", "", "nan"])
def test_board_count_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"-n/--count.*\[usage fault\]"):
        inputs.count(text)


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("256", 256), (8, 8)])
def test_board_count_accepted(text: object, value: int) -> None:
    assert inputs.count(text) == value


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "-0.5", "abc"])
def test_seconds_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--seconds"):
        inputs.seconds(text, "--seconds")


def test_seconds_zero_only_where_allowed() -> None:
    assert inputs.seconds("0", "--seconds") == 0.0
    with pytest.raises(ConfigError, match="positive"):
        inputs.seconds("0", "--timeout", zero=False)


@pytest.mark.parametrize("text", ["12Q", "-5M", "M", "1.5G"])
def test_size_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--sd: not a size"):
        inputs.size(text, "--sd")


def test_size_accepted() -> None:
    assert inputs.size("64M", "--sd") == 64 << 20 and inputs.size(512, "--sd") == 512


@pytest.mark.parametrize("rate", [-5, 0, "x", 10**9, True, 9600.5])
def test_baud_refused(rate: object) -> None:
    with pytest.raises(ConfigError, match="baud"):
        inputs.baud(rate)


def test_fault_params_checked_and_others_passed_through() -> None:
    assert inputs.fault_params({"count": "3", "seconds": 1, "style": "old"}) == {
        "count": 3,
        "seconds": 1.0,
        "style": "old",
    }
    for bad in ({"count": -1}, {"seconds": float("nan")}, {"after": 2.5}):
        with pytest.raises(ConfigError, match="the fault's"):
            inputs.fault_params(bad)


def test_argparse_type_names_the_option() -> None:
    convert = inputs.arg(inputs.integer, "--slot")
    assert convert("2") == 2
    with pytest.raises(ConfigError, match="--slot must be at least 0"):
        convert("-2")


def test_words_of_a_refusal_say_what_was_wanted() -> None:
    with pytest.raises(ConfigError, match=r"^--timeout must be a number of seconds, not 'soon'"):
        inputs.seconds("soon", "--timeout")
    with pytest.raises(ConfigError, match=r"^--hil-sim must be between 1 and 256, not '0'"):
        inputs.count("0", "--hil-sim")
    with pytest.raises(ConfigError, match=r"^--slot must be a whole number, not True"):
        inputs.integer(True, "--slot")
