"""The parts of the labgrid lab that need no coordinator: a rack entry as place tags and back, a
selector as a reservation filter, holder names, the power server of virtual boards (a real HTTP
server driving a real virtual board's power switch, through labgrid's own ``rest`` backend)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from hil.errors import ConfigError
from hil.labgrid.holder import holder_name, parse_holder, pid_space
from hil.labgrid.places import remote_entry
from hil.labgrid.tags import board_of, place_tags, reservation_filter
from hil.rack import Selector, rack_from_data

RACK = {
    "boards": [
        {
            "id": "esp32-a",
            "port": "/dev/ttyUSB0",
            "platform": "esp32",
            "tags": ["Wi-Fi", "lab 2"],
            "reset": "dtr-rts",
            "power": ["uhubctl", "-a", "cycle", "-p", "2"],
            "baudrate": 460800,
            "capabilities": {
                "features": ["wifi"],
                "sd": {"driver": "sdcard-spi", "spi": 1, "pins": {"cs": 5, "sck": "X5"}},
            },
        },
        {"id": "vb0", "port": "sim:/tmp/nowhere/vb0", "platform": "unix", "reset": "sim"},
    ]
}


def test_a_rack_entry_survives_the_trip_through_place_tags() -> None:
    entry = rack_from_data(RACK).boards[0]
    tags = place_tags(entry)
    assert tags["platform"] == "esp32" and tags["board"] == "esp32-a"
    assert tags["tag_wi_fi"] == "1" and tags["tag_lab_2"] == "1"
    assert tags["cap_wifi"] == "1" and tags["cap_sd"] == "1"
    assert tags["reset"] == "dtr-rts" and tags["power"] == "command"
    back = board_of("esp32-a", tags, "labgrid:127.0.0.1:20408/esp32-a")
    assert back.port == "labgrid:127.0.0.1:20408/esp32-a"
    for field in ("platform", "tags", "capabilities", "reset", "power", "baudrate", "firmware"):
        assert getattr(back, field) == getattr(entry, field), field


def test_a_place_offers_only_drivers_that_work_from_another_host() -> None:
    usb, virtual = rack_from_data(RACK).boards
    entry, left_out = remote_entry(virtual)
    assert entry.reset.name == "machine.reset"
    assert entry.power is not None and entry.power.name == "labgrid"
    assert entry.flasher is None
    assert left_out == ["reset sim"]
    entry, left_out = remote_entry(usb)
    assert entry.reset.name == "dtr-rts"  # DTR/RTS travel through RFC 2217
    assert entry.power is None  # a command would run on the client's host
    assert left_out == ["power command"]


def test_a_place_that_is_not_ours_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="place has no hil_entry tag"):
        board_of("x", {"platform": "esp32"}, "labgrid:127.0.0.1:1/x")
    with pytest.raises(ConfigError, match="bad hil_entry tag"):
        board_of("x", {"hil_entry": "{not json"}, "labgrid:127.0.0.1:1/x")


def test_a_selector_becomes_a_reservation_filter() -> None:
    wanted = reservation_filter(Selector(platform="esp32", tags=frozenset({"Wi-Fi"}), id="a"))
    assert wanted == {"hil": "ready", "platform": "esp32", "tag_wi_fi": "1", "name": "a"}
    # capabilities may come from the probe: never a filter
    assert reservation_filter(Selector(capabilities=frozenset({"sd"}))) == {"hil": "ready"}


def test_holder_names_say_host_and_pid_and_whether_the_holder_is_gone() -> None:
    name = holder_name(run="8f2a-01", worker="gw3")
    assert str(name) == f"{socket.gethostname()}/hil-{os.getpid()}-{pid_space()}-8f2a01-gw3"
    parsed = parse_holder(str(name))
    assert parsed == name and parsed.is_alive() is True
    gone = parse_holder(f"{socket.gethostname()}/hil-999999999-{pid_space()}-x-main")
    assert gone is not None and gone.is_alive() is False
    elsewhere = parse_holder(f"other-host/hil-1-{pid_space()}-x-main")
    assert elsewhere is not None and elsewhere.is_alive() is None  # cannot tell: never a guess
    other = "0" * 6 if pid_space() != "0" * 6 else "1" * 6
    container = parse_holder(f"{socket.gethostname()}/hil-999999999-{other}-x-main")
    assert container is not None and container.is_alive() is None  # same name, other pid space
    assert parse_holder("ci-3/jenkins") is None  # a person's labgrid-client: not ours


def test_power_server_switches_a_virtual_board_through_labgrids_rest_backend(
    tmp_path: Path,
) -> None:
    rest = pytest.importorskip("labgrid.driver.power.rest", reason="labgrid is not installed")
    import hil.sim
    from hil.labgrid.power_server import PowerServer
    from hil.sim.drivers import SimPowerSwitch

    run = hil.sim.start(tmp_path / "sim", 1, usb="uart")
    server = PowerServer([SimPowerSwitch(run.boards[0].control)]).start()
    try:
        assert rest.power_get(server.url, None, 0) is True
        rest.power_set(server.url, None, 0, False)
        assert rest.power_get(server.url, None, 0) is False
        assert run.boards[0].control.status()["powered"] is False
        rest.power_set(server.url, None, 0, True)
        assert rest.power_get(server.url, None, 0) is True
        with pytest.raises(Exception, match="404"):
            rest.power_set(server.url, None, 5, True)
    finally:
        server.stop()
        run.stop()


def test_exporter_config_of_usb_boards_and_virtual_ones(tmp_path: Path) -> None:
    """A device path becomes a RawSerialPort, a USB serial number a USBSerialPort matched by
    udev; a virtual board (a real one, started here) its pty plus a rest NetworkPowerPort."""
    import hil.sim
    from hil.labgrid.exporter import exporter_config, power_switches
    from hil.rack import Board

    run = hil.sim.start(tmp_path / "sim", 1, usb="uart")
    try:
        boards = (
            Board(id="pico-1", port="/dev/ttyACM0", platform="rp2", baudrate=115200),
            Board(id="esp-2", port="usb-serial:0001A2B3", platform="esp32", baudrate=460800),
            Board(id="vb", port=f"sim:{run.boards[0].directory}", platform="unix"),
        )
        switched = tuple(power_switches(boards))
        assert switched == ("vb",)  # only the virtual board's port comes with a switch
        config = exporter_config(boards, "http://10.1.0.2:8080/power/{index}/value", switched)
    finally:
        run.stop()
    assert config["pico-1"] == {"RawSerialPort": {"port": "/dev/ttyACM0", "speed": 115200}}
    assert config["esp-2"] == {
        "USBSerialPort": {"match": {"ID_SERIAL_SHORT": "0001A2B3"}, "speed": 460800}
    }
    assert config["vb"]["RawSerialPort"]["port"].startswith("/dev/pts/")
    assert config["vb"]["NetworkPowerPort"] == {
        "model": "rest",
        "host": "http://10.1.0.2:8080/power/{index}/value",
        "index": 0,
    }


def test_a_projects_own_port_scheme_is_exported_as_the_device_it_resolves_to(
    tmp_path: Path,
) -> None:
    """No closed list of schemes: a port driver that resolves to a device (here a symlink to
    one) is exported as that device; one that knows better overrides ``labgrid_resource``."""
    from hil.drivers import PortDriver

    device = tmp_path / "ttyX0"
    device.write_text("")
    (tmp_path / "by-id").symlink_to(device)

    class LabPort(PortDriver):
        scheme = "lab-port"

        def resolve(self, *, where: str = "") -> str:
            return str(tmp_path / "by-id")

    driver = LabPort("bench-3")
    assert driver.labgrid_resource(speed=9600) == (
        "RawSerialPort",
        {"port": str(device), "speed": 9600},
    )
    assert driver.power_switch() is None
