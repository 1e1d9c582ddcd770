"""The virtual boards' state directory is private: another local user cannot make ``hil sim
start`` write through a link they planted, nor read the boards' state.

The attacker is played by real files: as root, this test hands a directory to another uid
(``nobody``), as that user would have created it under the shared temp directory.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import hil.sim
from hil.errors import ConfigError
from hil.private_dir import private_dir, write_private

HIL = [sys.executable, "-m", "hil.cli", "sim"]
OTHER_UID = 65534  # nobody

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


def start_default(temp: Path, *args: str) -> subprocess.CompletedProcess:
    """``hil sim start`` with the default state directory, under ``temp`` as the temp dir."""
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "HIL_SIM_DIR")}
    env["TMPDIR"] = str(temp)
    return subprocess.run(
        [*HIL, "start", *args], capture_output=True, text=True, timeout=90, env=env
    )


@pytest.fixture
def temp(tmp_path: Path):
    """A temp directory of the test's own; a server started in it (its default state directory
    or ``own``) is stopped afterwards, pass or fail."""
    top = tmp_path / "tmp"
    top.mkdir()
    yield top
    for state in (top / f"mpy-hil-sim-{os.getuid()}", top / "own"):
        hil.sim.stop(state)


def planted(state: Path, victim: Path) -> None:
    """What an attacker leaves: a board directory whose files link to the victim's file."""
    (state / "vb0").mkdir(parents=True)
    for name in ("board.json", "counters.json", "flash.img", "firmware.bin"):
        (state / "vb0" / name).symlink_to(victim)
    (state / "server.log").symlink_to(victim)


@as_root
def test_state_dir_of_another_user_is_refused_and_the_victim_file_untouched(
    temp: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    state = temp / f"mpy-hil-sim-{os.getuid()}"
    state.mkdir(mode=0o777)
    planted(state, victim)
    for path in (state, state / "vb0"):
        os.chown(path, OTHER_UID, OTHER_UID)
    os.chmod(state, 0o777)
    done = start_default(temp)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert str(state) in line and f"uid {OTHER_UID}" in line and line.endswith("[usage fault]")
    assert victim.read_text() == "precious"
    assert hil.sim.running_pid(state) is None


def test_own_state_dir_writable_by_others_is_refused(temp: Path) -> None:
    state = temp / f"mpy-hil-sim-{os.getuid()}"
    state.mkdir()
    os.chmod(state, 0o777)
    done = start_default(temp)
    assert done.returncode == 2
    assert "writable by others" in done.stderr and str(state) in done.stderr
    assert list(state.iterdir()) == []


def test_state_dir_that_is_a_link_is_refused(temp: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (temp / f"mpy-hil-sim-{os.getuid()}").symlink_to(elsewhere)
    done = start_default(temp)
    assert done.returncode == 2 and "symbolic link" in done.stderr
    assert list(elsewhere.iterdir()) == []


def test_default_state_dir_is_created_private(temp: Path) -> None:
    done = start_default(temp)
    assert done.returncode == 0, done.stderr
    state = temp / f"mpy-hil-sim-{os.getuid()}"
    modes = {
        str(p.relative_to(state)): stat.S_IMODE(p.lstat().st_mode)
        for p in [state, *state.rglob("*")]
        if not p.is_symlink() and not p.is_socket()
    }
    assert modes["."] == 0o700 and modes["vb0"] == 0o700
    loose = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert loose == {}  # nothing in it readable or writable by anyone else


def test_links_in_the_board_directory_are_replaced_not_followed(temp: Path, tmp_path: Path) -> None:
    """Even in a directory of one's own, state is never written through a link."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    state = private_dir(temp / "own")
    (state / "vb0").mkdir(mode=0o700)
    for name in ("board.json", "counters.json"):
        (state / "vb0" / name).symlink_to(victim)
    run = hil.sim.start(state, 1)
    try:
        assert not (state / "vb0" / "board.json").is_symlink()
        assert '"name": "vb0"' in (state / "vb0" / "board.json").read_text()
    finally:
        run.stop()
    assert victim.read_text() == "precious"


def test_log_that_is_a_link_is_refused_not_followed(temp: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    state = private_dir(temp / "own")
    (state / "server.out").symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link is never followed"):
        hil.sim.start(state, 1)
    assert victim.read_text() == "precious"


def test_write_private_replaces_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "state.json"
    target.symlink_to(victim)
    write_private(target, "{}")
    assert not target.is_symlink() and target.read_text() == "{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert victim.read_text() == "precious"
