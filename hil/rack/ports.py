"""Where a board is reached: the port scheme of the rack file, its resolution, USB discovery.

A rack entry names a board's port in one of these forms (parsed by :func:`parse_port`):

``/dev/ttyACM0``, ``/dev/serial/by-id/usb-...``, ``COM7``
    A device path, opened as is. Prefer ``/dev/serial/by-id/`` paths on Linux: they stay the same
    across reboots and re-plugging, where ``ttyACM*`` numbers do not.
``usb-serial:<serial-number>``
    The USB serial port whose USB serial number is ``<serial-number>`` (as ``pyserial``'s
    ``list_ports`` reports it), wherever the OS put it this time. This survives a board that
    re-enumerates under another name after a hard reset. The number must match exactly one port.
``rfc2217://host:port``, ``socket://host:port``
    A serial port served over the network, handed to ``serial.serial_for_url``.
``<scheme>:<value>``
    Any other form is a *port driver* of the registry (:mod:`hil.drivers`): ``usb-serial:`` is
    built in, ``sim:<board-state-dir>`` is the virtual boards' (a relative directory is taken
    relative to the rack file), and a project may register its own.

Above the port, nothing in the rack layer knows what a driver does behind its scheme.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

from hil import drivers
from hil.drivers.base import PortDriver
from hil.drivers.ports import ComPort, UsbSerialPort, list_serial_ports
from hil.errors import ConfigError
from hil.rack._validate import InvalidField, expect_str

#: URL schemes that pyserial's ``serial_for_url`` serves and that make sense for a board.
URL_SCHEMES = ("rfc2217", "socket")

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+._-]*):(?P<value>.*)$")
_WINDOWS_DEVICE = re.compile(r"^(COM[0-9]+|\\\\\.\\COM[0-9]+)$", re.IGNORECASE)


def _forms() -> str:
    schemes = ", ".join(f"{name}:..." for name in drivers.names("port"))
    return f"a device path (/dev/... or COMn), rfc2217://host:port, socket://host:port, {schemes}"


@dataclasses.dataclass(frozen=True)
class PortSpec:
    """A parsed port string: ``kind`` says how to reach the board, ``value`` is the rest.

    ``kind`` is ``device`` (a path), ``url`` (the whole URL) or the scheme of a port driver
    (``usb-serial``, ``sim``, ...), whose ``value`` is what follows the colon.
    """

    kind: str
    value: str

    def __str__(self) -> str:
        if self.kind in ("device", "url"):
            return self.value
        return f"{self.kind}:{self.value}"


def parse_port(text: object, field: str = "port") -> PortSpec:
    """Parse a rack entry's ``port`` string; raises :class:`InvalidField` naming ``field``."""
    text = expect_str(field, text)
    if text != text.strip():
        raise InvalidField(field, f"has leading or trailing blanks: {text!r}")
    match = _URL.match(text)
    if match:
        scheme = match["scheme"].lower()
        if scheme not in URL_SCHEMES:
            raise InvalidField(
                field,
                f"unsupported URL scheme {scheme!r} in {text!r} (expected rfc2217:// or socket://)",
            )
        parts = urlsplit(text)
        try:
            port_number = parts.port
        except ValueError:
            port_number = None
        if not parts.hostname or port_number is None:
            raise InvalidField(field, f"expected {scheme}://host:port, got {text!r}")
        return PortSpec("url", text)
    if text.startswith("/") or _WINDOWS_DEVICE.match(text):
        return PortSpec("device", text)
    match = _SCHEME.match(text)
    if match and drivers.known("port", match["scheme"]):
        if not match["value"]:
            raise InvalidField(field, f"{match['scheme']}: needs a value after the colon")
        spec = PortSpec(match["scheme"], match["value"])
        try:
            port_driver(spec)
        except ValueError as error:
            raise InvalidField(field, f"{text!r}: {error}") from None
        return spec
    if match:
        raise InvalidField(field, drivers.registry.unknown_message("port", match["scheme"]))
    raise InvalidField(field, f"expected {_forms()}; got {text!r}")


