"""A project's own drivers, end to end: the "done when" of issue 15.

A test package of a project (written to ``tmp_path``) defines a power driver ``lab-power`` and a
flasher ``lab-flasher`` that mpy-hil has never heard of, registers them (from its
``conftest.py``, from a module the ``hil_drivers`` ini option names, or from an installed
package's ``mpy_hil.drivers`` entry point), and names them in its
rack file for a running virtual board pinned to a firmware of its manifest. pytest runs that
package as a user would, in a subprocess: the session flashes the board through ``lab-flasher``;
the first test hangs the board, the soft reset of its rack entry cannot wake it, so the harness
power-cycles it through ``lab-power``; the second test then finds it answering. Both drivers
record each call in a file, which is how we know they ran.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from hil.sim import SimBoard

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
FIRMWARE_ID = "virtual-v1.29.0-hil.2"

#: The project's drivers: a power switch and a programmer (both reach the virtual board the way
#: a lab's relay and programming cable reach a real one; the flasher delegates the writing).
LAB_DRIVERS = '''
"""A lab's own drivers, known to mpy-hil by name only."""

import json
from dataclasses import dataclass
from pathlib import Path

from hil.drivers import PowerDriver, register
from hil.flash.base import Flasher, no_progress, register_flasher
from hil.sim.control import SimControl
from hil.sim.flasher import SimFlasher, SimFlasherOptions


def record(log, **event):
    with open(log, "a") as f:
        f.write(json.dumps(event) + "\\n")


@dataclass(frozen=True)
class LabPowerOptions:
    log: Path
    switch: Path  # the switch's address: here, the virtual board's directory


class LabPower(PowerDriver):
    name = "lab-power"
    options_type = LabPowerOptions

    def cycle(self, link, *, timeout):
        record(self.options.log, driver=self.name, board=self.entry.id)
        switch = SimControl(self.options.switch)
        switch.power(False)
        switch.power(True)
        if link is not None:
            link.repl.reconnect(timeout)


@dataclass(frozen=True)
class LabFlasherOptions:
    log: Path


@register_flasher
class LabFlasher(Flasher):
    name = "lab-flasher"
    options_type = LabFlasherOptions
    image_suffixes = (".img",)

    def flash(self, image, progress=no_progress):
        record(self.options.log, driver=self.name, board=self.board, image=image.name)
        SimFlasher(SimFlasherOptions(), self.target).flash(image, progress)


