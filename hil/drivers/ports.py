"""The built-in port driver ``usb-serial:<serial number>``: a USB serial port found by the USB
serial number of its device, wherever the OS put it this time (it survives re-enumeration)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from hil.drivers.base import PortDriver
from hil.errors import ConfigError, LinkError


class ComPort(Protocol):
    """What we use of pyserial's ``ListPortInfo`` (a protocol, so tests can pass plain objects)."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    description: str


def list_serial_ports() -> list[ComPort]:
    """The serial ports of this host, as pyserial lists them."""
    from serial.tools import list_ports  # imported late: enumerating USB is only needed here

    return list(list_ports.comports())


class UsbSerialPort(PortDriver):
    """``usb-serial:<serial-number>``: the one port whose USB serial number this is."""

    scheme = "usb-serial"

    def __init__(
        self, value: str, *, comports: Callable[[], Sequence[ComPort]] = list_serial_ports
    ) -> None:
        self._comports = comports
        super().__init__(value)

    def resolve(self, *, where: str = "") -> str:
        ports = list(self._comports())
        found = sorted(p.device for p in ports if p.serial_number == self.value)
        if not found:
            seen = ", ".join(
                sorted(f"{p.device}={p.serial_number}" for p in ports if p.serial_number)
            )
            raise LinkError(
                f"no USB serial port with serial number {self.value!r} is present "
                f"(present: {seen or 'none with a serial number'})",
                where=where,
            )
        if len(found) > 1:
            raise ConfigError(
                f"USB serial number {self.value!r} matches {len(found)} ports "
                f"({', '.join(found)}); name the one you mean by its /dev/serial/by-id/ path",
                where=where,
            )
        return found[0]

    def present(self) -> bool | None:
        return any(p.serial_number == self.value for p in self._comports())

    def labgrid_resource(self, *, speed: int, where: str = "") -> tuple[str, dict[str, Any]]:
        # matched by udev on the exporter's host, so the place follows the board wherever it
        # re-enumerates
        return "USBSerialPort", {"match": {"ID_SERIAL_SHORT": self.value}, "speed": speed}
