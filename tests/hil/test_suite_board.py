"""The board the suite runs on: it answers, and runs the firmware it should.

A pinned board must report its pin's version; a board with no pin (a bench board, a kind whose
firmware is not ours) must still say which firmware it runs, consistently: that is what the
report shows as its firmware.
"""

from __future__ import annotations

from fixtures.facts import skip_unless


def test_board_runs_its_pinned_firmware(board, hil_board_entry, pytestconfig) -> None:
    if hil_board_entry.firmware is None:
        identity = board.identity(refresh=True)
        reported = identity.uname.get("version") or ".".join(map(str, identity.version[:3]))
        assert reported, f"{hil_board_entry.id} does not say which firmware it runs"
        assert board.identity(refresh=True) == identity  # asked twice, the same answer
        return
    from hil.flash.manifest import load_manifest
    from hil.pytest_plugin import option

    manifest_path = option(pytestconfig, "hil_firmware_manifest") or "firmware/manifest.toml"
    entry = load_manifest(pytestconfig.rootpath / manifest_path).get(hil_board_entry.firmware)
    assert entry.matches(board.eval(entry.version_expr))


def test_board_identity(board, facts, hil_board_entry) -> None:
    identity = board.identity()
    assert identity.implementation == "micropython"
    assert identity.platform
    skip_unless(facts, hil_board_entry.id, "machine.unique_id")
    assert len(identity.unique_id) >= 8
