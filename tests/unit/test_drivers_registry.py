"""The registry of drivers: names, lazy imports, entry points of installed packages, and the
one-line errors a rack gets for an unknown driver or a bad option.

Every test works on a copy of the registry (``registry`` fixture), so a driver registered here
never leaks into another test; entry points come from a real distribution written to a
temporary directory on ``sys.path``, found by ``importlib.metadata`` as an installed one is.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from hil import drivers, recovery
from hil.drivers import registry as registry_module
from hil.errors import ConfigError
from hil.flash.base import FlashTarget, create_flasher, flasher_names, register_flasher
from hil.rack import Board, DriverRef, rack_from_data
from hil.sim.flasher import SimFlasher

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The registry module, its table replaced by a copy for this test only.

    The installed entry points are loaded into the real table first: a test that loads them
    again must not be the first to import ``hil.sim.drivers`` (its registrations would land in
    the copy and be lost for the rest of the process).
    """
    drivers.names("port")
    copy = {role: dict(table) for role, table in registry_module._drivers.items()}
    monkeypatch.setattr(registry_module, "_drivers", copy)
    yield registry_module


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path`` for the test's own modules; they are unimported afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("hiltest_"):
            del sys.modules[name]


def write_module(root: Path, name: str, text: str) -> None:
    (root / f"{name}.py").write_text(textwrap.dedent(text))


@dataclasses.dataclass(frozen=True)
class RelayOptions:
    """Options of a lab's relay board: which channel, how long it stays off."""

    channel: int
    off_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.channel <= 8:
            raise ValueError("channel must be 1 to 8")


class RelayPower(drivers.PowerDriver):
    """A project's power driver (its cycle is never called here: only its options matter)."""

    name = "relay"
    options_type = RelayOptions

    def cycle(self, link: object, *, timeout: float) -> None:  # pragma: no cover - not used
        raise AssertionError("not called in these tests")


def entry(**fields: object) -> Board:
    return Board(**{"id": "bench-1", "port": "/dev/ttyUSB0", "platform": "esp32", **fields})


# --- registration -------------------------------------------------------------------------------


def test_a_registered_class_is_found_by_role_and_name(registry: ModuleType) -> None:
    drivers.register("power", "relay", RelayPower)

    assert drivers.known("power", "relay")
    assert not drivers.known("reset", "relay")  # names are per role
    assert drivers.lookup("power", "relay") is RelayPower
    assert "relay" in drivers.names("power")
    assert entry(power={"name": "relay", "options": {"channel": 3}}).power == DriverRef(
        "relay", {"channel": 3}
    )


def test_registering_a_name_again_replaces_it(registry: ModuleType) -> None:
    class MyCommandPower(RelayPower):
        name = "command"

    drivers.register("power", "command", MyCommandPower)

    assert drivers.lookup("power", "command") is MyCommandPower


