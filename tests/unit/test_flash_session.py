"""``hil.flash.session`` against scripted boards: what is retried and what fails at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from hil.errors import FlashError, LinkError
from hil.flash.manifest import FirmwareEntry
from hil.flash.session import wait_for_version

PIN = "v1.24.1 on 2024-11-29"
ENTRY = FirmwareEntry(id="pico", platform="rp2", image="x.uf2", sha256="0" * 64, version=PIN)


class ScriptedBoard:
    """A board whose ``eval`` answers from a script (values, or exceptions to raise)."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def __enter__(self) -> ScriptedBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def eval(self, expression: str, *, timeout: float = 10.0) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def opener(*answers: object) -> tuple[Callable[[], Any], list[object]]:
    """An ``open_board`` giving each answer in turn (the last one for good), and its log."""
    log: list[object] = []

    def open_board() -> ScriptedBoard:
        answer = answers[min(len(log), len(answers) - 1)]
        log.append(answer)
        return ScriptedBoard(answer)

    return open_board, log


def test_a_board_still_booting_is_retried_until_it_answers() -> None:
    open_board, log = opener(LinkError("no port yet"), LinkError("no port yet"), PIN + "\r\n")
    assert wait_for_version(open_board, ENTRY, where="pico-1", timeout=5, interval=0.01) == PIN
    assert len(log) == 3


def test_a_board_that_never_answers_did_not_answer() -> None:
    open_board, _ = opener(LinkError("no port yet"))
    with pytest.raises(FlashError, match=r"^pico-1: board did not answer within 0.2s"):
        wait_for_version(open_board, ENTRY, where="pico-1", timeout=0.2, interval=0.01)


def test_an_answer_that_is_no_version_fails_at_once() -> None:
    open_board, log = opener(42)
    started = time.monotonic()
    with pytest.raises(FlashError, match=r"^pico-1: board answered os.uname\(\).version with 42"):
        wait_for_version(open_board, ENTRY, where="pico-1", timeout=5, interval=0.01)
    assert time.monotonic() - started < 1
    assert len(log) == 1  # asked once: waiting would not change what was written


def test_another_version_fails_at_once() -> None:
    open_board, log = opener("v1.23.0 on 2024-06-02")
    with pytest.raises(FlashError, match=r"^pico-1: board reports os.uname\(\).version = "):
        wait_for_version(open_board, ENTRY, where="pico-1", timeout=5, interval=0.01)
    assert len(log) == 1
