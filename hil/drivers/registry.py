"""The one registry of drivers: port resolvers, reset, power and flashers, each by name.

Why a registry rather than lists of names: a rack entry names the means its lab has
(``reset = "dtr-rts"``, ``power = {name = "relay", options = {channel = 3}}``, a flasher, a
``usb-serial:`` port), and a project brings means we never heard of. So a name is looked up here,
where the built-in drivers, the virtual boards' drivers and a project's own drivers are registered
alike: by :func:`register` (a ``conftest.py`` or plugin can call it), by an entry point in the
group ``mpy_hil.drivers`` (a module that registers on import, or a callable given the registry),
or by the ``hil_drivers`` ini option that names modules to import.

A driver is registered as a class or as ``"module:Class"``, imported when first used: naming
esptool in a rack must not import esptool when the rack is only validated.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Callable
from typing import Any, Literal

from hil.errors import ConfigError

Role = Literal["port", "reset", "power", "flasher"]
ROLES: tuple[Role, ...] = ("port", "reset", "power", "flasher")

#: The entry point group through which installed packages add drivers.
ENTRY_POINT_GROUP = "mpy_hil.drivers"

#: What each role is called in messages.
_ROLE_WORDS = {
    "port": "port scheme",
    "reset": "reset driver",
    "power": "power driver",
    "flasher": "flasher",
}

_lock = threading.Lock()
#: Held while the entry points load: another thread (``hil rack check`` asks boards at once)
#: waits for the whole registry rather than seeing half of it; reentrant, since a project's
#: module may ask the registry while it is imported.
_loading = threading.RLock()
_drivers: dict[Role, dict[str, type | str]] = {role: {} for role in ROLES}
_entry_points_loaded = False
#: What and where of the entry point that failed to load, once one did.
_entry_point_error: tuple[str, str] | None = None


def register(role: Role, name: str, driver: type | str) -> None:
    """Make ``driver`` (a class, or ``"module:Class"`` imported on first use) available as
    ``name`` for ``role``. Registering a name again replaces it: a project may override a
    built-in on purpose."""
    if role not in ROLES:
        raise ValueError(f"unknown driver role {role!r} (roles: {', '.join(ROLES)})")
    if not name or not isinstance(name, str):
        raise ValueError(f"a driver needs a name, got {name!r}")
    with _lock:
        _drivers[role][name] = driver


def names(role: Role) -> list[str]:
    """Every name a rack may use for ``role``, sorted."""
    _load_entry_points()
    return sorted(_drivers[role])


def known(role: Role, name: str) -> bool:
    """Whether ``name`` is registered for ``role`` (without importing the driver)."""
    if name not in _drivers[role]:
        _load_entry_points()
    return name in _drivers[role]


def lookup(role: Role, name: str, *, where: str = "") -> type:
    """The driver class registered as ``name``; :class:`ConfigError` naming the known ones."""
    if not known(role, name):
        raise ConfigError(unknown_message(role, name), where=where)
    driver = _drivers[role][name]
    if isinstance(driver, str):
        module_name, _, class_name = driver.partition(":")
        try:
            driver = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ConfigError(
                f"{_ROLE_WORDS[role]} {name!r} is registered as {_drivers[role][name]!r}, "
                f"which cannot be imported: {error}",
                where=where,
            ) from None
        with _lock:
            _drivers[role][name] = driver
    return driver


def unknown_message(role: Role, name: str) -> str:
    """``unknown power driver 'x' (known: a, b)``: one line for a usage error."""
    return f"unknown {_ROLE_WORDS[role]} {name!r} (known: {', '.join(names(role)) or 'none'})"


def import_modules(modules: list[str], *, where: str = "hil_drivers") -> None:
    """Import the modules a project names (``hil_drivers`` ini option); they register on import."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ConfigError(
                f"cannot import driver module {module!r}: {error}", where=where
            ) from None


def _load_entry_points() -> None:
    """Load the ``mpy_hil.drivers`` entry points once per process.

    An entry point that fails (its module raises on import, its hook raises when called) is the
    installed project's mistake, not ours and not a board's: a one-line :class:`ConfigError`
    naming the entry point and its distribution, raised again to every later question, since a
    registry without that project's drivers is not the one its rack was written for.
    """
    global _entry_points_loaded, _entry_point_error
    with _loading:
        if not _entry_points_loaded:
            _entry_points_loaded = True
            for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                stage = "importing it"
                try:
                    loaded: Any = entry_point.load()
                    if callable(loaded) and not isinstance(loaded, type):
                        stage = "calling its hook"
                        hook: Callable[[Callable[..., None]], None] = loaded
                        hook(register)
                except Exception as error:
                    _entry_point_error = _broken_entry_point(entry_point, stage, error)
                    break
    if _entry_point_error is not None:
        what, where = _entry_point_error
        raise ConfigError(what, where=where)


def _broken_entry_point(
    entry_point: importlib.metadata.EntryPoint, stage: str, error: Exception
) -> tuple[str, str]:
    """What and where of a failed entry point: its group, name and value, its distribution
    (what to fix or uninstall), what failed and the exception, all on one line."""
    dist = getattr(entry_point, "dist", None)
    where = f"{dist.name} {dist.version}" if dist is not None else "an installed distribution"
    cause = " | ".join(line.strip() for line in str(error).splitlines() if line.strip())
    what = (
        f"{ENTRY_POINT_GROUP} entry point '{entry_point.name} = {entry_point.value}' failed: "
        f"{stage} raised {type(error).__name__}" + (f": {cause}" if cause else "")
    )
    return what, where
