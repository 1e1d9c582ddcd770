"""The HIL suite's claims can fail: break a copy of firmware/ so that it violates one claim, run
the suite on it (pytest in a subprocess, on a virtual board it starts itself), and the test of
that claim must fail at its assertion; the same tests pass on an unbroken copy.

Each break is a real violation of what the users' document says, as a buggy firmware module
would commit it, not a change of the tests. On both board kinds: the unix port, and the real
MicroPython 1.9.2 of the micro:bit (where breaks that need ``sys.modules`` cannot be written).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
MODULES = ("config.py", "sdcard_helper.py", "test_simple.py", "expensive_module.py")


def edit(directory: Path, name: str, old: str, new: str) -> None:
    """Replace ``old`` (which must be there: a break that changes nothing proves nothing)."""
    path = directory / name
    text = path.read_text()
    assert old in text, f"{name} no longer contains {old!r}: update this break"
    path.write_text(text.replace(old, new, 1))


def forget_module_after_import(directory: Path) -> None:
    """sdcard_helper drops itself from the module cache: the next import runs its body again."""
    edit(
        directory,
        "sdcard_helper.py",
        "def is_mounted():",
        "import sys\n\ndel sys.modules[__name__]  # BROKEN: never cached\n\n\ndef is_mounted():",
    )


def expensive_module_not_cached(directory: Path) -> None:
    """expensive_module drops itself from the module cache: a second import loads it again."""
    edit(
        directory,
        "expensive_module.py",
        "executions = _count_execution()",
        "executions = _count_execution()\n"
        "import sys\n\ndel sys.modules[__name__]  # BROKEN: never cached",
    )


def bind_into_repl_namespace(directory: Path) -> None:
    """test_simple binds sdcard_helper in ``__main__`` too: the bare name works without import."""
    edit(
        directory,
        "test_simple.py",
        "import sdcard_helper\n",
        "import sdcard_helper\nimport __main__\n\n"
        "__main__.sdcard_helper = sdcard_helper  # BROKEN: leaks into the importer's namespace\n",
    )


def flag_outlives_soft_reset(directory: Path) -> None:
    """sdcard_helper keeps its flag in a file: a fresh import after a soft reset says True."""
    edit(
        directory,
        "sdcard_helper.py",
        "_mounted = False\n",
        "try:  # BROKEN: the flag is restored from flash, so it outlives a soft reset\n"
        "    _mounted = open('sdcard_helper.flag').read() == '1'\n"
        "except OSError:\n"
        "    _mounted = False\n",
    )
    edit(
        directory,
        "sdcard_helper.py",
        "    _mounted = True\n    return True",
        "    _mounted = True\n    with open('sdcard_helper.flag', 'w') as f:\n"
        "        f.write('1')\n    return True",
    )
    edit(
        directory,
        "sdcard_helper.py",
        "        _mounted = False",
        "        _mounted = False\n        os.remove('sdcard_helper.flag')",
    )


#: Board kinds of ``--hil-sim-kind``; the micro:bit firmware has no ``sys.modules``.
KINDS = ("unix", "microbit")


@dataclass(frozen=True)
class Break:
    claim: str
    apply: Callable[[Path], None]
    test: str  # the test of tests/hil that proves the claim (without the board id)
    kinds: tuple[str, ...] = KINDS  # where the firmware can commit this break


BREAKS = (
    Break(
        "a later import is the same object and does not run again",
        forget_module_after_import,
        "test_imports.py::test_later_import_is_the_same_object_and_does_not_run_again",
        kinds=("unix",),
    ),
    Break(
        "a second import does not execute the module again",
        expensive_module_not_cached,
        "test_imports.py::test_second_import_does_not_execute_again",
        kinds=("unix",),
    ),
    Break(
        "the bare name is a NameError until imported",
        bind_into_repl_namespace,
        "test_imports.py::test_bare_name_is_a_name_error_until_imported",
    ),
    Break(
        "a soft reset clears module state",
        flag_outlives_soft_reset,
        "test_imports.py::test_soft_reset_clears_module_state",
    ),
)


def copy_firmware(directory: Path) -> Path:
    directory.mkdir()
    for name in MODULES:
        shutil.copy2(FIRMWARE / name, directory / name)
    return directory


def needs_kind(kind: str) -> None:
    if kind == "microbit":
        from hil.errors import SimError
        from hil.sim.qemu.host import QemuHost

        try:
            QemuHost.preflight()
        except SimError as exc:
            pytest.skip(exc.what)


def run_suite(firmware: Path, kind: str, tests: list[str], junit: Path) -> dict[str, str]:
    """Run the given HIL tests on ``firmware`` on a virtual board of ``kind``; the outcome of
    each test, by its name."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--suite-firmware={firmware}",
            f"--hil-sim-kind={kind}",
            f"--junitxml={junit}",
            *(f"tests/hil/{test}" for test in tests),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert junit.exists(), done.stdout + done.stderr
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        name = case.get("name", "")
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag + ": " + (child.get("message") or "")
        outcomes[name] = outcome
    assert outcomes, done.stdout + done.stderr
    return outcomes


def outcome_of(outcomes: dict[str, str], test: str) -> str:
    function = test.split("::")[-1]
    found = [o for name, o in outcomes.items() if name.split("[")[0] == function]
    assert len(found) == 1, f"{test} ran {len(found)} times: {outcomes}"
    return found[0]


@pytest.mark.parametrize("kind", KINDS)
def test_unbroken_firmware_passes_every_claim_below(tmp_path: Path, kind: str) -> None:
    needs_kind(kind)
    breaks = [b for b in BREAKS if kind in b.kinds]
    firmware = copy_firmware(tmp_path / "firmware")
    outcomes = run_suite(firmware, kind, [b.test for b in breaks], tmp_path / "junit.xml")
    for b in breaks:
        assert outcome_of(outcomes, b.test) == "passed", b.claim


@pytest.mark.parametrize(
    ("kind", "broken"),
    [(kind, b) for kind in KINDS for b in BREAKS if kind in b.kinds],
    ids=[f"{kind}-{b.apply.__name__}" for kind in KINDS for b in BREAKS if kind in b.kinds],
)
def test_claim_fails_when_firmware_breaks_it(tmp_path: Path, kind: str, broken: Break) -> None:
    needs_kind(kind)
    firmware = copy_firmware(tmp_path / "firmware")
    broken.apply(firmware)
    outcomes = run_suite(firmware, kind, [broken.test], tmp_path / "junit.xml")
    outcome = outcome_of(outcomes, broken.test)
    # a failure at the claim's own check, not an error of a fixture or of the board
    claim_checks = ("failure: assert", "failure: AssertionError", "failure: Failed: DID NOT RAISE")
    assert outcome.startswith(claim_checks), f"{broken.claim}: {outcome}"
