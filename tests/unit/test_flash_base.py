"""The flasher interface: options validated like config, registry by name, deadlines."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.errors import ConfigError, FlashError
from hil.flash import base
from hil.flash.base import (
    Deadline,
    Flasher,
    FlashTarget,
    create_flasher,
    enter_bootloader,
    flasher_class,
    flasher_names,
    parse_options,
    poll_until,
    register_flasher,
    wait_for_port,
)


@dataclass(frozen=True)
class Opts:
    path: Path
    count: int = 1
    rate: float = 1.5
    name: str | None = None
    flag: bool = False
    roots: tuple[str, ...] = ("a",)

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must not be negative")


def test_parse_options_converts_and_keeps_defaults() -> None:
    opts = parse_options(Opts, {"path": "~/x", "rate": 2, "roots": ["b", "c"]}, where="w")
    assert opts.path == Path("~/x").expanduser()
    assert opts.rate == 2.0 and isinstance(opts.rate, float)
    assert opts.roots == ("b", "c")
    assert (opts.count, opts.name, opts.flag) == (1, None, False)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"path": "p", "cuont": 2}, "unknown option 'cuont'"),
        ({"path": "p", "count": "2"}, "rack.toml: boards.b1.count: must be int, not str"),
        ({"path": "p", "count": True}, "boards.b1.count: must be an integer, not bool"),
        ({"path": "p", "rate": "fast"}, "boards.b1.rate: must be a number"),
        ({"path": "p", "roots": "a"}, "boards.b1.roots: must be a list"),
        ({"path": 3}, "boards.b1.path: must be a path string"),
        ({}, "missing required option 'path'"),
        ({"path": "p", "count": -1}, "count must not be negative"),
    ],
)
def test_parse_options_rejects_bad_values_in_one_line_naming_the_field(
    options: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_options(Opts, options, where="rack.toml: boards.b1")
    assert words in str(info.value)
    assert "rack.toml: boards.b1" in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_flasher_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown flasher 'esptol' \(known: .*esptool"):
        flasher_class("esptol", where="rack.toml: boards.b1.flasher")


def test_builtin_flashers_are_all_resolvable() -> None:
    for name in ("esptool", "uf2", "dfu-util", "picotool"):
        assert flasher_class(name).name == name


def test_registered_flasher_is_created_from_rack_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hil.drivers import registry

    monkeypatch.setattr(registry, "_drivers", {k: dict(v) for k, v in registry._drivers.items()})

    @dataclass(frozen=True)
    class SlotOptions:
        slot: int = 0

    @register_flasher
    class SlotFlasher(Flasher):
        name = "slot-test"
        options_type = SlotOptions

        def flash(self, image: Path, progress: base.ProgressFn = base.no_progress) -> None:
            raise NotImplementedError

    assert "slot-test" in flasher_names()
    flasher = create_flasher("slot-test", {"slot": 2}, FlashTarget("b1"))
    assert isinstance(flasher, SlotFlasher)
    assert flasher.options == SlotOptions(slot=2)
    assert flasher.board == "b1"
    with pytest.raises(ConfigError, match="board b1: unknown option 'slto'"):
        create_flasher("slot-test", {"slto": 2}, FlashTarget("b1"))


def test_check_image_refuses_a_foreign_format_naming_the_board() -> None:
    flasher = create_flasher("uf2", {}, FlashTarget("pico-3"))
    with pytest.raises(FlashError, match=r"pico-3: uf2 takes \.uf2 images, not fw\.bin"):
        flasher.check_image(Path("fw.bin"))


def test_deadline_counts_down_on_its_clock() -> None:
    now = [100.0]
    deadline = Deadline(5.0, clock=lambda: now[0])
    assert deadline.remaining == 5.0 and not deadline.expired
    now[0] = 104.0
    assert deadline.remaining == pytest.approx(1.0)
    now[0] = 105.0
    assert deadline.expired and deadline.remaining == 0.0


def test_poll_until_returns_the_first_truthy_value() -> None:
    answers = iter([None, None, "/dev/ttyACM1"])
    assert poll_until(lambda: next(answers), timeout=5, interval=0.001, what="x", where="b") == (
        "/dev/ttyACM1"
    )


def test_poll_until_fails_at_the_deadline_naming_what_and_where() -> None:
    calls = itertools.count()
    with pytest.raises(FlashError, match=r"^b7: timed out after 0.05s waiting for the drive"):
        poll_until(
            lambda: next(calls) < 0, timeout=0.05, interval=0.01, what="the drive", where="b7"
        )
    assert next(calls) >= 2  # it probed more than once before giving up


def test_wait_for_port_polls_the_resolver_until_the_port_is_back() -> None:
    answers = iter([None, None, "/dev/ttyACM2"])
    target = FlashTarget("b1", port="/dev/ttyACM0", resolve_port=lambda: next(answers))
    assert wait_for_port(target, timeout=5, interval=0.001) == "/dev/ttyACM2"


def test_wait_for_port_without_resolver_returns_none() -> None:
    assert wait_for_port(FlashTarget("b1"), timeout=0.01) is None


def test_enter_bootloader_wraps_the_callers_failure_as_flash_error() -> None:
    def broken() -> None:
        raise OSError("port vanished")

    with pytest.raises(FlashError, match=r"b1: could not ask the board .* OSError: port vanished"):
        enter_bootloader(FlashTarget("b1", enter_bootloader=broken))
    assert enter_bootloader(FlashTarget("b1")) is False


def test_a_registered_flasher_is_a_name_the_rack_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    from hil.drivers import registry
    from hil.rack import Board

    monkeypatch.setattr(registry, "_drivers", {k: dict(v) for k, v in registry._drivers.items()})
    with pytest.raises(ConfigError, match="unknown flasher 'lab-jtag'"):
        Board(id="b", port="/dev/null", platform="rp2", flasher={"name": "lab-jtag"})  # type: ignore[arg-type]

    @register_flasher
    class LabJtag(Flasher):
        name = "lab-jtag"

        def flash(self, image: Path, progress: base.ProgressFn = base.no_progress) -> None:
            raise NotImplementedError

    board = Board(id="b", port="/dev/null", platform="rp2", flasher={"name": "lab-jtag"})  # type: ignore[arg-type]
    assert board.flasher is not None and flasher_class(board.flasher.name) is LabJtag
