"""``hil.tables``: how columns give way when a table does not fit the terminal."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from hil.tables import Column, chrome, fit, layout

COLUMNS = (
    Column("board", "id"),
    Column("port", shrink_to=14),
    Column("detail", "text", shrink_to=20),
)


def printed(renderable: object, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


def test_a_table_that_fits_keeps_its_natural_widths() -> None:
    rows = [("vb0", "/dev/ttyACM0", "ok")]
    assert fit(COLUMNS, rows, 80) == [5, 12, 6]  # widest of header and cells


def test_columns_never_go_below_their_minimums_and_the_table_fits() -> None:
    rows = [("esp32-a", "/dev/serial/by-id/usb-Espressif_0001-if00", "word " * 30)]
    widths = fit(COLUMNS, rows, 60)
    assert widths is not None
    assert sum(widths) + chrome(3) <= 60
    assert widths[0] == len("esp32-a") and widths[1] >= 14 and widths[2] >= 20


def test_no_room_for_the_minimums_gives_blocks_with_everything_whole() -> None:
    long_id = "sim-b-with-a-rather-long-board-id-0123456"
    rows = [(long_id, "sim:/tmp/sim/vb1", "cannot connect: the port is gone")]
    assert fit(COLUMNS, rows, 60) is None
    shown = layout("rack", COLUMNS, rows, 60)
    assert not isinstance(shown, Table)
    text = printed(shown, 60)
    assert long_id in text.splitlines()  # the heading of its block
    assert "sim:/tmp/sim/vb1" in text and "cannot connect: the port is gone" in text
    assert all(len(line.rstrip()) <= 60 for line in text.splitlines())


def test_a_long_token_breaks_after_punctuation_not_anywhere() -> None:
    rows = [("pico-a", "/dev/serial/by-id/usb-MicroPython_Board_e661-if00", "-")]
    text = printed(layout(None, COLUMNS, rows, 40), 40)
    ports = [line.split("│")[2].strip() for line in text.splitlines() if line.startswith("│")]
    assert "".join(ports) == "/dev/serial/by-id/usb-MicroPython_Board_e661-if00"
    assert all(part[-1] in "-/_" for part in ports[:-1]), ports
    assert "…" not in text


def test_cells_are_text_not_markup() -> None:
    rows = [("vb0", "[red]x[/red]", "[bold]")]
    assert "[red]x[/red]" in printed(layout(None, COLUMNS, rows, 80), 80)
