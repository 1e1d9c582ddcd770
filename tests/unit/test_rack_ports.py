"""The port scheme, its resolution, and finding MicroPython boards by their USB ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.errors import ConfigError, InfrastructureError, LinkError
from hil.rack import (
    Board,
    PortSpec,
    auto_port,
    bench_board_id,
    find_micropython_ports,
    parse_port,
    port_present,
)
from hil.rack import resolve_port as _resolve_port
from hil.rack._validate import InvalidField


@dataclass
class FakePort:
    """Stands in for pyserial's ListPortInfo (only the attributes the code reads)."""

    device: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    description: str = "n/a"


PORTS = [
    FakePort("/dev/ttyS0"),
    FakePort("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001A2B3", "CP2102 USB to UART"),
    FakePort("/dev/ttyACM1", 0x2E8A, 0x0005, "E6614C311B7E6F35", "Board in FS mode"),
    FakePort("/dev/ttyACM0", 0xF055, 0x9802, "3254335D3037", "Pyboard Virtual Comm Port"),
    FakePort("/dev/ttyACM2", 0x303A, 0x1001, "F4:12:FA:00:11:22", "USB JTAG/serial"),
    FakePort("/dev/ttyACM3", 0x1234, 0x5678, "OTHER", "a keyboard with a serial port"),
    FakePort("/dev/ttyUSB1", 0x0403, 0x6010, "DUAL", "FT2232 A"),
    FakePort("/dev/ttyUSB2", 0x0403, 0x6010, "DUAL", "FT2232 B"),
]


def resolve(spec: PortSpec, **kwargs: object) -> str:
    return _resolve_port(spec, comports=lambda: PORTS, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("/dev/ttyACM0", "device", "/dev/ttyACM0"),
        (
            "/dev/serial/by-id/usb-MicroPython-if00",
            "device",
            "/dev/serial/by-id/usb-MicroPython-if00",
        ),
        ("COM12", "device", "COM12"),
        ("usb-serial:0001A2B3", "usb-serial", "0001A2B3"),
        ("rfc2217://bench.lan:4000", "url", "rfc2217://bench.lan:4000"),
        ("socket://127.0.0.1:7000", "url", "socket://127.0.0.1:7000"),
        ("sim:/tmp/hil-sim/board-0", "sim", "/tmp/hil-sim/board-0"),
    ],
)
def test_each_port_form_parses(text: str, kind: str, value: str) -> None:
    spec = parse_port(text)

    assert (spec.kind, spec.value) == (kind, value)
    assert str(spec) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ttyACM0", "expected a device path"),
        (" /dev/ttyACM0", "leading or trailing blanks"),
        ("loop://", "unsupported URL scheme 'loop'"),
        ("socket://host:notaport", "expected socket://host:port"),
        ("sim:", "sim: needs a value"),
        ("virtual", "expected a device path"),
        ("nosuchscheme:x", "unknown port scheme 'nosuchscheme' (known: "),
        ("", "must not be empty"),
        (["/dev/ttyACM0"], "expected a string, got an array"),
    ],
)
def test_bad_ports_are_refused(text: object, problem: str) -> None:
    with pytest.raises(InvalidField, match=r"^field 'port': ") as info:
        parse_port(text)

    assert problem in str(info.value)


def test_device_paths_and_urls_resolve_to_themselves() -> None:
    assert resolve(parse_port("/dev/serial/by-id/x")) == "/dev/serial/by-id/x"
    assert resolve(parse_port("rfc2217://h:1")) == "rfc2217://h:1"


def test_usb_serial_number_resolves_to_the_port_the_os_gave_it() -> None:
    assert resolve(parse_port("usb-serial:3254335D3037")) == "/dev/ttyACM0"


def test_an_absent_usb_serial_number_is_a_link_error_naming_what_is_there() -> None:
    with pytest.raises(
        LinkError, match="board-x: no USB serial port with serial number 'NOPE'"
    ) as info:
        resolve(parse_port("usb-serial:NOPE"), where="board-x")

    assert "/dev/ttyACM0=3254335D3037" in str(info.value)


