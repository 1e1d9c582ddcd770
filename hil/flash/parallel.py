"""Flash many boards at once: one progress bar per board, one summary table, no domino effect.

Flashing is slow and waits on USB and serial links, not on the CPU, so a thread per board is the
simple right tool. Each board's job checks its image against the manifest, flashes it and runs the
caller's check (e.g. "the board now reports the pinned version"); whatever goes wrong with one
board becomes that board's result and never stops the others. The CLI turns the results into its
exit status (``exit_status``), the session hook into quarantines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rich.console import Console, Group
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table
from rich.text import Text

from hil.errors import ConfigError, FlashError, HilError
from hil.flash.base import Flasher, ProgressFn
from hil.flash.manifest import FirmwareEntry, verify_image
from hil.tables import Column as TableColumn
from hil.tables import layout


@dataclass(frozen=True)
class FlashJob:
    """One board to flash with one pinned firmware.

    ``check`` runs after a successful flash and raises (``FlashError``) when the board does not
    prove it runs the pin, e.g. by comparing ``firmware.version`` with what it reports.
    """

    board: str
    flasher: Flasher
    firmware: FirmwareEntry
    check: Callable[[], None] | None = None


@dataclass(frozen=True)
class FlashResult:
    """How one board's flash went. ``error`` is set exactly when ``ok`` is false."""

    board: str
    firmware: str
    ok: bool
    seconds: float
    error: HilError | None = None


def run_job(job: FlashJob, progress: ProgressFn, status: Callable[[str], None]) -> None:
    """Verify the image, flash it, check the board: the steps of one board, in order."""
    status("checking")  # the image against its sha256
    image = verify_image(job.firmware)
    status("flashing")
    job.flasher.flash(image, progress)
    if job.check is not None:
        status("verifying")
        job.check()


def _run_one(job: FlashJob, progress: ProgressFn, status: Callable[[str], None]) -> FlashResult:
    start = time.monotonic()
    error: HilError | None = None
    try:
        run_job(job, progress, status)
    except HilError as exc:
        error = exc
    except Exception as exc:  # a flasher bug must still only fail its own board
        error = FlashError(f"unexpected {type(exc).__name__}: {exc}", where=job.board)
        error.__cause__ = exc
    status("[green]ok" if error is None else "[red]FAILED")
    return FlashResult(
        board=job.board,
        firmware=job.firmware.id,
        ok=error is None,
        seconds=time.monotonic() - start,
        error=error,
    )


def flash_boards(
    jobs: Sequence[FlashJob],
    max_workers: int | None = None,
    *,
    console: Console | None = None,
) -> list[FlashResult]:
    """Flash every job's board concurrently; return one result per job, in the jobs' order.

    Shows a live progress bar per board and prints a summary table at the end on ``console``.
    """
    boards = [job.board for job in jobs]
    duplicates = sorted({b for b in boards if boards.count(b) > 1})
    if duplicates:
        raise ConfigError(f"board {duplicates[0]!r} is listed more than once", where="flash jobs")
    if not jobs:
        return []
    console = console or Console()
    with Progress(*progress_columns(jobs, console.width), console=console) as bars:
        tasks = [
            bars.add_task("queued", total=None, board=job.board, firmware=job.firmware.id)
            for job in jobs
        ]
        with ThreadPoolExecutor(max_workers=max_workers or len(jobs)) as pool:
            futures = [
                pool.submit(_run_one, job, *_reporters(bars, task))
                for job, task in zip(jobs, tasks, strict=True)
            ]
            results = [future.result() for future in futures]
    console.print(summary_table(results, console.width))
    return results


def progress_columns(jobs: Sequence[FlashJob], width: int) -> list[ProgressColumn]:
    """A progress line per board that fits ``width`` without cutting anything.

    Only the bar gives way (down to a few characters); the board id, the byte counts, the
    status and the elapsed time are never shrunk. The firmware id is shown when it fits too (the
    check table above already names each board's pin)."""
    board = max(len(job.board) for job in jobs)
    firmware = max(len(job.firmware.id) for job in jobs)
    # "2.5/2.5 MB", "verifying", "0:00:07": what the fixed parts take, with the gaps between.
    fixed = board + 10 + len("verifying") + 7 + 4
    whole = Column(no_wrap=True)
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.fields[board]}", table_column=Column(no_wrap=True, width=board))
    ]
    if fixed + firmware + 1 + 10 <= width:  # with a gap, and still a bar of 10
        columns.append(
            TextColumn("{task.fields[firmware]}", table_column=Column(no_wrap=True, width=firmware))
        )
    columns += [
        BarColumn(bar_width=None, table_column=Column(max_width=40)),
        DownloadColumn(table_column=whole),
        TextColumn("{task.description}", table_column=whole.copy()),
        TimeElapsedColumn(table_column=whole.copy()),
    ]
    return columns


def _reporters(bars: Progress, task: TaskID) -> tuple[ProgressFn, Callable[[str], None]]:
    def progress(done: int, total: int) -> None:
        bars.update(task, completed=done, total=total)

    def status(text: str) -> None:
        bars.update(task, description=text)

    return progress, status


def summary_table(results: Sequence[FlashResult], width: int = 200) -> Table | Group:
    """One row per board: result, time taken and, for failures, the one-line error; laid out
    for a ``width``-column terminal (a block per board when no table fits: ids are never cut)."""
    columns = [
        TableColumn("Board", "id", style="bold"),
        TableColumn("Firmware", shrink_to=10),
        TableColumn("Result"),
        TableColumn("Seconds", justify="right"),
    ]
    rows = [
        (
            r.board,
            r.firmware,
            Text("ok", style="green") if r.ok else Text("FAILED", style="red"),
            f"{r.seconds:.1f}",
        )
        for r in results
    ]
    if any(not r.ok for r in results):  # no empty column when nothing failed
        columns.append(TableColumn("Error", "text"))
        rows = [(*row, _error_text(r)) for row, r in zip(rows, results, strict=True)]
    return layout("Flash summary", columns, rows, width)


def _error_text(result: FlashResult) -> str:
    """The error without what the row already says (its board) or the obvious fault class."""
    error = result.error
    if error is None:
        return ""
    if error.where and error.where != result.board:
        return f"{error.where}: {error.what}"
    return error.what


def exit_status(results: Sequence[FlashResult]) -> int:
    """The CLI's exit status: 0 when every board was flashed, 1 when any failed."""
    return 0 if all(r.ok for r in results) else 1
