"""The fault injector on its own: names and parameters as the control socket sends them, the
bytes it chooses, and what a board kind that cannot model a fault answers."""

from __future__ import annotations

import random

import pytest

from hil.sim.faults import WIRE_FAULTS, FaultInjector, UnsupportedFault, noise


class Clock:
    now = 50.0

    def __call__(self) -> float:
        return self.now


def test_noise_is_reproducible_from_its_seed() -> None:
    rng = random.Random(7)
    assert noise(48, 7) == bytes(rng.randrange(256) for _ in range(48))
    assert noise(48, 7) != noise(48, 8)
    assert len(noise(3)) == 3


def test_noise_is_returned_for_the_wire_and_leaves_no_setting() -> None:
    faults = FaultInjector()
    assert faults.inject("noise", {"count": 16, "seed": 3}) == noise(16, 3)
    assert faults.describe() == {
        "stall": 0.0,
        "drop": 0,
        "corrupt": 0,
        "noise": 0,
        "slow_boot": 0.0,
        "raw_paste": "",
        "hang": False,
    }


def test_drop_takes_bytes_across_several_chunks() -> None:
    faults = FaultInjector()
    assert faults.inject("drop", {"count": 4}) == b""
    assert faults.apply_drop(b"ab") == b""
    assert faults.apply_drop(b"cdef") == b"ef"
    assert faults.apply_drop(b"gh") == b"gh"
    assert faults.drop == 0


def test_stall_counts_down_on_the_clock() -> None:
    clock = Clock()
    faults = FaultInjector(clock=clock)
    faults.inject("stall", {"seconds": 1.5})
    assert faults.stalled(clock.now) == pytest.approx(1.5)
    clock.now += 1.0
    assert faults.describe()["stall"] == pytest.approx(0.5)
    assert faults.stalled(clock.now + 1.0) == 0.0


def test_defaults_match_the_control_socket_documentation() -> None:
    faults = FaultInjector()
    faults.inject("drop", {})
    faults.inject("slow_boot", {})
    faults.inject("raw_paste_abort", {})
    assert (faults.drop, faults.slow_boot, faults.raw_paste) == (1, 2.0, "abort 64")
    faults.inject("no_raw_paste", {})
    assert faults.raw_paste == "refuse"
    faults.inject("no_raw_paste", {"style": "old"})
    assert faults.raw_paste == "old"


def test_bad_style_and_unknown_fault_are_refused_by_name() -> None:
    faults = FaultInjector()
    with pytest.raises(ValueError, match="style must be 'refuse' or 'old'"):
        faults.inject("no_raw_paste", {"style": "maybe"})
    with pytest.raises(ValueError, match=r"unknown fault 'fire' \(stall, hang, noise"):
        faults.inject("fire", {})


def test_a_kind_without_firmware_faults_refuses_them_clearly() -> None:
    faults = FaultInjector(WIRE_FAULTS, kind="microbit")
    faults.inject("drop", {"count": 2})
    with pytest.raises(UnsupportedFault, match="board kind 'microbit' cannot model the fault"):
        faults.inject("slow_boot", {"seconds": 1})
    assert faults.slow_boot == 0.0


def test_clear_removes_everything_and_says_whether_the_board_was_hung() -> None:
    faults = FaultInjector()
    faults.inject("hang", {})
    faults.inject("drop", {"count": 9})
    faults.inject("stall", {"seconds": 5})
    assert faults.clear() is True
    assert faults.describe()["hang"] is False and faults.drop == 0 and faults.stalled(0) == 0
    assert faults.clear() is False


def test_corrupt_alters_at_most_count_bytes_towards_the_host_only() -> None:
    faults = FaultInjector()
    faults.inject("corrupt", {"rate": 0.5, "count": 3, "seed": 1})
    data = bytes(range(200))
    assert faults.to_board(data) == data  # direction tx: the host's bytes pass
    out = faults.to_host(data)
    assert len(out) == len(data) and sum(a != b for a, b in zip(out, data, strict=True)) == 3
    assert faults.corrupt == 0 and faults.to_host(data) == data


def test_corrupt_both_ways_and_a_rate_must_be_a_probability() -> None:
    faults = FaultInjector()
    faults.inject("corrupt", {"rate": 1.0, "count": 2, "direction": "both", "seed": 2})
    assert sum(a != b for a, b in zip(faults.to_board(b"abcd"), b"abcd", strict=True)) == 2
    for rate in (0, 1.5, -1):
        with pytest.raises(ValueError, match="probability"):
            faults.inject("corrupt", {"rate": rate})
    with pytest.raises(ValueError, match="direction"):
        faults.inject("corrupt", {"direction": "up"})


def test_drop_and_noise_with_a_rate_act_anywhere_in_the_stream() -> None:
    faults = FaultInjector()
    faults.inject("drop", {"rate": 0.1, "count": 5, "seed": 3})
    data = bytes(range(100)) * 3
    out = faults.to_host(data)
    assert len(out) == len(data) - 5 and out != data[5:]  # not only at the chunk's start
    assert faults.drop == 0
    faults.inject("noise", {"rate": 0.1, "count": 4, "seed": 4})
    out = faults.to_host(data)
    assert len(out) == len(data) + 4 and faults.noise == 0
