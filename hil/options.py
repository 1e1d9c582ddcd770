"""The plugin's options, declared once (flag and ini key share name, help and default), and
their parsing into settings: a bad value is a one-line usage error at start, naming the option.

Numbers (seconds, boards, baud rates) are checked by ``hil.sim.inputs``, the same checks as
``hil sim``'s options: a value one of them refuses, the other refuses too, with the same words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.harness import RESET_MODES, RESET_SCOPES, SPREADS, Settings
from hil.rack import SdSlot
from hil.rack._validate import InvalidField
from hil.sim import inputs


@dataclass(frozen=True)
class Option:
    """One option: the ini key is ``name``; the flag is ``--hil-<name with dashes>``."""

    name: str
    help: str
    default: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS = (
    Option("hil_rack", "rack file (TOML) of the boards to lease"),
    Option("hil_port", "one bench board: a device path, pyserial URL, or 'auto'"),
    Option(
        "hil_labgrid",
        "lease boards as places of this labgrid coordinator (HOST:PORT; use $LG_COORDINATOR "
        "to take labgrid's own), set up with `hil lab places`",
    ),
    Option(
        "hil_board_name",
        "a stable id for the bench board (default: from its unique id, else from its port)",
    ),
    Option(
        "hil_sd",
        "the bench board's SD card, where its probe cannot find it: DRIVER[:SLOT] "
        "(machine.SDCard:2, pyb.SDCard) or sdcard-spi:SPI:CS, or 'none'",
    ),
    Option("hil_sim", "number of virtual boards (default when no rack/port: one per worker)"),
    Option(
        "hil_sim_kind",
        "kind of the run's virtual boards: unix (MicroPython's unix port, the default) or "
        "microbit (MicroPython 1.9.2 for the BBC micro:bit, in QEMU)",
        "unix",
    ),
    Option(
        "hil_spread",
        "group: run each test once per group of equivalent boards, on whichever is free "
        "(the default: more boards, sooner done); board: once on every matching board",
        "group",
    ),
    Option("hil_reset", "reset before each test: soft, hard or none", "soft"),
    Option(
        "hil_reset_scope",
        "how often the board is reset: test (before every test, the default), class or module "
        "(once per class or file: faster, tests of a file share the board's state)",
        "test",
    ),
    Option("hil_sim_baud", "throttle the run's virtual boards to this UART baud rate"),
    Option("hil_lease_timeout", "seconds to wait for a free board", "300"),
    Option("hil_log_dir", "write each test's board transcript into this directory"),
    Option(
        "hil_flash", "flash boards whose firmware is not their pin: auto, always, never", "auto"
    ),
    Option("hil_firmware_manifest", "firmware manifest (TOML) with the pinned images"),
    Option("hil_sim_firmware", "pin the run's virtual boards to this firmware id of the manifest"),
    Option(
        "hil_drivers",
        "modules to import before the rack is read, which register a project's own drivers "
        "(comma-separated)",
    ),
)


def option(config: Any, name: str) -> str | None:
    """The value of an option: the command line, else the ini file, else its default."""
    value = config.getoption(name)
    if value is None:
        value = config.getini(name) or None
    return value


def settings(config: Any) -> Settings:
    """The harness settings; a bad value is a usage error naming the option."""
    reset = option(config, "hil_reset") or "soft"
    if reset not in RESET_MODES:
        raise ConfigError(f"--hil-reset must be one of {', '.join(RESET_MODES)}, not {reset!r}")
    lease_timeout = inputs.seconds(
        option(config, "hil_lease_timeout") or "300", "--hil-lease-timeout", zero=False
    )
    log_dir = option(config, "hil_log_dir")
    scope = option(config, "hil_reset_scope") or "test"
    if scope not in RESET_SCOPES:
        raise ConfigError(
            f"--hil-reset-scope must be one of {', '.join(RESET_SCOPES)}, not {scope!r}"
        )
    spread = option(config, "hil_spread") or "group"
    if spread not in SPREADS:
        raise ConfigError(f"--hil-spread must be one of {', '.join(SPREADS)}, not {spread!r}")
    return Settings(
        reset=reset,
        lease_timeout=lease_timeout,
        log_dir=_writable_dir(log_dir, "--hil-log-dir") if log_dir else None,
        reset_scope=scope,
        spread=spread,
    )


def sim_baud(config: Any) -> int | None:
    """``--hil-sim-baud``: a UART speed in bits per second (as ``hil sim --baud``), or None."""
    text = option(config, "hil_sim_baud")
    return None if text is None else inputs.baud(text, "--hil-sim-baud")


def sim_count(config: Any) -> int:
    """How many virtual boards the run starts: ``--hil-sim``, else one per xdist worker."""
    given = option(config, "hil_sim")
    if given:
        return inputs.count(given, "--hil-sim")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: its options were reset, its input was not
        return max(1, int(workerinput.get("workercount", 1)))
    return max(1, int(getattr(config.option, "numprocesses", None) or 1))


def driver_modules(config: Any) -> list[str]:
    """The modules ``hil_drivers`` names."""
    text = option(config, "hil_drivers") or ""
    return [name for name in text.replace(",", " ").split() if name]


def sd_slot(text: str | None) -> SdSlot | bool | None:
    """``--hil-sd``: an SD slot, ``False`` for 'none' (no card, do not probe), None when unset.

    Forms: ``machine.SDCard`` (its default slot), ``machine.SDCard:2``, ``pyb.SDCard``,
    ``sdcard-spi:SPI:CS`` (micropython-lib's driver on SPI bus ``SPI``, chip select ``CS``).
    """
    if text is None:
        return None
    if text.strip().lower() == "none":
        return False
    driver, _, rest = text.strip().partition(":")
    parts = [part for part in rest.split(":") if part] if rest else []
    try:
        if driver == "sdcard-spi":
            if len(parts) != 2:
                raise InvalidField("sd", "sdcard-spi needs SPI:CS, e.g. sdcard-spi:1:5")
            return SdSlot(driver=driver, spi=_number(parts[0]), pins={"cs": _number(parts[1])})  # type: ignore[arg-type]
        if len(parts) > 1:
            raise InvalidField("sd", f"{driver} takes at most a slot, e.g. {driver}:2")
        return SdSlot(driver=driver, slot=_number(parts[0]) if parts else None)  # type: ignore[arg-type]
    except InvalidField as error:
        raise ConfigError(f"--hil-sd {text!r}: {error.problem}") from None


def _number(text: str) -> int | str:
    """A slot, bus or pin: a number where it is one, else a pin name (``X5``)."""
    return int(text) if text.isdigit() else text


def _writable_dir(text: str, flag: str) -> Path:
    """A directory the run will write into, made now: one that cannot be is a usage error at
    start, not an internal error when the first transcript is written."""
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"{flag}: cannot create the directory: {e.strerror or e}", where=text
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag}: the directory is not writable", where=text)
    return path
