"""The board the suite runs on: it answers, and runs the firmware it is pinned to."""

from __future__ import annotations

import pytest


def test_board_runs_its_pinned_firmware(board, hil_board_entry, pytestconfig) -> None:
    if hil_board_entry.firmware is None:
        pytest.skip(f"the rack does not pin the firmware of {hil_board_entry.id}")
    from hil.flash.manifest import load_manifest
    from hil.pytest_plugin import option

    manifest_path = option(pytestconfig, "hil_firmware_manifest") or "firmware/manifest.toml"
    entry = load_manifest(pytestconfig.rootpath / manifest_path).get(hil_board_entry.firmware)
    assert entry.matches(board.eval(entry.version_expr))


def test_board_identity(board) -> None:
    identity = board.identity()
    assert identity.implementation == "micropython"
    assert len(identity.unique_id) >= 8