def port_driver(
    spec: PortSpec, *, comports: Callable[[], Sequence[ComPort]] | None = None
) -> PortDriver:
    """The driver behind a ``<scheme>:`` port (``ConfigError`` for device paths and URLs)."""
    if spec.kind in ("device", "url"):
        raise ConfigError(f"port {str(spec)!r} needs no driver: it is opened as it is")
    cls = drivers.lookup("port", spec.kind)
    if cls is UsbSerialPort and comports is not None:
        return UsbSerialPort(spec.value, comports=comports)
    return cls(spec.value)


def resolve_port(
    spec: PortSpec,
    *,
    where: str = "",
    comports: Callable[[], Sequence[ComPort]] | None = None,
) -> str:
    """Turn a port spec into something ``serial.serial_for_url`` can open, as late as possible.

    Resolve right before opening, and again after a hard reset: a board found by its USB serial
    number may have come back under another device name. Raises :class:`LinkError` when the
    board is not there now, :class:`ConfigError` when the rack entry cannot be resolved at all.
    ``comports`` replaces the host's list of serial ports (for tests of ``usb-serial:``).
    """
    if spec.kind in ("device", "url"):
        return spec.value
    return port_driver(spec, comports=comports).resolve(where=where)


def bench_board_id(spec: PortSpec) -> str:
    """A board id (and so a lock name) for a board given by its port alone (``--hil-port``),
    when the board reports nothing stable to name it by (see :func:`board_id_from`).

    Device paths are resolved through symlinks first, so ``/dev/ttyACM0`` and the
    ``/dev/serial/by-id/`` link to it are one board, one lock.
    """
    value = spec.value
    if spec.kind == "device" and not _WINDOWS_DEVICE.match(value):
        value = os.path.realpath(value)
    return safe_board_id(f"port-{spec.kind}-", value)


