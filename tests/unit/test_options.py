"""The plugin's options: each bad value is a one-line usage error naming the option."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hil import options
from hil.errors import ConfigError
from hil.rack import SdSlot
from hil.sim import inputs


class Config:
    """What ``options`` reads of a pytest config: ``getoption`` and ``getini``."""

    def __init__(self, given: dict[str, str | None], ini: dict[str, str] | None = None) -> None:
        self.given, self.ini = given, ini or {}
        self.option = SimpleNamespace(numprocesses=None)

    def getoption(self, name: str) -> str | None:
        return self.given.get(name)

    def getini(self, name: str) -> str:
        return self.ini.get(name, "")


@pytest.mark.parametrize("text", ["nan", "inf", "-5", "0", "soon"])
def test_a_lease_timeout_must_be_a_positive_finite_number(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--hil-lease-timeout must be a .*number of seconds"):
        options.settings(Config({"hil_lease_timeout": text}))


def test_settings_come_from_the_command_line_else_the_ini_file() -> None:
    got = options.settings(Config({"hil_reset": "none"}, {"hil_lease_timeout": "7.5"}))
    assert (got.reset, got.lease_timeout) == ("none", 7.5)
    with pytest.raises(ConfigError, match="--hil-reset must be one of soft, hard, none"):
        options.settings(Config({"hil_reset": "warm"}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("none", False),
        ("machine.SDCard", SdSlot(driver="machine.SDCard")),
        ("machine.SDCard:2", SdSlot(driver="machine.SDCard", slot=2)),
        ("pyb.SDCard", SdSlot(driver="pyb.SDCard")),
        ("sdcard-spi:1:5", SdSlot(driver="sdcard-spi", spi=1, pins={"cs": 5})),  # type: ignore[arg-type]
        ("sdcard-spi:0:X5", SdSlot(driver="sdcard-spi", spi=0, pins={"cs": "X5"})),  # type: ignore[arg-type]
    ],
)
def test_hil_sd_states_the_card_the_probe_cannot_find(text: str | None, expected: object) -> None:
    assert options.sd_slot(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sdcard", "--hil-sd 'sdcard': unknown value 'sdcard'"),
        ("pyb.SDCard:1", "pyb.SDCard takes no slot"),
        ("machine.SDCard:1:2", "takes at most a slot"),
        ("sdcard-spi:1", "sdcard-spi needs SPI:CS"),
    ],
)
def test_a_bad_hil_sd_is_one_line_naming_the_option(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=r"^--hil-sd") as info:
        options.sd_slot(text)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_sim_count_defaults_to_one_board_per_worker() -> None:
    config = Config({})
    assert options.sim_count(config) == 1
    config.option.numprocesses = 3
    assert options.sim_count(config) == 3
    assert options.sim_count(Config({"hil_sim": "2"})) == 2
    with pytest.raises(ConfigError, match="--hil-sim must be between 1 and 256, not '0'"):
        options.sim_count(Config({"hil_sim": "0"}))


@pytest.mark.parametrize("text", ["0", "-1", "257", "x", "1.5", "nan", "2 boards"])
def test_hil_sim_refuses_what_hil_sim_n_refuses(text: str) -> None:
    """One check (``hil.sim.inputs.count``) for both: the run's option names itself."""
    with pytest.raises(ConfigError, match=r"^--hil-sim must be .*\[usage fault\]$"):
        options.sim_count(Config({"hil_sim": text}))
    with pytest.raises(ConfigError, match="-n/--count"):
        inputs.count(text)


@pytest.mark.parametrize("text", ["0", "-9600", "x", "9600.5", "1e6", "1000000000", ""])
def test_hil_sim_baud_refuses_what_the_virtual_boards_refuse(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^--hil-sim-baud must be .*\[usage fault\]$"):
        options.sim_baud(Config({"hil_sim_baud": text}))
    with pytest.raises(ConfigError, match="--baud"):
        inputs.baud(text, "--baud")


def test_sim_options_accept_what_the_virtual_boards_accept() -> None:
    assert options.sim_baud(Config({"hil_sim_baud": "115200"})) == inputs.baud("115200") == 115200
    assert options.sim_baud(Config({})) is None
    assert options.sim_count(Config({"hil_sim": "256"})) == inputs.count("256") == 256


@pytest.mark.parametrize("text", ["soon", "nan", "-inf", "0", "-1"])
def test_lease_timeout_refused_in_the_words_of_hil_sim_timeout(text: str) -> None:
    with pytest.raises(ConfigError) as ours:
        options.settings(Config({"hil_lease_timeout": text}))
    with pytest.raises(ConfigError) as sims:
        inputs.seconds(text, "--hil-lease-timeout", zero=False)
    assert str(ours.value) == str(sims.value)


def test_driver_modules_are_a_comma_or_space_separated_list() -> None:
    assert options.driver_modules(Config({}, {"hil_drivers": "lab.power, lab.flash\nlab.x"})) == [
        "lab.power",
        "lab.flash",
        "lab.x",
    ]
