"""The probe: its answer parsed into ``BoardFacts``, and its program run by MicroPython itself
(the unix port from PyPI: not a board, but the same compiler and the same ``repr``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hil.errors import ProtocolError
from hil.probe import (
    FEATURES,
    PROBE_SOURCE,
    PROBE_SOURCES,
    BoardFacts,
    SdFact,
    _joined,
    parse_facts,
)

MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent))
needs_micropython = pytest.mark.skipif(MICROPYTHON is None, reason="MicroPython unix port missing")

#: What MicroPython 1.9.2 on the micro:bit answered (QEMU), and our virtual board.
MICROBIT = (
    "('microbit', 'micropython', (1, 9, 2), {'sysname': 'microbit', 'release': '1.1.1', "
    "'machine': 'micro:bit with nRF51822'}, ['machine.unique_id', 'writable-fs'], None)\r\n"
)
VIRTUAL = (
    "('linux', 'micropython', (1, 29, 0, 'preview'), {'sysname': 'hilsim'}, "
    "['sys.modules', 'hashlib', 'binascii', 'stdout.buffer', 'vfs', 'vfs', 'os.ilistdir', "
    "'os.stat', 'os.rename', 'os.mkdir', 'machine.unique_id', 'gc', 'writable-fs'], "
    "('machine.SDCard', None, 2))"
)


def test_facts_of_a_microbit() -> None:
    facts = parse_facts(MICROBIT, mem_free=7344, raw_paste=False, where="mb")
    assert (facts.platform, facts.implementation, facts.version) == (
        "microbit",
        "micropython",
        (1, 9, 2),
    )
    assert facts.uname["machine"] == "micro:bit with nRF51822"
    assert facts.mem_free == 7344 and facts.sd is None
    assert facts.has("machine.unique_id") and not facts.has("sys.modules")
    assert facts.lacks("hashlib", "writable-fs", "sys.modules", "raw-paste") == [
        "hashlib",
        "sys.modules",
        "raw-paste",
    ]


def test_facts_of_the_virtual_board_with_a_card() -> None:
    facts = parse_facts(VIRTUAL, raw_paste=True)
    assert facts.version == (1, 29, 0)  # the 'preview' label lives in uname, not here
    assert facts.sd == SdFact("machine.SDCard", None, 2)
    assert facts.lacks(*FEATURES) == []  # every feature, the card and raw-paste included
    assert facts.mem_free is None


def test_as_dict_is_json_and_round_trips_the_facts() -> None:
    facts = parse_facts(VIRTUAL, mem_free=100_000, raw_paste=True)
    data = json.loads(json.dumps(facts.as_dict()))
    assert data["platform"] == "linux" and data["version"] == [1, 29, 0]
    assert data["features"] == sorted(FEATURES)
    assert data["sd"] == {"driver": "machine.SDCard", "mount": None, "slot": 2}
    assert data["mem_free"] == 100_000


def test_facts_are_immutable() -> None:
    facts = parse_facts(MICROBIT)
    with pytest.raises(TypeError):
        facts.uname["machine"] = "other"  # type: ignore[index]
    assert isinstance(facts.features, frozenset)
    assert BoardFacts.everything().lacks("sd", "hashlib") == ["sd"]


@pytest.mark.parametrize(
    "text",
    ["", "Traceback (most recent call last):", "('microbit', 'micropython')", "__import__('os')"],
)
def test_a_garbled_answer_is_a_protocol_error_naming_the_board(text: str) -> None:
    with pytest.raises(ProtocolError, match="probe answered") as info:
        parse_facts(text, where="bench-1")
    assert info.value.where == "bench-1"


def test_the_probe_stays_small() -> None:
    # A micro:bit compiles each part in about 7 kB of heap, with a second copy of it when it
    # travels checked; a big literal or a long helper would not fit.
    assert all(len(source) < 1000 for source in PROBE_SOURCES)
    for source in PROBE_SOURCES:
        compile(source, "<probe>", "exec")


@needs_micropython
def test_micropython_runs_the_probe_and_it_leaves_nothing_behind(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(
        "before = None\nbefore = sorted(globals())\n"
        + PROBE_SOURCE
        + "print(sorted(globals()) == before)\n"
    )
    out = subprocess.run(
        [MICROPYTHON, str(script)], capture_output=True, timeout=30, check=True, cwd=tmp_path
    )
    first, first_again, second, second_again, clean = out.stdout.decode().strip().split("\n")
    assert clean == "True"  # no name left in __main__
    assert (first, second) == (first_again, second_again)  # each answer twice, to compare
    facts = parse_facts(_joined(first, second))
    assert facts.platform == sys.platform and facts.implementation == "micropython"
    assert facts.version[:1] == (1,)
    # the plain unix port has these; its os has no uname and no mount table at /sd
    assert facts.lacks("sys.modules", "hashlib", "binascii", "os.ilistdir", "writable-fs") == []
    assert facts.sd is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe.py"]  # test file removed


def test_a_probe_answer_whose_two_copies_differ_is_a_link_error() -> None:
    from types import SimpleNamespace

    from hil.errors import LinkError
    from hil.probe import _twice

    board = SimpleNamespace(name="mb", transport=SimpleNamespace(tail=b""))
    assert _twice(b"('microbit', 1)\r\n('microbit', 1)\r\n", board) == b"('microbit', 1)"  # type: ignore[arg-type]
    with pytest.raises(LinkError, match="mb: the probe's answer was altered on the way"):
        _twice(b"('microbit', 1)\r\n('micrebit', 1)\r\n", board)  # type: ignore[arg-type]
    with pytest.raises(LinkError):
        _twice(b"('microbit', 1)\r\n", board)  # type: ignore[arg-type]
