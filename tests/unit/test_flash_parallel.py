"""Flashing many boards at once: per-board results, progress bars, a summary, no domino effect."""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from hil.errors import ConfigError, FlashError
from hil.flash.base import Flasher, FlashTarget, ProgressFn, no_progress
from hil.flash.manifest import FirmwareEntry
from hil.flash.parallel import FlashJob, exit_status, flash_boards

IMAGE = b"\x42" * 10_000


@dataclass(frozen=True)
class NoOptions:
    pass


class RecordingFlasher(Flasher):
    """Reports progress in steps and records what it wrote; fails when told to."""

    name = "recording"
    options_type = NoOptions

    def __init__(
        self,
        board: str,
        *,
        fail: BaseException | None = None,
        rendezvous: threading.Barrier | None = None,
    ) -> None:
        super().__init__(NoOptions(), FlashTarget(board))
        self.fail = fail
        self.rendezvous = rendezvous
        self.flashed: list[Path] = []

    def flash(self, image: Path, progress: ProgressFn = no_progress) -> None:
        total = image.stat().st_size
        if self.rendezvous is not None:
            self.rendezvous.wait()  # every board is flashing at the same time
        progress(total // 2, total)
        if self.fail is not None:
            raise self.fail
        progress(total, total)
        self.flashed.append(image)


@pytest.fixture
def firmware(tmp_path: Path) -> FirmwareEntry:
    (tmp_path / "fw.bin").write_bytes(IMAGE)
    return FirmwareEntry(
        id="fw-1.24",
        platform="esp32",
        image="fw.bin",
        sha256=hashlib.sha256(IMAGE).hexdigest(),
        version="v1.24.1",
        manifest=tmp_path / "manifest.toml",
    )


def quiet_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=160, color_system=None), out


def test_one_failing_board_does_not_stop_the_other_three(firmware: FirmwareEntry) -> None:
    together = threading.Barrier(4, timeout=10)
    flashers = {
        board: RecordingFlasher(
            board,
            rendezvous=together,
            fail=FlashError("no serial data received", where=board) if board == "b2" else None,
        )
        for board in ("b1", "b2", "b3", "b4")
    }
    console, out = quiet_console()
    jobs = [FlashJob(board, flasher, firmware) for board, flasher in flashers.items()]
    results = flash_boards(jobs, console=console)

    assert [r.board for r in results] == ["b1", "b2", "b3", "b4"]
    assert [r.ok for r in results] == [True, False, True, True]
    assert all(flashers[b].flashed for b in ("b1", "b3", "b4"))
    assert flashers["b2"].flashed == []
    failed = results[1]
    assert isinstance(failed.error, FlashError)
    assert "no serial data received" in str(failed.error)
    assert all(r.error is None for r in results if r.ok)
    assert all(r.seconds >= 0 for r in results)
    assert exit_status(results) == 1

    text = out.getvalue()
    assert "Flash summary" in text
    for board in ("b1", "b2", "b3", "b4"):
        assert sum(board in line for line in text.splitlines()) >= 2  # its bar and its row
    assert "FAILED" in text and "no serial data received" in text


def test_all_boards_ok_exit_status_zero(firmware: FirmwareEntry) -> None:
    console, _ = quiet_console()
    jobs = [FlashJob(b, RecordingFlasher(b), firmware) for b in ("a", "b")]
    results = flash_boards(jobs, max_workers=1, console=console)
    assert [r.ok for r in results] == [True, True]
    assert exit_status(results) == 0


def test_a_wrong_image_fails_its_board_before_the_flasher_runs(
    firmware: FirmwareEntry, tmp_path: Path
) -> None:
    (tmp_path / "fw.bin").write_bytes(IMAGE + b"corrupt")
    flasher = RecordingFlasher("b1")
    console, out = quiet_console()
    (result,) = flash_boards([FlashJob("b1", flasher, firmware)], console=console)
    assert not result.ok
    assert flasher.flashed == []
    assert "refusing to flash" in str(result.error)
    assert "firmware.fw-1.24" in out.getvalue()


def test_a_flasher_bug_still_fails_only_its_board(firmware: FirmwareEntry) -> None:
    console, _ = quiet_console()
    jobs = [
        FlashJob("b1", RecordingFlasher("b1", fail=KeyError("chip")), firmware),
        FlashJob("b2", RecordingFlasher("b2"), firmware),
    ]
    bad, good = flash_boards(jobs, console=console)
    assert isinstance(bad.error, FlashError)
    assert "b1: unexpected KeyError: 'chip'" in str(bad.error)
    assert isinstance(bad.error.__cause__, KeyError)
    assert good.ok


def test_the_post_flash_check_decides_the_result(firmware: FirmwareEntry) -> None:
    def wrong_version() -> None:
        raise FlashError("board reports v1.23.0, pin is v1.24.1", where="b1")

    console, _ = quiet_console()
    flasher = RecordingFlasher("b1")
    (result,) = flash_boards(
        [FlashJob("b1", flasher, firmware, check=wrong_version)], console=console
    )
    assert flasher.flashed  # it was flashed, but did not prove it runs the pin
    assert not result.ok and "reports v1.23.0" in str(result.error)


def test_the_same_board_twice_is_refused(firmware: FirmwareEntry) -> None:
    jobs = [FlashJob("b1", RecordingFlasher("b1"), firmware)] * 2
    with pytest.raises(ConfigError, match="board 'b1' is listed more than once"):
        flash_boards(jobs, console=quiet_console()[0])


def test_no_jobs_no_output(firmware: FirmwareEntry) -> None:
    console, out = quiet_console()
    assert flash_boards([], console=console) == []
    assert out.getvalue() == ""