def safe_board_id(prefix: str, value: str) -> str:
    """``prefix`` + ``value`` made into a valid board id (at most 64 characters)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-._") or "x"
    if len(prefix) + len(name) > 64:  # ids are at most 64 characters: keep the tail, add a hash
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        name = f"{digest}-{name[-(64 - len(prefix) - 9) :].lstrip('-._')}"
    return prefix + name


def port_present(
    spec: PortSpec, *, comports: Callable[[], Sequence[ComPort]] | None = None
) -> bool | None:
    """Whether the board's port is there right now, for status tables; ``None``: cannot tell.

    A network URL cannot be checked without connecting; a driver's port only by its driver.
    """
    if spec.kind == "device":
        if _WINDOWS_DEVICE.match(spec.value):
            listed = (comports or list_serial_ports)()
            return any(p.device.upper() == spec.value.upper() for p in listed)
        return os.path.exists(spec.value)
    if spec.kind == "url":
        return None
    return port_driver(spec, comports=comports).present()


@dataclasses.dataclass(frozen=True)
class UsbId:
    """A USB vendor/product id that MicroPython boards show up with; ``pid`` None: any product.

    ``rank`` orders candidates for ``--hil-port auto``: 0 ids that only MicroPython firmware uses,
    1 native USB of MCU vendors (mostly MicroPython on such a board, but other firmware too),
    2 USB-to-UART bridges (a MicroPython board is likely behind one, but so is anything else).
    """

    vid: int
    pid: int | None
    rank: int
    label: str

    def matches(self, vid: int | None, pid: int | None) -> bool:
        return vid == self.vid and (self.pid is None or pid == self.pid)


#: The USB ids that ``find_micropython_ports`` looks for, best first. Extend it in one place.
MICROPYTHON_USB_IDS: tuple[UsbId, ...] = (
    UsbId(0xF055, None, 0, "MicroPython (pyboard 0x9800-0x9802; TinyUSB ports: samd, mimxrt, nrf)"),
    UsbId(0x2E8A, 0x0005, 0, "MicroPython rp2 (RP2040/RP2350, MicroPython's own product id)"),
    UsbId(0x2E8A, None, 1, "Raspberry Pi vendor id (rp2 boards with their own product id)"),
    UsbId(0x303A, None, 1, "Espressif native USB (ESP32-S2/S3/C3/C6, e.g. 0x1001, 0x4001)"),
    UsbId(0x239A, None, 1, "Adafruit vendor id (samd/rp2/nrf boards)"),
    UsbId(0x10C4, 0xEA60, 2, "Silicon Labs CP210x bridge (most ESP32 dev boards)"),
    UsbId(0x1A86, 0x7523, 2, "WCH CH340 bridge (ESP32/ESP8266 boards)"),
    UsbId(0x1A86, 0x55D4, 2, "WCH CH9102 bridge (ESP32 boards)"),
    UsbId(0x1A86, 0x55D3, 2, "WCH CH343 bridge (ESP32 boards)"),
    UsbId(0x0403, 0x6001, 2, "FTDI FT232R bridge"),
    UsbId(0x0403, 0x6010, 2, "FTDI FT2232 bridge (ESP-WROVER-KIT)"),
    UsbId(0x0403, 0x6015, 2, "FTDI FT231X bridge"),
    UsbId(0x0483, 0x374B, 2, "ST-LINK/V2-1 virtual COM port (stm32 Nucleo)"),
    UsbId(0x0483, 0x374E, 2, "ST-LINK/V3 virtual COM port (stm32 Nucleo)"),
    UsbId(0x0483, 0x374F, 2, "ST-LINK/V3 virtual COM port (stm32 Nucleo)"),
    UsbId(0x0D28, 0x0204, 2, "Arm DAPLink virtual COM port (mimxrt EVK, micro:bit)"),
)


@dataclasses.dataclass(frozen=True)
class FoundPort:
    """A serial port that looks like a MicroPython board, and why we think so."""

    device: str
    vid: int
    pid: int
    serial_number: str | None
    description: str
    usb_id: UsbId

    def __str__(self) -> str:
        serial = f" serial {self.serial_number}" if self.serial_number else ""
        return f"{self.device} [{self.vid:04x}:{self.pid:04x}{serial}] {self.usb_id.label}"


def find_micropython_ports(
    ports: Iterable[ComPort] | None = None,
    usb_ids: Sequence[UsbId] = MICROPYTHON_USB_IDS,
) -> list[FoundPort]:
    """Serial ports whose USB ids are those of MicroPython boards, the most likely first.

    Each port is matched against ``usb_ids`` in order and keeps its first match; the result is
    sorted by that match's rank, then by device name, so the choice is the same on every run.
    """
    found: list[FoundPort] = []
    for port in list_serial_ports() if ports is None else ports:
        if port.vid is None or port.pid is None:
            continue
        usb_id = next((u for u in usb_ids if u.matches(port.vid, port.pid)), None)
        if usb_id is not None:
            found.append(
                FoundPort(
                    port.device, port.vid, port.pid, port.serial_number, port.description, usb_id
                )
            )
    return sorted(found, key=lambda f: (f.usb_id.rank, f.device))


def auto_port(ports: Iterable[ComPort] | None = None) -> FoundPort:
    """The port that ``--hil-port auto`` means: the most likely MicroPython board.

    Raises :class:`ConfigError` when there is none, naming what was seen instead, because "no
    board" is usually a cable, a charge-only lead or a missing udev permission.
    """
    listed = list_serial_ports() if ports is None else list(ports)
    found = find_micropython_ports(listed)
    if not found:
        seen = ", ".join(
            f"{p.device} [{p.vid:04x}:{p.pid:04x}]"
            if p.vid is not None and p.pid is not None
            else p.device
            for p in listed
        )
        raise ConfigError(
            f"no MicroPython USB board found (serial ports present: {seen or 'none'})",
            where="--hil-port auto",
        )
    return found[0]