@pytest.mark.parametrize(
    ("role", "name", "message"),
    [
        ("fuse", "x", "unknown driver role 'fuse' (roles: port, reset, power, flasher)"),
        ("power", "", "a driver needs a name"),
    ],
)
def test_a_bad_role_or_name_is_refused(
    registry: ModuleType, role: str, name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        drivers.register(role, name, RelayPower)  # type: ignore[arg-type]


def test_register_flasher_makes_a_project_flasher_nameable_by_a_rack(registry: ModuleType) -> None:
    @register_flasher
    class LabFlasher(SimFlasher):
        name = "lab-programmer"

    assert "lab-programmer" in flasher_names()
    target = FlashTarget(board="bench-1")
    flasher = create_flasher("lab-programmer", {"erase": True}, target, where="bench-1")
    assert isinstance(flasher, LabFlasher)
    assert flasher.options.erase is True
    assert entry(flasher={"name": "lab-programmer"}).flasher == DriverRef("lab-programmer")


# --- lazy "module:Class" ------------------------------------------------------------------------


def test_a_driver_named_by_module_is_imported_on_first_lookup_only(
    registry: ModuleType, modules: Path
) -> None:
    write_module(
        modules,
        "hiltest_lazy_reset",
        """
        from hil.drivers import ResetDriver

        class PinReset(ResetDriver):
            name = "pin"

            def reset(self, link, *, timeout):
                raise AssertionError("not called")
        """,
    )
    drivers.register("reset", "pin", "hiltest_lazy_reset:PinReset")

    # registering it imports nothing; a rack that names it imports it, to check its options
    assert "hiltest_lazy_reset" not in sys.modules
    board = entry(reset="pin")
    assert board.reset == DriverRef("pin")

    cls = drivers.lookup("reset", "pin")

    assert cls is sys.modules["hiltest_lazy_reset"].PinReset
    assert registry._drivers["reset"]["pin"] is cls  # imported once, then kept as the class


def test_built_in_drivers_are_registered_by_module_until_used(registry: ModuleType) -> None:
    # hil.drivers imports no driver module; a rack naming one imports it (not esptool itself)
    assert registry._drivers["flasher"]["esptool"] == "hil.flash.esptool_flasher:EsptoolFlasher"
    board = entry(flasher={"name": "esptool", "options": {"chip": "esp32"}})
    assert board.flasher == DriverRef("esptool", {"chip": "esp32"})
    assert not isinstance(registry._drivers["flasher"]["esptool"], str)


@pytest.mark.parametrize(
    ("target", "cause"),
    [
        ("hiltest_no_such_module:Relay", "No module named 'hiltest_no_such_module'"),
        ("hiltest_lazy_empty:Relay", "has no attribute 'Relay'"),
    ],
)
def test_a_driver_that_cannot_be_imported_is_a_config_error_naming_it(
    registry: ModuleType, modules: Path, target: str, cause: str
) -> None:
    write_module(modules, "hiltest_lazy_empty", "'''No driver here.'''\n")
    drivers.register("power", "relay", target)

    with pytest.raises(ConfigError) as info:
        drivers.lookup("power", "relay", where="bench-1: power relay")

    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bench-1: power relay: power driver 'relay' is registered as ")
    assert repr(target) in message
    assert cause in message


# --- unknown names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "words"),
    [
        ("port", "unknown port scheme 'serial-mux' (known: "),
        ("reset", "unknown reset driver 'serial-mux' (known: "),
        ("power", "unknown power driver 'serial-mux' (known: "),
        ("flasher", "unknown flasher 'serial-mux' (known: "),
    ],
)
def test_an_unknown_name_lists_the_known_ones(
    registry: ModuleType, role: drivers.Role, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        drivers.lookup(role, "serial-mux", where="rack.toml")

    message = str(info.value)
    known = ", ".join(drivers.names(role))
    assert f"rack.toml: {words}{known})" in message
    assert "\n" not in message


def test_an_unknown_driver_in_a_rack_file_is_one_line_naming_file_board_and_field(
    registry: ModuleType,
) -> None:
    drivers.register("power", "relay", RelayPower)
    data = {
        "boards": [{"id": "esp-1", "port": "/dev/ttyUSB0", "platform": "esp32", "power": "rellay"}]
    }

    with pytest.raises(ConfigError) as info:
        rack_from_data(data, source="rack.toml")

    assert str(info.value).startswith(
        "rack.toml: board 'esp-1': field 'power': unknown power driver 'rellay' "
        "(known: command, labgrid, relay, sim)"
    )


# --- entry points -------------------------------------------------------------------------------


def write_distribution(root: Path, entry_points: str) -> Path:
    """A real installed distribution (``*.dist-info`` with METADATA and entry points)."""
    info = root / "hiltest_lab_drivers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hiltest-lab-drivers\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return info


def forget_entry_points(registry: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the next question load the entry points again (undone after the test)."""
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_entry_point_error", None)


@pytest.fixture
def lab_distribution(registry: ModuleType, modules: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed package with two driver entry points: a module and a hook."""
    write_module(
        modules,
        "hiltest_ep_module",
        """
        from hil.drivers import PowerDriver, register

        class RelayPower(PowerDriver):
            name = "relay"

            def cycle(self, link, *, timeout):
                raise AssertionError("not called")

        register("power", "relay", RelayPower)
        """,
    )
    write_module(
        modules,
        "hiltest_ep_hook",
        """
        def add(register):
            register("reset", "pin", "hiltest_ep_hook_impl:PinReset")
        """,
    )
    write_distribution(
        modules,
        """
        [mpy_hil.drivers]
        relay = hiltest_ep_module
        pins = hiltest_ep_hook:add
        """,
    )
    forget_entry_points(registry, monkeypatch)
    return modules


def test_entry_points_register_by_module_import_and_by_hook(lab_distribution: Path) -> None:
    assert drivers.known("power", "relay")
    assert drivers.known("reset", "pin")
    # the hook registered by "module:Class": nothing of it was imported
    assert "hiltest_ep_hook_impl" not in sys.modules
    assert drivers.lookup("power", "relay") is sys.modules["hiltest_ep_module"].RelayPower
    # the installed mpy-hil's own entry point is among them
    assert drivers.known("port", "sim")


#: Project plugins that fail: a module that raises on import, a hook that raises when called.
BROKEN_PLUGINS = {
    "import": (
        "hiltest_ep_broken",
        "raise RuntimeError('lab driver needs its relay')\n",
        "failed: importing it raised RuntimeError: lab driver needs its relay",
    ),
    "hook": (
        "hiltest_ep_broken:add",
        "def add(register):\n    register('power', 'relay', 'x:Y')\n    raise KeyError('relay')\n",
        "failed: calling its hook raised KeyError: 'relay'",
    ),
}


@pytest.fixture(params=sorted(BROKEN_PLUGINS))
def broken_distribution(
    request: pytest.FixtureRequest,
    registry: ModuleType,
    modules: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, str]:
    """An installed package whose ``broken`` entry point fails; (its value, the failure)."""
    value, source, failure = BROKEN_PLUGINS[request.param]
    write_module(modules, "hiltest_ep_broken", source)
    write_distribution(modules, f"[mpy_hil.drivers]\nbroken = {value}\n")
    forget_entry_points(registry, monkeypatch)
    return value, failure


def test_a_broken_project_plugin_is_one_usage_line_naming_entry_point_and_distribution(
    broken_distribution: tuple[str, str],
) -> None:
    value, failure = broken_distribution

    with pytest.raises(ConfigError) as info:
        drivers.names("power")

    message = str(info.value)
    assert message == (
        f"hiltest-lab-drivers 1.0: mpy_hil.drivers entry point 'broken = {value}' {failure} "
        "[usage fault]"
    )
    assert info.value.fault == "usage"
    assert info.value.__cause__ is None and info.value.__context__ is None  # no chain to print
    # every later question gets the same answer, not a registry missing the project's drivers
    with pytest.raises(ConfigError, match="entry point 'broken = "):
        drivers.names("reset")


def test_a_broken_project_plugin_stops_a_rack_naming_its_driver_in_one_line(
    broken_distribution: tuple[str, str],
) -> None:
    data = {"boards": [{"id": "b1", "port": "/dev/ttyUSB0", "platform": "esp32", "power": "relay"}]}

    with pytest.raises(ConfigError) as info:
        rack_from_data(data, source="rack.toml")

    assert "hiltest-lab-drivers 1.0: mpy_hil.drivers entry point 'broken = " in str(info.value)
    assert "\n" not in str(info.value)


def test_a_broken_project_plugin_ends_a_pytest_run_with_one_line_not_a_traceback(
    broken_distribution: tuple[str, str], modules: Path, tmp_path: Path
) -> None:
    """As a user meets it: pytest with a rack that names a driver of the broken package."""
    value, failure = broken_distribution
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "rack.toml").write_text(
        '[[boards]]\nid = "b1"\nport = "/dev/ttyUSB0"\nplatform = "esp32"\npower = "relay"\n'
    )
    (project / "test_x.py").write_text("def test_x(board):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(modules), str(REPO)])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--hil-rack", "rack.toml"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors == [
        f"ERROR: hiltest-lab-drivers 1.0: mpy_hil.drivers entry point 'broken = {value}' "
        f"{failure} [usage fault]"
    ], done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_entry_points_are_loaded_once_per_process(
    lab_distribution: Path, registry: ModuleType
) -> None:
    drivers.names("power")
    del registry._drivers["power"]["relay"]

    # a second question does not load them again (the module is not imported twice either)
    assert not drivers.known("power", "relay")


def test_an_unknown_name_loads_entry_points_before_saying_so(
    lab_distribution: Path, registry: ModuleType
) -> None:
    # the first question about any name loads the entry points: a rack naming "relay" from an
    # installed package must validate even when nothing asked the registry before
    assert registry._entry_points_loaded is False
    assert entry(power="relay").power == DriverRef("relay")
    assert registry._entry_points_loaded is True


# --- options ------------------------------------------------------------------------------------


def option_error(role: drivers.Role, value: object) -> str:
    """The error of a board whose ``role`` driver has bad options: raised when the entry is
    built (the rack is loaded), not later when the driver is needed."""
    with pytest.raises(ConfigError) as info:
        entry(**{role: value})
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"chanel": 3},
            "field 'power.options': relay: unknown option 'chanel' (allowed: channel, ",
        ),
        ({"channel": "3"}, "field 'power.options': relay.channel: must be int, not str"),
        ({"channel": True}, "field 'power.options': relay.channel: must be an integer, not bool"),
        ({"channel": 9}, "field 'power.options': relay: channel must be 1 to 8"),
        ({}, "field 'power.options': relay: missing required option 'channel'"),
        (
            {"channel": 2, "off_seconds": "long"},
            "field 'power.options': relay.off_seconds: must be a number, not str",
        ),
    ],
)
def test_a_bad_option_is_one_line_naming_board_role_and_option(
    registry: ModuleType, options: dict, expected: str
) -> None:
    drivers.register("power", "relay", RelayPower)

    assert option_error("power", {"name": "relay", "options": options}).startswith(expected)


