"""The board the suite runs on: it answers, and runs the firmware it is pinned to."""

from __future__ import annotations

import pytest

from fixtures.facts import skip_unless


def test_board_runs_its_pinned_firmware(board, hil_board_entry, pytestconfig) -> None:
    if hil_board_entry.firmware is None:
        pytest.skip(f"{hil_board_entry.id}: no firmware pin (the rack or run names none)")
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
