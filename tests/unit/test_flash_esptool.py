"""The esptool flasher, tested at the boundary of esptool's Python API.

No ESP ROM bootloader can run here, so these tests replace ``esptool.main`` (the entry point the
flasher calls) and check the argument list it receives and how its outcomes (progress, log lines,
``FatalError``, ``SystemExit``) come back; their names say "mocked_rom". One test calls the real
esptool with a port that cannot open, to prove the error path through the genuine API.
"""

from __future__ import annotations

import threading
from pathlib import Path

import esptool
import pytest
from esptool.logger import log as esptool_log
from esptool.util import FatalError

from hil.errors import ConfigError, FlashError
from hil.flash.base import FlashTarget, create_flasher
from hil.flash.esptool_flasher import EsptoolOptions, esptool_argv


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "ESP32_GENERIC-v1.24.1.bin"
    path.write_bytes(b"\xe9" + b"\x00" * 8191)
    return path


class FakeMain:
    """Stands in for ``esptool.main``: records argv and talks back like esptool 5 does."""

    def __init__(self, *, fail: BaseException | None = None, chunks: int = 4) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.chunks = chunks

    def __call__(self, argv: list[str]) -> None:
        self.calls.append(list(argv))
        esptool_log.print("Connecting....")
        esptool_log.print("Chip type: ESP32-D0WD-V3 (revision v3.1)")
        if self.fail is not None:
            raise self.fail
        size = Path(argv[-1]).stat().st_size
        with esptool_log.progress(total=size, unit="B") as bar:
            for _ in range(self.chunks):
                bar.update(size // self.chunks)


def make(options: dict[str, object], *, port: str | None = "/dev/ttyUSB0", **target: object):
    return create_flasher("esptool", options, FlashTarget("esp-1", port=port, **target))


def test_esptool_args_at_api_boundary_mocked_rom(
    monkeypatch: pytest.MonkeyPatch, image: Path
) -> None:
    fake = FakeMain()
    monkeypatch.setattr(esptool, "main", fake)
    make({"chip": "esp32", "baud": 921600}).flash(image)
    assert fake.calls == [
        [
            "--chip", "esp32",
            "--port", "/dev/ttyUSB0",
            "--baud", "921600",
            "--before", "default-reset",
            "--after", "hard-reset",
            "write-flash",
            "0x1000", str(image),
        ]
    ]  # fmt: skip


def test_esptool_erase_all_args_at_api_boundary_mocked_rom(
    monkeypatch: pytest.MonkeyPatch, image: Path
) -> None:
    fake = FakeMain()
    monkeypatch.setattr(esptool, "main", fake)
    flasher = make(
        {"chip": "esp32s3", "erase": True, "port": "rfc2217://rack:4001", "before": "usb-reset"}
    )
    flasher.flash(image)
    (argv,) = fake.calls
    assert argv[argv.index("--port") + 1] == "rfc2217://rack:4001"
    assert argv[argv.index("--before") + 1] == "usb-reset"
    assert argv[-4:] == ["write-flash", "--erase-all", "0x0", str(image)]


def test_esptool_progress_through_its_logger_at_api_boundary_mocked_rom(
    monkeypatch: pytest.MonkeyPatch, image: Path
) -> None:
    monkeypatch.setattr(esptool, "main", FakeMain(chunks=4))
    seen: list[tuple[int, int]] = []
    make({"chip": "esp32"}).flash(image, lambda done, total: seen.append((done, total)))
    size = image.stat().st_size
    assert seen[0] == (0, size)
    assert (size // 2, size) in seen  # a report from inside esptool, not only ours
    assert seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_esptool_fatal_error_becomes_flash_error_with_its_output_mocked_rom(
    monkeypatch: pytest.MonkeyPatch, image: Path
) -> None:
    fail = FatalError("Failed to connect to ESP32:\nNo serial data received.")
    monkeypatch.setattr(esptool, "main", FakeMain(fail=fail))
    with pytest.raises(FlashError) as info:
        make({"chip": "esp32"}).flash(image)
    message = str(info.value)
    assert message.startswith("esp-1: esptool failed: FatalError: Failed to connect to ESP32:")
    assert "No serial data received." in message
    assert "Chip type: ESP32-D0WD-V3" in message  # the tail of esptool's own output
    assert "\n" not in message


def test_esptool_usage_exit_becomes_flash_error_mocked_rom(
    monkeypatch: pytest.MonkeyPatch, image: Path
) -> None:
    monkeypatch.setattr(esptool, "main", FakeMain(fail=SystemExit(2)))
    with pytest.raises(FlashError, match="esp-1: esptool exited with 2"):
        make({"chip": "esp32"}).flash(image)


def test_esptool_threads_get_only_their_own_progress_mocked_rom(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two boards flashed at once: esptool's logger is global, our progress must not be."""
    both_inside = threading.Barrier(2, timeout=10)

    def main(argv: list[str]) -> None:
        both_inside.wait()  # both flashes are inside esptool at the same time
        size = Path(argv[-1]).stat().st_size
        with esptool_log.progress(total=size) as bar:
            bar.update(size // 2)
            both_inside.wait()
            bar.update(size - size // 2)

    monkeypatch.setattr(esptool, "main", main)
    seen: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def run(board: str, size: int) -> None:
        path = tmp_path / f"{board}.bin"
        path.write_bytes(b"\x00" * size)
        try:
            make({"chip": "esp32"}).flash(path, lambda d, t: seen[board].append((d, t)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b, s)) for b, s in (("a", 1000), ("b", 3000))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    assert {t for _, t in seen["a"]} == {1000}
    assert {t for _, t in seen["b"]} == {3000}
    assert (500, 1000) in seen["a"] and (1500, 3000) in seen["b"]


def test_esptool_waits_for_the_port_to_come_back_mocked_rom(
    monkeypatch: pytest.MonkeyPatch, image: Path
) -> None:
    monkeypatch.setattr(esptool, "main", FakeMain())
    answers = iter([None, None, "/dev/ttyUSB3"])
    asked: list[str | None] = []

    def resolve() -> str | None:
        asked.append(answer := next(answers))
        return answer

    make({"chip": "esp32"}, resolve_port=resolve).flash(image)
    assert asked == [None, None, "/dev/ttyUSB3"]


def test_esptool_refuses_a_non_bin_image_before_calling_esptool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeMain()
    monkeypatch.setattr(esptool, "main", fake)
    uf2 = tmp_path / "fw.uf2"
    uf2.write_bytes(b"x")
    with pytest.raises(FlashError, match=r"esptool takes \.bin images"):
        make({"chip": "esp32"}).flash(uf2)
    assert fake.calls == []


def test_esptool_without_any_port_is_a_flash_error(image: Path) -> None:
    with pytest.raises(FlashError, match="esp-1: esptool needs a serial port"):
        make({"chip": "esp32"}, port=None).flash(image)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"chip": "esp33"}, "unknown chip 'esp33'"),
        ({}, "offset is required when chip is 'auto'"),
        ({"chip": "esp32", "before": "default_reset"}, "before must be one of"),
        ({"chip": "esp32", "offset": "0x1000"}, "offset: must be int"),
        ({"chip": "esp32", "baud": 0}, "baud must be positive"),
    ],
)
def test_esptool_bad_rack_options_are_config_errors(options: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        make(options)


def test_esptool_default_offsets_follow_the_chip() -> None:
    assert EsptoolOptions(chip="esp32").flash_offset == 0x1000
    assert EsptoolOptions(chip="esp32s2").flash_offset == 0x1000
    assert EsptoolOptions(chip="esp32c3").flash_offset == 0
    assert EsptoolOptions(chip="esp8266").flash_offset == 0
    assert EsptoolOptions(chip="auto", offset=0x10000).flash_offset == 0x10000


def test_esptool_4_spelling_uses_underscores_for_commands_and_reset_modes() -> None:
    options = EsptoolOptions(chip="esp32", erase=True)
    argv = esptool_argv(options, "/dev/tty-usb-0", Path("/tmp/my-fw.bin"), major=4)
    assert argv == [
        "--chip", "esp32", "--port", "/dev/tty-usb-0", "--baud", "460800",
        "--before", "default_reset", "--after", "hard_reset",
        "write_flash", "--erase-all", "0x1000", "/tmp/my-fw.bin",
    ]  # fmt: skip


def test_esptool_real_api_with_a_port_that_cannot_open_is_a_flash_error(
    tmp_path: Path, image: Path
) -> None:
    """Not mocked: the installed esptool really runs and fails to open the port."""
    missing = str(tmp_path / "no-such-tty")
    with pytest.raises(FlashError) as info:
        make({"chip": "esp32", "before": "no-reset"}, port=missing).flash(image)
    message = str(info.value)
    assert message.startswith("esp-1: esptool failed: FatalError: Could not open")
    assert missing in message
    assert "\n" not in message
