"""The rack inventory: which boards exist, how to reach, reset, power and flash them.

Each class is a frozen dataclass whose fields are the TOML keys, validated on construction: the
rack file is checked by building these objects, and an error names file, board and field in one
line. Unknown keys are errors, because a typo (``resett = ...``) must not silently fall back to a
default. ``ci/rack.example.toml`` is the commented reference of the format.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hil import drivers
from hil.errors import ConfigError
from hil.rack._validate import (
    BOARD_ID,
    InvalidField,
    describe,
    expect_choice,
    expect_int,
    expect_str,
    expect_str_list,
    from_table,
    nested,
)
from hil.rack.ports import PortSpec, parse_port

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: Platforms we know by name (MicroPython's port directories and what boards say in
#: ``sys.platform``): only for suggestions on a near miss. The list is open: a platform is what the
#: board's ``sys.platform`` says, and one we never heard of is accepted.
KNOWN_PLATFORMS = (
    "alif",
    "cc3200",
    "esp32",
    "esp8266",
    "microbit",
    "mimxrt",
    "nrf",
    "qemu",
    "renesas-ra",
    "rp2",
    "samd",
    "stm32",
    "unix",
    "webassembly",
    "windows",
    "zephyr",
)

#: ``sys.platform`` values that name a port differently: the rack and markers use the port name.
PLATFORM_ALIASES = {"pyboard": "stm32", "linux": "unix", "darwin": "unix"}

#: SD card drivers: the esp32/mimxrt built-in, the stm32 built-in, micropython-lib's SPI driver.
SD_DRIVERS = ("machine.SDCard", "pyb.SDCard", "sdcard-spi")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_FIRMWARE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
_OPTION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def canonical_platform(name: str) -> str:
    """The platform name the rack and markers use for what a board says (``pyboard`` -> stm32)."""
    return PLATFORM_ALIASES.get(name, name)


def expect_platform(field: str, value: object) -> str:
    """A platform name: any short name (the list is open), aliases mapped to the port name."""
    name = expect_str(field, value)
    if not _NAME.match(name):
        raise InvalidField(
            field, f"{name!r} is not a platform name (letters, digits, '.', '_', '+', '-')"
        )
    return canonical_platform(name)


def expect_name(field: str, value: object, what: str) -> str:
    """A capability or feature name (open: a board may offer what we did not foresee)."""
    name = expect_str(field, value)
    if not _NAME.match(name):
        raise InvalidField(field, f"{name!r} is not a {what} name")
    return name


def _set(obj: object, name: str, value: object) -> None:
    """Normalise a field of a frozen dataclass during ``__post_init__`` (lists become tuples)."""
    object.__setattr__(obj, name, value)


def _pin(field: str, value: object) -> int | str | None:
    """A pin is a GPIO number (esp32, rp2) or a pin name (stm32 ``"X5"``, samd ``"PA05"``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return expect_str(field, value)
    if isinstance(value, int) and not isinstance(value, bool):
        return expect_int(field, value, minimum=0)
    raise InvalidField(field, f"expected a pin number or name, got {describe(value)}")


@dataclasses.dataclass(frozen=True)
class SpiPins:
    """The pins of an SPI-attached SD card; unset pins keep the SPI bus's defaults."""

    sck: int | str | None = None
    mosi: int | str | None = None
    miso: int | str | None = None
    cs: int | str | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _set(self, f.name, _pin(f.name, getattr(self, f.name)))


@dataclasses.dataclass(frozen=True)
class SdSlot:
    """An SD card slot, and the driver call that mounts it on this board's port.

    ``machine.SDCard`` (esp32: ``slot`` 0/1 SDMMC, 2/3 SPI with optional ``pins``; mimxrt: slot 1),
    ``pyb.SDCard`` (stm32: no options), ``sdcard-spi`` (micropython-lib ``sdcard.SDCard`` on SPI bus
    ``spi`` with chip select ``pins.cs``; rp2, samd). ``mount`` is where tests expect the card.
    """

    driver: str
    slot: int | None = None
    spi: int | None = None
    pins: SpiPins | None = None
    mount: str = "/sd"

    def __post_init__(self) -> None:
        expect_choice("driver", self.driver, SD_DRIVERS)
        if self.slot is not None:
            expect_int("slot", self.slot, minimum=0)
        if self.spi is not None:
            expect_int("spi", self.spi, minimum=0)
        if self.pins is not None:
            _set(self, "pins", nested(SpiPins, self.pins, "pins"))
        mount = expect_str("mount", self.mount)
        if not mount.startswith("/") or mount.rstrip("/") == "":
            raise InvalidField(
                "mount", f"expected an absolute path below /, such as '/sd', got {mount!r}"
            )
        self._check_driver_options()

    def _check_driver_options(self) -> None:
        if self.driver == "pyb.SDCard":
            for name in ("slot", "spi", "pins"):
                if getattr(self, name) is not None:
                    raise InvalidField(name, "pyb.SDCard takes no slot, spi or pins")
        elif self.driver == "machine.SDCard":
            if self.spi is not None:
                raise InvalidField("spi", "only for driver 'sdcard-spi' (machine.SDCard uses slot)")
        else:  # sdcard-spi
            if self.slot is not None:
                raise InvalidField("slot", "not for driver 'sdcard-spi' (it uses spi and pins.cs)")
            if self.spi is None:
                raise InvalidField("spi", "missing: driver 'sdcard-spi' needs the SPI bus id")
            if self.pins is None or self.pins.cs is None:
                raise InvalidField(
                    "pins.cs", "missing: driver 'sdcard-spi' needs the chip select pin"
                )


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a board offers beyond a REPL, as declared in the rack (the board's probe adds more).

    ``sd`` is the card slot and how to mount it; ``features`` names what cannot be probed or
    must be promised (``["wifi", "sd"]``): a selector's capability matches either.
    """

    sd: SdSlot | None = None
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sd is not None:
            _set(self, "sd", nested(SdSlot, self.sd, "sd"))
        features = expect_str_list("features", self.features, unique=True)
        for index, name in enumerate(features):
            expect_name(f"features[{index}]", name, "feature")
        _set(self, "features", features)

    @property
    def names(self) -> frozenset[str]:
        """The capabilities declared, by name (``{"sd", "wifi"}``)."""
        return frozenset(self.features) | ({"sd"} if self.sd is not None else set())


def _option(field: str, value: object) -> object:
    if isinstance(value, (str, int, float)):  # bool is an int
        return value
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if not isinstance(item, (str, int, float)):
                raise InvalidField(
                    f"{field}[{index}]", f"expected a string or number, got {describe(item)}"
                )
        return tuple(value)
    raise InvalidField(field, f"expected a string, number, boolean or array, got {describe(value)}")


@dataclasses.dataclass(frozen=True)
class DriverRef:
    """A driver a rack entry names, and its options: ``{name = "esptool", options = {...}}``.

    The name must be registered (:mod:`hil.drivers`) when the rack is loaded; the options are
    checked for shape here and for meaning by the driver when it is built for the board.
    """

    name: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        expect_str("name", self.name)
        if not isinstance(self.options, Mapping):
            raise InvalidField("options", f"expected a table, got {describe(self.options)}")
        checked: dict[str, object] = {}
        for key, value in self.options.items():
            if not isinstance(key, str) or not _OPTION_KEY.match(key):
                raise InvalidField("options", f"bad option name {key!r}")
            checked[key] = _option(f"options.{key}", value)
        _set(self, "options", types.MappingProxyType(checked))

    def __hash__(self) -> int:
        # A read-only mapping is not hashable by itself; boards must be (sets, dict keys).
        return hash((self.name, tuple(sorted(self.options.items()))))

    def __str__(self) -> str:
        if self.name == "command":
            return " ".join(self.options.get("argv", ()))
        return self.name


#: The rack's ``[boards.flasher]`` table is a driver reference of the ``flasher`` role.
Flasher = DriverRef


def driver_ref(role: drivers.Role, field: str, value: object) -> DriverRef:
    """A reset/power/flasher field: a registered name, a command as an argument list (reset and
    power), or a table ``{name = ..., options = {...}}``; the name is checked in the registry."""
    if isinstance(value, DriverRef):
        ref = value
    elif isinstance(value, str):
        ref = DriverRef(expect_str(field, value))
    elif isinstance(value, (list, tuple)) and role in ("reset", "power"):
        command = expect_str_list(field, value)
        if not command:
            raise InvalidField(field, "a command needs at least the program name")
        ref = DriverRef("command", {"argv": command})
    elif isinstance(value, Mapping):
        ref = nested(DriverRef, value, field)
    else:
        commands = " or a command as an array of strings" if role != "flasher" else ""
        raise InvalidField(
            field,
            f"expected a driver name, a table {{name = ...}}{commands}, got {describe(value)}",
        )
    if not drivers.known(role, ref.name):
        raise InvalidField(field, drivers.registry.unknown_message(role, ref.name))
    try:  # a misspelt option is found now, not when a hung board needs its driver
        cls = drivers.lookup(role, ref.name)
        drivers.parse_options(cls.options_type, ref.options, where=ref.name)
    except ConfigError as error:
        raise InvalidField(f"{field}.options", f"{error.where}: {error.what}") from None
    return ref


@dataclasses.dataclass(frozen=True)
class Board:
    """One board of the rack; fields are the keys of a ``[[boards]]`` entry.

    ``reset`` names the driver that resets it hard, ``power`` the one that power-cycles it, if it
    can be (each a registered driver name, a table with options, or a command as an argument
    list); ``flasher`` the driver that writes its firmware; ``firmware`` is the pinned firmware
    id of the firmware manifest, or None when its firmware is not managed; ``baudrate``
    matters for boards behind a USB-UART bridge only. ``group`` names the boards it is
    equivalent to (see :attr:`group_id`).
    """

    id: str
    port: str
    platform: str
    tags: tuple[str, ...] = ()
    capabilities: Capabilities = dataclasses.field(default_factory=Capabilities)
    reset: DriverRef = DriverRef("machine.reset")
    power: DriverRef | None = None
    flasher: DriverRef | None = None
    firmware: str | None = None
    baudrate: int = 115200
    group: str | None = None

    def __post_init__(self) -> None:
        expect_str("id", self.id)
        if not BOARD_ID.match(self.id):
            raise InvalidField(
                "id",
                f"{self.id!r} is not a board id (letters, digits, '.', '_', '-'; at most 64; "
                "it names the board's lock file)",
            )
        parse_port(self.port)
        _set(self, "platform", expect_platform("platform", self.platform))
        _set(self, "tags", expect_str_list("tags", self.tags, unique=True))
        _set(self, "capabilities", nested(Capabilities, self.capabilities, "capabilities"))
        _set(self, "reset", driver_ref("reset", "reset", self.reset))
        if self.power is not None:
            _set(self, "power", driver_ref("power", "power", self.power))
        if self.flasher is not None:
            _set(self, "flasher", driver_ref("flasher", "flasher", self.flasher))
        if self.firmware is not None:
            expect_str("firmware", self.firmware)
            if not _FIRMWARE_ID.match(self.firmware):
                raise InvalidField("firmware", f"{self.firmware!r} is not a firmware id")
        expect_int("baudrate", self.baudrate, minimum=1)
        if self.group is not None:
            expect_name("group", self.group, "group")

    @property
    def group_id(self) -> str:
        """The group of equivalent boards this one belongs to: its ``group``, else its platform
        and declared capabilities (``esp32+sd``): boards a test may run on interchangeably."""
        if self.group is not None:
            return self.group
        return "+".join((self.platform, *sorted(self.capabilities.names)))

    @property
    def port_spec(self) -> PortSpec:
        """The parsed ``port`` (see :mod:`hil.rack.ports` for the forms)."""
        return parse_port(self.port)


@dataclasses.dataclass(frozen=True)
class Rack:
    """A rack: its boards and, optionally, the lock directory that every user of it must share.

    ``lock_dir`` belongs in the rack file when several users or CI runners share the boards: the
    default lock directory is per user (see :func:`hil.rack.leases.default_lock_dir`).
    """

    boards: tuple[Board, ...]
    lock_dir: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.boards, (str, Mapping)) or not isinstance(self.boards, (list, tuple)):
            raise InvalidField(
                "boards", f"expected an array of tables ([[boards]]), got {describe(self.boards)}"
            )
        if not self.boards:
            raise InvalidField("boards", "a rack needs at least one board")
        boards = []
        first_index: dict[str, int] = {}
        for index, item in enumerate(self.boards):
            try:
                board = from_table(Board, item)
            except InvalidField as error:
                raise error.within(f"boards[{index}]") from None
            if board.id in first_index:
                raise InvalidField(
                    "id", f"duplicate board id (also board #{first_index[board.id] + 1})"
                )
            first_index[board.id] = index
            boards.append(board)
        _set(self, "boards", tuple(boards))
        if self.lock_dir is not None:
            expect_str("lock_dir", self.lock_dir)

    def board(self, board_id: str) -> Board:
        """The board with this id; :class:`ConfigError` if the rack has none."""
        for board in self.boards:
            if board.id == board_id:
                return board
        ids = ", ".join(b.id for b in self.boards)
        raise ConfigError(f"no board {board_id!r} in the rack (boards: {ids})")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(board.id for board in self.boards)


def _board_label(index: int, table: object) -> str:
    board_id = table.get("id") if isinstance(table, Mapping) else None
    if isinstance(board_id, str) and BOARD_ID.match(board_id):
        return f"board {board_id!r}"
    return f"board #{index + 1}"


def rack_from_data(
    data: Mapping[str, Any], *, source: str = "rack", base_dir: Path | None = None
) -> Rack:
    """Build a rack from parsed TOML; errors are one line: ``source: board 'x': field 'y': ...``.

    ``base_dir`` anchors relative paths (``lock_dir``, a port driver's path such as
    ``sim:<dir>``): the rack file's own directory, so that a rack means the same thing from any
    working directory.
    """
    data = dict(data)
    boards = data.get("boards")
    if isinstance(boards, list):
        built: list[Board] = []
        first_index: dict[str, int] = {}
        for index, table in enumerate(boards):
            where = f"{source}: {_board_label(index, table)}"
            try:
                board = from_table(Board, _anchor_port_path(table, base_dir))
            except InvalidField as error:
                raise ConfigError(error.what, where=where) from None
            if board.id in first_index:
                raise ConfigError(
                    f"field 'id': duplicate board id (also board #{first_index[board.id] + 1})",
                    where=where,
                )
            first_index[board.id] = index
            built.append(board)
        data["boards"] = built
    lock_dir = data.get("lock_dir")
    if isinstance(lock_dir, str) and lock_dir.strip() and base_dir is not None:
        data["lock_dir"] = str(base_dir / Path(lock_dir).expanduser())
    try:
        return from_table(Rack, data)
    except InvalidField as error:
        raise ConfigError(error.what, where=source) from None


def _anchor_port_path(table: object, base_dir: Path | None) -> object:
    """A port driver whose value is a path (``sim:<dir>``) takes it relative to the rack file."""
    if not isinstance(table, Mapping) or base_dir is None:
        return table
    port = table.get("port")
    if not isinstance(port, str):
        return table
    try:
        spec = parse_port(port)
    except InvalidField:
        return table  # the Board itself reports it, with file and board
    if spec.kind in ("device", "url") or not getattr(
        drivers.lookup("port", spec.kind), "value_is_path", False
    ):
        return table
    path = Path(spec.value).expanduser()
    if path.is_absolute():
        return table
    return {**table, "port": f"{spec.kind}:{base_dir / path}"}


def load_rack(path: str | Path) -> Rack:
    """Read and validate a rack file; any problem is a one-line :class:`ConfigError`."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except OSError as error:
        raise ConfigError(
            f"cannot read the rack file: {error.strerror or error}", where=str(path)
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"invalid TOML: {' '.join(str(error).split())}", where=str(path)
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"not UTF-8 text (TOML must be): byte {error.object[error.start]:#04x} "
            f"at offset {error.start}",
            where=str(path),
        ) from None
    return rack_from_data(data, source=str(path), base_dir=path.resolve().parent)