register("power", "lab-power", LabPower)
'''

#: The project's tests: the first hangs its board, the second needs it back.
TESTS = """
from hil.sim.control import SimControl

BOARD_DIR = {board_dir!r}


def test_1_hangs_the_board(board):
    board.exec("hil_marker = 1")
    assert board.eval("__import__('os').uname().version") == {version!r}
    SimControl(BOARD_DIR).fault("hang")


def test_2_the_board_is_back(board):
    assert board.eval("6 * 7") == 42
    assert board.eval("'hil_marker' in globals()") is False
"""


def manifest_entry() -> dict[str, str]:
    with (REPO / "firmware" / "manifest.toml").open("rb") as f:
        return tomllib.load(f)["firmware"][FIRMWARE_ID]


def write_project(root: Path, vb: SimBoard, *, register_from: str) -> dict[str, Path]:
    """The project's test package; returns where its drivers record their calls."""
    root.mkdir()
    logs = {"power": root / "power.jsonl", "flash": root / "flash.jsonl"}
    (root / "pytest.ini").write_text("[pytest]\n")  # this package is the rootdir
    if register_from == "conftest":
        (root / "conftest.py").write_text(textwrap.dedent(LAB_DRIVERS))
    elif register_from == "hil_drivers":
        (root / "lab_drivers.py").write_text(textwrap.dedent(LAB_DRIVERS))
    else:  # an installed package of the lab's, outside the test package, with an entry point
        site = root.parent / "site"
        site.mkdir()
        (site / "lab_drivers.py").write_text(textwrap.dedent(LAB_DRIVERS))
        info = site / "lab_drivers-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-drivers\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text("[mpy_hil.drivers]\nlab = lab_drivers\n")
    entry = manifest_entry()
    image = REPO / "firmware" / entry["image"]
    (root / "firmware").mkdir()
    shutil.copy(image, root / "firmware" / image.name)
    (root / "firmware" / "manifest.toml").write_text(
        textwrap.dedent(
            f"""\
            [firmware."{FIRMWARE_ID}"]
            platform = "{entry["platform"]}"
            image = "{image.name}"
            sha256 = "{entry["sha256"]}"
            version = "{entry["version"]}"
            """
        )
    )
    (root / "rack.toml").write_text(
        textwrap.dedent(
            f"""\
            lock_dir = "{root / "locks"}"

            [[boards]]
            id = "{vb.name}"
            port = "sim:{vb.directory}"
            platform = "unix"
            reset = "soft"
            power = {{name = "lab-power", options = {{log = "{logs["power"]}", \
switch = "{vb.directory}"}}}}
            firmware = "{FIRMWARE_ID}"

            [boards.flasher]
            name = "lab-flasher"
            options = {{log = "{logs["flash"]}"}}
            """
        )
    )
    (root / "test_lab.py").write_text(
        textwrap.dedent(TESTS).format(board_dir=str(vb.directory), version=entry["version"])
    )
    return logs


def events(log: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_project(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(root),
            "--hil-rack",
            str(root / "rack.toml"),
            "--hil-firmware-manifest",
            str(root / "firmware" / "manifest.toml"),
            "--hil-flash",
            "always",
            "--hil-log-dir",
            str(root / "logs"),
            "-p",
            "no:cacheprovider",
            "-rA",
            *args,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("register_from", ["conftest", "hil_drivers", "entry_point"])
def test_a_project_power_driver_and_flasher_named_in_its_rack_are_used(
    tmp_path: Path, start_virtual_boards: Callable[..., list[SimBoard]], register_from: str
) -> None:
    vb = start_virtual_boards(1)[0]
    root = tmp_path / "project"
    logs = write_project(root, vb, register_from=register_from)
    flashes_before = vb.control.status()["flashes"]
    args: tuple[str, ...] = ()
    env: dict[str, str] = {}
    if register_from == "hil_drivers":
        args = ("-o", "hil_drivers=lab_drivers")
    elif register_from == "entry_point":
        env = {"PYTHONPATH": str(tmp_path / "site")}

    done = run_project(root, *args, env=env)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "2 passed" in output
    assert "PASSED test_lab.py::test_2_the_board_is_back[unix]" in output
    # the session flashed the board through the project's flasher, once
    assert events(logs["flash"]) == [
        {"driver": "lab-flasher", "board": "vb0", "image": f"{FIRMWARE_ID}.img"}
    ]
    status = vb.control.status()
    assert status["flashes"] == flashes_before + 1
    # the hung board was power-cycled through the project's power driver, once
    assert events(logs["power"]) == [{"driver": "lab-power", "board": "vb0"}]
    transcript = (root / "logs" / "test_lab.py_test_1_hangs_the_board_unix.txt").read_text()
    assert transcript.index("recovery: hard reset") < transcript.index("recovery: power cycle")
    assert "quarantined" not in output


def test_a_rack_naming_an_unregistered_project_driver_is_a_usage_error(
    tmp_path: Path, start_virtual_boards: Callable[..., list[SimBoard]]
) -> None:
    # the same package without its drivers: the rack names what nobody registered
    vb = start_virtual_boards(1)[0]
    root = tmp_path / "project"
    logs = write_project(root, vb, register_from="hil_drivers")

    done = run_project(root, env={})

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert (
        f"{root / 'rack.toml'}: board 'vb0': field 'power': unknown power driver 'lab-power'"
        in (output)
    )
    assert "Traceback" not in output
    assert events(logs["flash"]) == [] and events(logs["power"]) == []


def test_a_driver_module_that_cannot_be_imported_is_a_usage_error(
    tmp_path: Path, start_virtual_boards: Callable[..., list[SimBoard]]
) -> None:
    vb = start_virtual_boards(1)[0]
    root = tmp_path / "project"
    write_project(root, vb, register_from="hil_drivers")

    done = run_project(root, "-o", "hil_drivers=lab_drivers,lab_relays", env={})

    output = done.stdout + done.stderr
    assert done.returncode == 4, output  # pytest's usage error
    assert "hil_drivers: cannot import driver module 'lab_relays': No module named" in output
    assert "Traceback" not in output
