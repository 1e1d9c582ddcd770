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

#: MicroPython ports (the directory names under ``micropython/ports``). ``unix`` is also what a
#: virtual board runs.
PLATFORMS = (
    "alif",
    "cc3200",
    "esp32",
    "esp8266",
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

#: SD card drivers: the esp32/mimxrt built-in, the stm32 built-in, micropython-lib's SPI driver.
SD_DRIVERS = ("machine.SDCard", "pyb.SDCard", "sdcard-spi")

#: Built-in ways to reset a board hard: Ctrl-D only (when the board has no better way),
#: ``machine.reset()`` on the board, toggling DTR/RTS like esptool (ESP boards on a bridge), or
#: the virtual board's control socket.
RESET_METHODS = ("soft", "machine.reset", "dtr-rts", "sim")

#: Built-in ways to power-cycle a board; anything else is a command (an argument list).
POWER_METHODS = ("sim",)

#: Flashers a rack entry may name: ``hil.flash``'s built-ins and the virtual board's ``sim``
#: (a unit test keeps this in step with ``hil.flash.flasher_names()``). Their options are
#: checked by the flasher itself, when it is built for the board.
FLASHERS = ("esptool", "uf2", "picotool", "dfu-util", "sim")

#: Capability names a selector can ask for; each is a field of :class:`Capabilities`.
CAPABILITIES = ("sd",)

_FIRMWARE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
_OPTION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

#: A reset or power method: a built-in name, or a command as an argument list (never a shell line).
Method = str | tuple[str, ...]


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


def _method(field: str, value: object, builtins: tuple[str, ...]) -> Method:
    """A built-in method name, or a command given as an argument list (run without a shell)."""
    if isinstance(value, str):
        if value not in builtins:
            raise InvalidField(
                field,
                f"unknown value {value!r} (expected one of: {', '.join(builtins)}, "
                'or a command as an array of arguments, e.g. ["uhubctl", "-a", "cycle"])',
            )
        return value
    if isinstance(value, (list, tuple)):
        command = expect_str_list(field, value)
        if not command:
            raise InvalidField(field, "a command needs at least the program name")
        return command
    raise InvalidField(
        field,
        f"expected one of {', '.join(builtins)} or a command as an array of strings, "
        f"got {describe(value)}",
    )


def is_command(method: Method | None) -> bool:
    """Whether a reset/power method is an external command rather than a built-in name."""
    return isinstance(method, tuple)


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
    """What a board offers beyond a REPL; each field is a capability a selector can ask for."""

    sd: SdSlot | None = None

    def __post_init__(self) -> None:
        if self.sd is not None:
            _set(self, "sd", nested(SdSlot, self.sd, "sd"))

    @property
    def names(self) -> frozenset[str]:
        """The capabilities present, by name (``{"sd"}``)."""
        return frozenset(name for name in CAPABILITIES if getattr(self, name) is not None)


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
class Flasher:
    """The flasher that writes this board's firmware and its options (``chip``, ``baud``, ...).

    Options are checked here only for shape; the flasher named by ``name`` checks their meaning.
    """

    name: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        expect_choice("name", self.name, FLASHERS)
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


@dataclasses.dataclass(frozen=True)
class Board:
    """One board of the rack; fields are the keys of a ``[[boards]]`` entry.

    ``reset`` says how to reset it hard (a built-in of :data:`RESET_METHODS` or a command);
    ``power`` how to power-cycle it, if it can be; ``firmware`` is the pinned firmware id of the
    firmware manifest, or None when its firmware is not managed; ``baudrate`` matters for boards
    behind a USB-UART bridge only.
    """

    id: str
    port: str
    platform: str
    tags: tuple[str, ...] = ()
    capabilities: Capabilities = dataclasses.field(default_factory=Capabilities)
    reset: Method = "machine.reset"
    power: Method | None = None
    flasher: Flasher | None = None
    firmware: str | None = None
    baudrate: int = 115200

    def __post_init__(self) -> None:
        expect_str("id", self.id)
        if not BOARD_ID.match(self.id):
            raise InvalidField(
                "id",
                f"{self.id!r} is not a board id (letters, digits, '.', '_', '-'; at most 64; "
                "it names the board's lock file)",
            )
        parse_port(self.port)
        expect_choice("platform", self.platform, PLATFORMS)
        _set(self, "tags", expect_str_list("tags", self.tags, unique=True))
        _set(self, "capabilities", nested(Capabilities, self.capabilities, "capabilities"))
        _set(self, "reset", _method("reset", self.reset, RESET_METHODS))
        if self.power is not None:
            _set(self, "power", _method("power", self.power, POWER_METHODS))
        if self.flasher is not None:
            _set(self, "flasher", nested(Flasher, self.flasher, "flasher"))
        if self.firmware is not None:
            expect_str("firmware", self.firmware)
            if not _FIRMWARE_ID.match(self.firmware):
                raise InvalidField("firmware", f"{self.firmware!r} is not a firmware id")
        expect_int("baudrate", self.baudrate, minimum=1)

    @property
    def port_spec(self) -> PortSpec:
        """The parsed ``port`` (see :mod:`hil.rack.ports` for the forms)."""
        return parse_port(self.port)

    @property
    def is_virtual(self) -> bool:
        """Whether the board is a virtual one (its port is ``virtual`` or ``sim:...``)."""
        return self.port_spec.kind in ("sim", "virtual")


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

    ``base_dir`` anchors relative paths (``lock_dir``, ``sim:`` state directories): the rack
    file's own directory, so that a rack means the same thing from any working directory.
    """
    data = dict(data)
    boards = data.get("boards")
    if isinstance(boards, list):
        built: list[Board] = []
        first_index: dict[str, int] = {}
        for index, table in enumerate(boards):
            where = f"{source}: {_board_label(index, table)}"
            try:
                board = from_table(Board, _anchor_sim_port(table, base_dir))
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


def _anchor_sim_port(table: object, base_dir: Path | None) -> object:
    if not isinstance(table, Mapping) or base_dir is None:
        return table
    port = table.get("port")
    if not isinstance(port, str) or not port.startswith("sim:"):
        return table
    state_dir = Path(port[len("sim:") :]).expanduser()
    if not port[len("sim:") :] or state_dir.is_absolute():
        return table
    return {**table, "port": f"sim:{base_dir / state_dir}"}


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
    return rack_from_data(data, source=str(path), base_dir=path.resolve().parent)
