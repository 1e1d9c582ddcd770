"""Board methods that are actions a person recognises, titled from their arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.actions import TITLES, size_text
from hil.board import Board, DeployReport


@pytest.mark.parametrize("name", sorted(TITLES))
def test_every_titled_method_of_board_is_an_action(name: str) -> None:
    method = getattr(Board, name)
    assert hasattr(method, "__wrapped__"), f"Board.{name} lost its @action decorator"


def test_titles_name_what_was_done(tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    main.write_bytes(b"x" * 2100)
    put, _, _ = TITLES["put"]
    assert put((main, "main.py"), {}) == "put main.py (2.1 kB)"
    assert put((b"hello",), {"path": "/h.txt"}) == "put /h.txt (5 B)"
    deploy, _, done = TITLES["deploy"]
    title = deploy((tmp_path / "firmware",), {})
    report = DeployReport(copied=["/a.py"], skipped=["/b.py", "/c.py", "/d.py", "/e.py"])
    assert done is not None and done(title, report) == "deploy firmware/ (5 files, 1 sent)"
    checksums, _, _ = TITLES["checksums"]
    assert checksums((["/a.py", "/b.py"],), {}) == "checksum 2 files"
    # inside a put, its temp file is checked for the file it becomes
    assert checksums((["/config.py.hil-tmp"],), {}) == "checksum /config.py"
    assert checksums((["/notes.txt"],), {}) == "checksum /notes.txt"


def test_a_step_title_counts_the_further_lines_in_words() -> None:
    from hil.report.steps import summarize

    assert summarize(b"import sdcard_helper") == "import sdcard_helper"
    assert summarize(b"import sdcard_helper\nsdcard_helper.mount()") == (
        "import sdcard_helper (+1 line)"
    )
    assert summarize(b"a = 1\n\nb = 2\nc = 3\n") == "a = 1 (+2 lines)"


def test_sizes_read_as_a_person_writes_them() -> None:
    assert [size_text(n) for n in (0, 999, 2100, 3_400_000)] == ["0 B", "999 B", "2.1 kB", "3.4 MB"]
