"""The rack file: what loads, and the one-line error for each way it can be wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hil import drivers
from hil.errors import ConfigError
from hil.rack import (
    Board,
    Capabilities,
    DriverRef,
    Flasher,
    Rack,
    SdSlot,
    load_rack,
)
from hil.rack._validate import InvalidField

EXAMPLE = Path(__file__).resolve().parents[2] / "ci" / "rack.example.toml"

MINIMAL = """
[[boards]]
id = "esp32-a"
port = "/dev/ttyUSB0"
platform = "esp32"
"""


def write_rack(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rack.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write_rack(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_rack(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


def test_example_rack_loads_with_every_kind_of_entry() -> None:
    rack = load_rack(EXAMPLE)

    assert rack.ids == ("esp32-a", "pico-a", "pyboard-a", "esp32-remote", "sim-0")
    esp = rack.board("esp32-a")
    assert esp.port_spec.kind == "usb-serial"
    assert esp.reset == DriverRef("dtr-rts")
    argv = ("uhubctl", "--action", "cycle", "--location", "1-1", "--ports", "2")
    assert esp.power == DriverRef("command", {"argv": argv})
    assert esp.capabilities.sd == SdSlot(
        driver="machine.SDCard", slot=2, pins={"sck": 18, "mosi": 23, "miso": 19, "cs": 5}
    )
    assert esp.flasher is not None and dict(esp.flasher.options) == {
        "chip": "esp32",
        "baud": 460800,
    }
    pico = rack.board("pico-a")
    assert pico.capabilities.sd is not None and pico.capabilities.sd.spi == 1
    assert rack.board("pyboard-a").capabilities.names == {"sd"}
    assert rack.board("esp32-remote").port_spec.kind == "url"
    assert rack.board("esp32-remote").capabilities.names == frozenset()


def test_defaults_of_a_minimal_board(tmp_path: Path) -> None:
    board = load_rack(write_rack(tmp_path, MINIMAL)).board("esp32-a")

    assert board.tags == ()
    assert board.reset == DriverRef("machine.reset")
    assert board.power is None and board.flasher is None and board.firmware is None
    assert board.capabilities == Capabilities()
    assert board.baudrate == 115200


def test_relative_paths_are_relative_to_the_rack_file(tmp_path: Path) -> None:
    text = 'lock_dir = "locks"\n' + MINIMAL.replace('"/dev/ttyUSB0"', '"sim:state/b0"')

    rack = load_rack(write_rack(tmp_path, text))

    assert rack.lock_dir == str(tmp_path.resolve() / "locks")
    assert rack.board("esp32-a").port == f"sim:{tmp_path.resolve() / 'state' / 'b0'}"
    assert rack.board("esp32-a").port_spec.kind == "sim"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL.replace('"/dev/ttyUSB0"', "3"),
            "board 'esp32-a': field 'port': expected a string, got 3",
        ),
        (
            MINIMAL.replace('"/dev/ttyUSB0"', '"ttyUSB0"'),
            "board 'esp32-a': field 'port': expected a device path",
        ),
        (
            MINIMAL.replace('"/dev/ttyUSB0"', '"http://host:80"'),
            "board 'esp32-a': field 'port': unsupported URL scheme 'http'",
        ),
        (
            MINIMAL.replace('"/dev/ttyUSB0"', '"rfc2217://host"'),
            "board 'esp32-a': field 'port': expected rfc2217://host:port",
        ),
        (
            MINIMAL.replace('"/dev/ttyUSB0"', '"usb-serial:"'),
            "board 'esp32-a': field 'port': usb-serial: needs a value",
        ),
        (
            MINIMAL.replace('"esp32"', '"esp 32"'),
            "board 'esp32-a': field 'platform': 'esp 32' is not a platform name",
        ),
        (
            MINIMAL.replace('"/dev/ttyUSB0"', '"labgrd:place"'),
            "board 'esp32-a': field 'port': unknown port scheme 'labgrd' (known: ",
        ),
        (
            MINIMAL + 'prot = "/dev/ttyUSB1"\n',
            "board 'esp32-a': field 'prot': unknown key (expected one of: ",
        ),
        (MINIMAL + 'resett = "soft"\n', "did you mean 'reset'?"),
        (
            MINIMAL.replace('id = "esp32-a"\n', ""),
            "board #1: field 'id': missing (this key is required)",
        ),
        (
            MINIMAL.replace('"esp32-a"', '"esp32 a"'),
            "board #1: field 'id': 'esp32 a' is not a board id",
        ),
        (MINIMAL + 'tags = "sd"\n', "board 'esp32-a': field 'tags': expected an array of strings"),
        (
            MINIMAL + 'tags = ["a", 1]\n',
            "board 'esp32-a': field 'tags[1]': expected a string, got 1",
        ),
        (MINIMAL + 'tags = ["a", "a"]\n', "board 'esp32-a': field 'tags[1]': duplicate value 'a'"),
        (
            MINIMAL + 'reset = "hard"\n',
            "board 'esp32-a': field 'reset': unknown reset driver 'hard' (known: command, dtr-rts",
        ),
        (MINIMAL + "reset = []\n", "board 'esp32-a': field 'reset': a command needs at least"),
        (
            MINIMAL + 'power = "uhubctl -a cycle"\n',
            "board 'esp32-a': field 'power': unknown power driver 'uhubctl -a cycle'",
        ),
        (MINIMAL + 'power = ["uhubctl", 2]\n', "field 'power[1]': expected a string, got 2"),
        (MINIMAL + "baudrate = true\n", "field 'baudrate': expected an integer, got true"),
        (MINIMAL + 'firmware = "a b"\n', "field 'firmware': 'a b' is not a firmware id"),
        (
            MINIMAL + 'flasher = { name = "esptol" }\n',
            "field 'flasher': unknown flasher 'esptol' (known: dfu-util, esptool, ",
        ),
        (
            MINIMAL + 'flasher = { name = "esptool", chip = "esp32" }\n',
            "field 'flasher.chip': unknown key",
        ),
        (
            MINIMAL + 'flasher = { name = "esptool", options = { chip = {} } }\n',
            "field 'flasher.options.chip': expected a string, number, boolean or array",
        ),
        (
            MINIMAL + '[boards.capabilities.sd]\ndriver = "sdcard"\n',
            "field 'capabilities.sd.driver': unknown value 'sdcard'",
        ),
        (
            MINIMAL + "[boards.capabilities.sd]\nslot = 2\n",
            "field 'capabilities.sd.driver': missing",
        ),
        (
            MINIMAL + '[boards.capabilities.sd]\ndriver = "machine.SDCard"\nslot = "2"\n',
            "field 'capabilities.sd.slot': expected an integer, got '2'",
        ),
        (
            MINIMAL + '[boards.capabilities.sd]\ndriver = "pyb.SDCard"\nslot = 1\n',
            "field 'capabilities.sd.slot': pyb.SDCard takes no slot",
        ),
        (
            MINIMAL + '[boards.capabilities.sd]\ndriver = "sdcard-spi"\npins = { cs = 5 }\n',
            "field 'capabilities.sd.spi': missing: driver 'sdcard-spi' needs the SPI bus id",
        ),
        (
            MINIMAL + '[boards.capabilities.sd]\ndriver = "sdcard-spi"\nspi = 1\n',
            "field 'capabilities.sd.pins.cs': missing",
        ),
        (
            MINIMAL + '[boards.capabilities.sd]\ndriver = "sdcard-spi"\nspi = 1\n'
            "pins = { cs = 5, sclk = 4 }\n",
            "field 'capabilities.sd.pins.sclk': unknown key",
        ),
        (
            MINIMAL + '[boards.capabilities.sd]\ndriver = "machine.SDCard"\nmount = "sd"\n',
            "field 'capabilities.sd.mount': expected an absolute path",
        ),
        (
            MINIMAL + "[boards.capabilities.ethernet]\n",
            "field 'capabilities.ethernet': unknown key",
        ),
        (
            MINIMAL + '[boards.capabilities]\nfeatures = ["wifi", "wifi"]\n',
            "field 'capabilities.features[1]': duplicate value 'wifi'",
        ),
        (MINIMAL + MINIMAL, "board 'esp32-a': field 'id': duplicate board id (also board #1)"),
        ("", "field 'boards': missing (this key is required)"),
        ("boards = []\n", "field 'boards': a rack needs at least one board"),
        (MINIMAL.replace("[[boards]]", "[boards]"), "field 'boards': expected an array of tables"),
        (MINIMAL.replace("[[boards]]", "[[board]]"), "field 'board': unknown key"),
        ("lock_dir = 1\n" + MINIMAL, "field 'lock_dir': expected a string, got 1"),
        (MINIMAL + "id = 'again'\n", "invalid TOML: "),
    ],
)
def test_each_mistake_is_one_line_naming_file_board_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = load_error(tmp_path, text)

    assert expected in message


def test_the_second_board_is_named_by_its_id(tmp_path: Path) -> None:
    text = MINIMAL + MINIMAL.replace("esp32-a", "esp32-b").replace(
        '"esp32"\n', '"esp32"\ntags = 1\n'
    )

    message = load_error(tmp_path, text)

    assert f"{tmp_path / 'rack.toml'}: board 'esp32-b': field 'tags'" in message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"

    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read the rack file: No such file"):
        load_rack(path)


def test_python_construction_validates_the_same_way() -> None:
    with pytest.raises(InvalidField, match=r"field 'capabilities\.sd\.driver': unknown value"):
        Board(id="b", port="/dev/null", platform="unix", capabilities={"sd": {"driver": "x"}})  # type: ignore[arg-type]
    with pytest.raises(InvalidField, match=r"field 'boards\[1\]\.port'"):
        Rack(boards=({"id": "a", "port": "/dev/null", "platform": "unix"}, {"id": "b"}))  # type: ignore[arg-type]


def test_config_is_frozen_and_hashable() -> None:
    board = Board(
        id="b",
        port="/dev/null",
        platform="unix",
        tags=["x"],  # type: ignore[arg-type]
        power=["uhubctl", "-a", "cycle"],  # type: ignore[arg-type]
        flasher=Flasher(name="esptool", options={"chip": "esp32", "baud": 460800}),
    )

    assert board.tags == ("x",)
    assert board.power is not None and board.power.options["argv"] == ("uhubctl", "-a", "cycle")
    assert board in {board}
    with pytest.raises(AttributeError):
        board.id = "c"  # type: ignore[misc]
    with pytest.raises(TypeError):
        board.flasher.options["baud"] = 1  # type: ignore[index]


def test_every_flasher_of_hil_flash_can_be_named_in_a_rack() -> None:
    flash = pytest.importorskip("hil.flash")

    assert set(flash.flasher_names()) == set(drivers.names("flasher"))


def test_the_example_racks_firmware_pins_are_the_manifests_examples() -> None:
    """The example's comment says: uncomment the manifest's examples and its pins resolve."""
    manifest = (EXAMPLE.parents[1] / "firmware" / "manifest.toml").read_text()
    pins = {board.firmware for board in load_rack(EXAMPLE).boards if board.firmware}
    assert pins
    for pin in pins:
        assert f'# [firmware."{pin}"]' in manifest, pin
