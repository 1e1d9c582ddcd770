"""dfu-util and picotool flashers, run for real against stand-in tools.

The stand-ins are small Python programs with the tools' names that record the argument list they
got and print what the real tools print (progress percentages, errors on stderr), so these tests
exercise the real subprocess path: argument lists, pipes, exit status, the kill at the deadline.
"""

from __future__ import annotations

import json
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from hil.errors import ConfigError, FlashError
from hil.flash.base import FlashTarget, create_flasher


def fake_tool(directory: Path, name: str, body: str) -> Path:
    """An executable ``name`` that writes its argv to ``<name>.argv.json`` then runs ``body``."""
    path = directory / name
    script = f"""\
        #!{sys.executable}
        import json, os, sys, time
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, {name!r} + ".argv.json"), "a") as log:
            log.write(json.dumps(sys.argv[1:]) + "\\n")
    """
    path.write_text(textwrap.dedent(script) + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def calls(tool: Path) -> list[list[str]]:
    log = tool.parent / f"{tool.name}.argv.json"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def dfu_image(tmp_path: Path) -> Path:
    path = tmp_path / "fw dir" / "PYBV11 v1.24.1.dfu"  # spaces: proof that no shell parses it
    path.parent.mkdir()
    path.write_bytes(b"DfuSe" + b"\x00" * 2000)
    return path


DFU_OK = """\
    sys.stdout.write("Opening DFU capable USB device...\\n")
    for pct in (0, 25, 50, 75, 100):
        sys.stdout.write(f"\\rDownload\\t[{'=' * (pct // 5):<20}] {pct:3d}%  {pct * 20} bytes")
        sys.stdout.flush()
    sys.stdout.write("\\nDone!\\n")
"""


def test_dfu_util_runs_an_argument_list_and_reports_its_percentages(
    tmp_path: Path, dfu_image: Path
) -> None:
    tool = fake_tool(tmp_path, "dfu-util", DFU_OK)
    flasher = create_flasher(
        "dfu-util", {"tool": str(tool), "serial": "3677375E3231"}, FlashTarget("pyb-1")
    )
    seen: list[tuple[int, int]] = []
    flasher.flash(dfu_image, lambda done, total: seen.append((done, total)))
    assert calls(tool) == [
        ["-a", "0", "-d", "0483:df11", "-S", "3677375E3231", "-s", ":leave", "-D", str(dfu_image)]
    ]
    total = dfu_image.stat().st_size
    assert (total // 2, total) in seen  # 50% as printed by the tool
    assert seen[-1] == (total, total)


def test_dfu_util_bin_image_is_written_at_the_configured_address(tmp_path: Path) -> None:
    tool = fake_tool(tmp_path, "dfu-util", DFU_OK)
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x00" * 100)
    flasher = create_flasher(
        "dfu-util",
        {"tool": str(tool), "address": 0x08000000, "alt": 1, "device": "0483:DF11"},
        FlashTarget("pyb-1"),
    )
    flasher.flash(image)
    assert calls(tool) == [
        ["-a", "1", "-d", "0483:DF11", "-s", "0x08000000:leave", "-D", str(image)]
    ]


def test_dfu_util_bin_image_without_address_is_refused_before_running(tmp_path: Path) -> None:
    tool = fake_tool(tmp_path, "dfu-util", DFU_OK)
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x00" * 100)
    flasher = create_flasher("dfu-util", {"tool": str(tool)}, FlashTarget("pyb-1"))
    with pytest.raises(FlashError, match=r"pyb-1: a .bin image needs the rack option 'address'"):
        flasher.flash(image)
    assert calls(tool) == []


def test_tool_failure_names_the_board_and_shows_the_stderr_tail(
    tmp_path: Path, dfu_image: Path
) -> None:
    tool = fake_tool(
        tmp_path,
        "dfu-util",
        """\
        sys.stdout.write("Opening DFU capable USB device...\\n")
        for n in range(20):
            sys.stderr.write(f"noise line {n}\\n")
        sys.stderr.write("dfu-util: No DFU capable USB device available\\n")
        sys.exit(74)
        """,
    )
    flasher = create_flasher("dfu-util", {"tool": str(tool)}, FlashTarget("pyb-7"))
    with pytest.raises(FlashError) as info:
        flasher.flash(dfu_image)
    message = str(info.value)
    assert message.startswith("pyb-7: dfu-util exited with status 74; dfu-util said:")
    assert message.rstrip(" ]").endswith(
        "dfu-util: No DFU capable USB device available [infrastructure fault"
    )
    assert "noise line 19" in message and "noise line 0 " not in message  # a tail, not all
    assert "\n" not in message


def test_tool_that_hangs_is_killed_at_its_deadline(tmp_path: Path, dfu_image: Path) -> None:
    tool = fake_tool(
        tmp_path,
        "dfu-util",
        """\
        sys.stderr.write("Waiting for device, exit with ctrl-C\\n")
        sys.stderr.flush()
        time.sleep(60)
        """,
    )
    flasher = create_flasher("dfu-util", {"tool": str(tool), "timeout": 0.5}, FlashTarget("pyb-2"))
    with pytest.raises(FlashError, match=r"pyb-2: dfu-util did not finish within 0.5s, killed"):
        flasher.flash(dfu_image)


def test_missing_tool_is_a_flash_error_saying_how_to_fix_it(dfu_image: Path) -> None:
    flasher = create_flasher(
        "dfu-util", {"tool": "dfu-util-not-installed-here"}, FlashTarget("pyb-3")
    )
    with pytest.raises(FlashError, match="pyb-3: dfu-util-not-installed-here not found"):
        flasher.flash(dfu_image)


def test_dfu_util_enters_the_bootloader_and_waits_until_the_device_is_listed(
    tmp_path: Path, dfu_image: Path
) -> None:
    marker = tmp_path / "in-dfu-mode"
    tool = fake_tool(
        tmp_path,
        "dfu-util",
        f"""\
        if "-l" in sys.argv:
            if os.path.exists({str(marker)!r}):
                print('Found DFU: [0483:df11] ver=2200, devnum=7, cfg=1, intf=0, alt=0')
            sys.exit(0)
        """,
    )
    flasher = create_flasher(
        "dfu-util",
        {"tool": str(tool), "poll_interval": 0.01},
        FlashTarget("pyb-1", enter_bootloader=marker.touch),
    )
    flasher.flash(dfu_image)
    assert marker.exists()
    assert calls(tool)[0][0] == "-l"
    assert calls(tool)[-1][-2:] == ["-D", str(dfu_image)]


def test_dfu_util_bootloader_that_never_shows_up_times_out(tmp_path: Path, dfu_image: Path) -> None:
    tool = fake_tool(tmp_path, "dfu-util", "sys.exit(0)\n")
    flasher = create_flasher(
        "dfu-util",
        {"tool": str(tool), "bootloader_timeout": 0.2, "poll_interval": 0.01},
        FlashTarget("pyb-1", enter_bootloader=lambda: None),
    )
    with pytest.raises(FlashError, match=r"pyb-1: timed out after 0.2s waiting for the board's"):
        flasher.flash(dfu_image)
    assert all(call[0] == "-l" for call in calls(tool))


def test_picotool_loads_verifies_and_runs_the_image(tmp_path: Path) -> None:
    tool = fake_tool(
        tmp_path,
        "picotool",
        """\
        if sys.argv[1] == "load":
            print("Loading into Flash: [==============================]  100%")
        """,
    )
    image = tmp_path / "RPI_PICO.uf2"
    image.write_bytes(b"\x00" * 512)
    answers = iter([None, "/dev/ttyACM4"])
    flasher = create_flasher(
        "picotool",
        {"tool": str(tool), "serial": "E6614C311B7C4D2F", "poll_interval": 0.01},
        FlashTarget("pico-2", enter_bootloader=lambda: None, resolve_port=lambda: next(answers)),
    )
    flasher.flash(image)
    assert calls(tool) == [
        ["info", "--ser", "E6614C311B7C4D2F"],
        ["load", "-v", "-x", str(image), "--ser", "E6614C311B7C4D2F"],
    ]


def test_picotool_device_selection_by_bus_and_address(tmp_path: Path) -> None:
    flasher = create_flasher(
        "picotool", {"bus": 1, "address": 12, "verify": False}, FlashTarget("pico-3")
    )
    argv = flasher.argv("picotool", Path("/x/fw.elf"))
    assert argv == ["picotool", "load", "-x", "/x/fw.elf", "--bus", "1", "--address", "12"]


@pytest.mark.parametrize(
    ("name", "options", "words"),
    [
        ("dfu-util", {"device": "0483-df11"}, "device must be vid:pid"),
        ("dfu-util", {"timeout": 0}, "must be positive"),
        ("picotool", {"bus": "1"}, "picotool.*bus: must be int"),
        ("picotool", {"sreial": "x"}, "unknown option 'sreial'"),
    ],
)
def test_bad_tool_options_are_config_errors(
    name: str, options: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        create_flasher(name, options, FlashTarget("b1"), where=f"rack.toml: {name}")