def test_an_ambiguous_usb_serial_number_is_refused_with_both_ports() -> None:
    with pytest.raises(ConfigError, match=r"matches 2 ports \(/dev/ttyUSB1, /dev/ttyUSB2\)"):
        resolve(parse_port("usb-serial:DUAL"))


def test_a_registered_port_driver_resolves_its_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    from hil import drivers
    from hil.drivers import registry

    monkeypatch.setattr(registry, "_drivers", {k: dict(v) for k, v in registry._drivers.items()})

    class BenchMux(drivers.PortDriver):
        """A project's own scheme: ``mux:<channel>`` is a channel of a serial multiplexer."""

        scheme = "mux"

        def check(self) -> None:
            if not self.value.isdigit():
                raise ValueError("a channel number")

        def resolve(self, *, where: str = "") -> str:
            return f"/dev/ttyMUX{self.value}"

    drivers.register("port", "mux", BenchMux)

    assert resolve(parse_port("mux:3")) == "/dev/ttyMUX3"
    assert port_present(parse_port("mux:3")) is None
    with pytest.raises(InvalidField, match="'mux:x': a channel number"):
        parse_port("mux:x")


def test_a_sim_port_of_a_board_that_is_not_running_is_an_infrastructure_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(InfrastructureError, match="control socket unreachable"):
        resolve(parse_port(f"sim:{tmp_path / 'vb0'}"))


def test_bench_board_id_is_a_valid_id_shared_by_every_name_of_one_device(tmp_path: Path) -> None:
    device = tmp_path / "ttyACM0"
    device.touch()
    link = tmp_path / "usb-MicroPython_Board-if00"
    link.symlink_to(device)
    long_url = "socket://" + "h" * 80 + ":1"

    by_path, by_link = (bench_board_id(parse_port(str(p))) for p in (device, link))
    ids = [
        by_path,
        bench_board_id(parse_port("usb-serial:AB/1")),
        bench_board_id(parse_port(long_url)),
    ]

    assert by_path == by_link
    assert by_path.startswith("port-device-") and by_path.endswith("ttyACM0")
    assert ids[1] == "port-usb-serial-AB-1"
    assert bench_board_id(parse_port(long_url + "0")) != ids[2]
    for board_id in ids:
        Board(id=board_id, port="/dev/null", platform="unix")  # a valid board id


def test_port_present(tmp_path: Path) -> None:
    device = tmp_path / "ttyFAKE"
    comports = lambda: PORTS  # noqa: E731

    assert port_present(parse_port(str(device))) is False
    device.touch()
    assert port_present(parse_port(str(device))) is True
    assert port_present(parse_port("usb-serial:0001A2B3"), comports=comports) is True
    assert port_present(parse_port("usb-serial:GONE"), comports=comports) is False
    assert port_present(parse_port("socket://h:1")) is None


def test_find_micropython_ports_ranks_micropython_ids_first_and_skips_others() -> None:
    found = find_micropython_ports(PORTS)

    assert [f.device for f in found] == [
        "/dev/ttyACM0",  # 0xF055: MicroPython's own vendor id
        "/dev/ttyACM1",  # 0x2E8A:0x0005: MicroPython rp2
        "/dev/ttyACM2",  # Espressif native USB
        "/dev/ttyUSB0",  # CP210x bridge
        "/dev/ttyUSB1",  # FT2232
        "/dev/ttyUSB2",
    ]
    assert found[0].serial_number == "3254335D3037"
    assert "f055:9802" in str(found[0])


def test_auto_port_picks_the_most_likely_board() -> None:
    assert auto_port(PORTS).device == "/dev/ttyACM0"


def test_auto_port_without_a_board_names_the_ports_it_saw() -> None:
    with pytest.raises(
        ConfigError, match=r"--hil-port auto: no MicroPython USB board found"
    ) as info:
        auto_port([PORTS[0], PORTS[5]])

    assert "/dev/ttyS0, /dev/ttyACM3 [1234:5678]" in str(info.value)
