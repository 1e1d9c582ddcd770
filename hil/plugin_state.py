"""What the pytest plugin keeps per session and per test, shared with its reporting hooks
(``hil.report.pytest_hooks``) without either importing the other."""

from __future__ import annotations

from typing import Any

import pytest

RUN_DIR_KEY = "hil_run_dir"
RUN_ID_KEY = "hil_run_id"
OWNER_KEY = "hil_owner_pid"
WORKER_FIRMWARE_KEY = "hil_firmware"
WORKER_BOARDS_KEY = "hil_boards"

#: The session's ``hil.pytest_plugin.HilSession``, on ``config.stash``.
SESSION = pytest.StashKey[Any]()
#: On ``item.stash``: the board a test ran on, and where its part of the transcript starts.
BOARD_ID = pytest.StashKey[str]()
TRANSCRIPT_MARK = pytest.StashKey[int]()
