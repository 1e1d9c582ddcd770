"""Drivers: the means a rack entry names to reach, reset, power and flash a board.

:mod:`hil.drivers.registry` is the one registry (by role and name); :mod:`hil.drivers.base` the
interfaces; the built-in drivers are registered here, by name and module, and imported only when a
rack uses them. A project adds its own with :func:`register` (see the README, "Drivers").
"""

from hil.drivers.base import PortDriver, PowerDriver, ResetDriver
from hil.drivers.options import NoOptions, parse_options
from hil.drivers.registry import ROLES, Role, import_modules, known, lookup, names, register

for _name, _target in (
    ("usb-serial", "hil.drivers.ports:UsbSerialPort"),
    ("labgrid", "hil.labgrid.drivers:LabgridPort"),
):
    register("port", _name, _target)
for _name, _target in (
    ("machine.reset", "hil.drivers.reset:MachineReset"),
    ("soft", "hil.drivers.reset:SoftReset"),
    ("dtr-rts", "hil.drivers.reset:DtrRtsReset"),
    ("command", "hil.drivers.reset:CommandReset"),
    ("labgrid", "hil.labgrid.drivers:LabgridReset"),
):
    register("reset", _name, _target)
register("power", "command", "hil.drivers.power:CommandPower")
register("power", "labgrid", "hil.labgrid.drivers:LabgridPower")
for _name, _target in (
    ("esptool", "hil.flash.esptool_flasher:EsptoolFlasher"),
    ("uf2", "hil.flash.uf2:Uf2Flasher"),
    ("dfu-util", "hil.flash.external:DfuUtilFlasher"),
    ("picotool", "hil.flash.external:PicotoolFlasher"),
):
    register("flasher", _name, _target)

__all__ = [
    "ROLES",
    "NoOptions",
    "PortDriver",
    "PowerDriver",
    "ResetDriver",
    "Role",
    "import_modules",
    "known",
    "lookup",
    "names",
    "parse_options",
    "register",
]