def test_good_options_reach_the_driver_as_their_dataclass(registry: ModuleType) -> None:
    drivers.register("power", "relay", RelayPower)
    board = entry(power={"name": "relay", "options": {"channel": 3, "off_seconds": 2}})

    driver = recovery.build("power", board.power, board)

    assert driver.entry is board
    assert driver.options == RelayOptions(channel=3, off_seconds=2.0)


@pytest.mark.parametrize(
    ("role", "value", "expected"),
    [
        (
            "reset",
            {"name": "dtr-rts", "options": {"hold": 9}},
            "field 'reset.options': dtr-rts: hold must be between 0 and 5 seconds",
        ),
        (
            "reset",
            {"name": "dtr-rts", "options": {"hodl": 0.2}},
            "field 'reset.options': dtr-rts: unknown option 'hodl' (allowed: hold)",
        ),
        (
            "power",
            {"name": "command", "options": {"argv": ["uhubctl"], "timeout": 0}},
            "field 'power.options': command: timeout must be a positive number of seconds",
        ),
        (
            "reset",
            {"name": "command", "options": {"argv": "uhubctl -a cycle"}},
            "field 'reset.options': command.argv: must be a list, not str",
        ),
        (
            "reset",
            {"name": "soft", "options": {"hold": 1}},
            "field 'reset.options': soft: takes no options, got 'hold'",
        ),
    ],
)
def test_built_in_drivers_check_their_options_the_same_way(
    registry: ModuleType, role: drivers.Role, value: dict, expected: str
) -> None:
    assert option_error(role, value).startswith(expected)


def test_a_flasher_option_error_names_board_and_option(registry: ModuleType) -> None:
    with pytest.raises(ConfigError) as info:
        create_flasher("sim", {"eraes": True}, FlashTarget(board="bench-1"), where="bench-1")

    message = str(info.value)
    assert message.startswith("bench-1: unknown option 'eraes' (allowed: board_dir, erase, ")
    assert "\n" not in message


def test_a_misspelt_driver_option_fails_when_the_rack_is_loaded(registry: ModuleType) -> None:
    data = {
        "boards": [
            {
                "id": "esp-1",
                "port": "/dev/ttyUSB0",
                "platform": "esp32",
                "reset": {"name": "dtr-rts", "options": {"hodl": 0.2}},
            }
        ]
    }

    with pytest.raises(ConfigError, match="unknown option 'hodl'"):
        rack_from_data(data, source="rack.toml")
