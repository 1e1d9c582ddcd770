"""The fault injector of a virtual board: what goes wrong on demand, and its parameters.

Why a part of its own: the control socket's ``fault`` verb, the wire (stall, hang, drop, noise,
corrupt) and the board's firmware (slow boot, raw-paste refusal) all read the same few settings;
keeping them here means one list of names and parameters, checked once, for every board kind. A
kind says which faults it can model (``supported``); asking for another one is a clear error.

Drop, noise and corrupt act on bytes in flight (``to_host``, ``to_board``): with a ``rate``, each
byte crossing the wire is hit with that probability, anywhere in the stream, until ``count``
bytes were hit; ``seed`` makes the choices reproducible. Without a rate, drop takes the next
``count`` bytes and noise puts ``count`` bytes on the wire at once (as they always did).
Corrupt acts on the board's bytes towards the host, and with ``direction="both"`` on the host's
bytes towards the board too (a link without flow control, where ``hil.checked`` guards code).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from hil.sim.firmware import linkcodes as code

#: Faults that act on the wire: any board kind with a ``Relay`` can have them.
WIRE_FAULTS = ("stall", "hang", "noise", "drop", "corrupt")
#: Faults that the board's own firmware acts out (the unix kind's hilfw.py asks for them).
FIRMWARE_FAULTS = ("slow_boot", "no_raw_paste", "raw_paste_abort")
ALL_FAULTS = WIRE_FAULTS + FIRMWARE_FAULTS


class UnsupportedFault(ValueError):
    """A fault that this board kind cannot model (the server answers with the message)."""


class FaultInjector:
    """The faults injected into one board, until cleared (or, for a hang, a reset).

    ``inject`` validates a request from the control socket and records it; the wire and the
    firmware link read the settings (``stalled``, ``hang``, ``apply_drop``, ``slow_boot``,
    ``raw_paste``).
    """

    def __init__(
        self,
        supported: tuple[str, ...] = ALL_FAULTS,
        kind: str = "unix",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.supported = supported
        self.kind = kind
        self._clock = clock
        self.stall_until = 0.0
        self.drop = 0
        self.slow_boot = 0.0
        #: In-flight faults: a probability per byte crossing the wire, and how many bytes are
        #: still to be dropped, altered or followed by a noise byte.
        self.drop_rate = 1.0
        self.corrupt = 0
        self.corrupt_rate = 0.0
        self.corrupt_both = False
        self.noise = 0
        self.noise_rate = 0.0
        self._rng = random.Random()
        #: What the firmware answers a raw-paste request with: "", PASTE_REFUSE, PASTE_OLD or
        #: PASTE_ABORT + " <n>" (see linkcodes).
        self.raw_paste = ""
        self.hang = False

    def inject(self, kind: str, params: dict[str, Any]) -> bytes:
        """Record fault ``kind`` with ``params`` (the control socket's names); returns the bytes
        to put on the wire towards the host now (the noise fault), else ``b""``.

        The caller acts out a hang on its board (stop its CPU) when ``hang`` became True."""
        if kind not in ALL_FAULTS:
            raise ValueError(f"unknown fault {kind!r} ({', '.join(ALL_FAULTS)})")
        if kind not in self.supported:
            raise UnsupportedFault(
                f"board kind {self.kind!r} cannot model the fault {kind!r} "
                f"(it has: {', '.join(self.supported)})"
            )
        if kind == "stall":
            self.stall_until = self._clock() + float(params.get("seconds", 1.0))
        elif kind == "hang":
            self.hang = True
        elif kind == "noise":
            # without a rate: ``count`` bytes on the wire now; with one: each byte the board
            # sends is followed by a noise byte with that probability, ``count`` in all
            if "rate" not in params:
                return noise(int(params.get("count", 32)), params.get("seed"))
            self._seed(params)
            self.noise, self.noise_rate = int(params.get("count", 32)), _rate(params, 0.01)
        elif kind == "drop":
            # rate 1 (default): the next ``count`` bytes from the board; else each byte
            # crossing is lost with that probability, ``count`` in all
            self._seed(params)
            self.drop, self.drop_rate = int(params.get("count", 1)), _rate(params, 1.0)
        elif kind == "corrupt":
            # each byte crossing (board to host; with direction "both" host to board too) is
            # altered with probability ``rate``, at most ``count`` bytes in all
            self._seed(params)
            self.corrupt, self.corrupt_rate = int(params.get("count", 1)), _rate(params, 0.01)
            direction = params.get("direction", "tx")
            if direction not in ("tx", "both"):
                raise ValueError(f"corrupt direction must be 'tx' or 'both', not {direction!r}")
            self.corrupt_both = direction == "both"
        elif kind == "slow_boot":
            self.slow_boot = float(params.get("seconds", 2.0))
        elif kind == "no_raw_paste":
            # "refuse": firmware without raw-paste (R\x00); "old": firmware older than
            # raw-paste, which takes Ctrl-E A Ctrl-A as a plain raw REPL reset
            style = params.get("style", code.PASTE_REFUSE)
            if style not in (code.PASTE_REFUSE, code.PASTE_OLD):
                raise ValueError(f"no_raw_paste style must be 'refuse' or 'old', not {style!r}")
            self.raw_paste = style
        elif kind == "raw_paste_abort":
            self.raw_paste = f"{code.PASTE_ABORT} {int(params.get('after', 64))}"
        return b""

    def clear(self) -> bool:
        """Remove every fault; True when the board was hung (its caller wakes it)."""
        hung = self.hang
        self.stall_until = 0.0
        self.drop = 0
        self.corrupt = 0
        self.noise = 0
        self.slow_boot = 0.0
        self.raw_paste = ""
        self.hang = False
        return hung

    def stalled(self, now: float) -> float:
        """Seconds the line stays stalled from ``now`` (0.0: it moves)."""
        return max(0.0, self.stall_until - now)

    def _seed(self, params: dict[str, Any]) -> None:
        if params.get("seed") is not None:
            self._rng = random.Random(params["seed"])

    def apply_drop(self, data: bytes) -> bytes:
        """What is left of the board's output ``data`` after the drop fault took its bytes."""
        if not self.drop or not data or self.drop_rate < 1.0:
            return data
        cut = min(self.drop, len(data))
        self.drop -= cut
        return data[cut:]

    def to_host(self, data: bytes) -> bytes:
        """The board's output as it reaches the host: dropped, altered, noise added in flight."""
        data = self.apply_drop(data)
        if not data or not (self.drop or self.corrupt or self.noise):
            return data
        return self._in_flight(data, drop=True, noise=True)

    def to_board(self, data: bytes) -> bytes:
        """The host's bytes as they reach the board (only ``corrupt`` with direction both)."""
        if not data or not (self.corrupt and self.corrupt_both):
            return data
        return self._in_flight(data, drop=False, noise=False)

    def _in_flight(self, data: bytes, *, drop: bool, noise: bool) -> bytes:
        rng = self._rng
        out = bytearray()
        for byte in data:
            if drop and self.drop and rng.random() < self.drop_rate:
                self.drop -= 1
                continue
            if self.corrupt and rng.random() < self.corrupt_rate:
                self.corrupt -= 1
                byte ^= rng.randrange(1, 256)
            out.append(byte)
            if noise and self.noise and rng.random() < self.noise_rate:
                self.noise -= 1
                out.append(rng.randrange(256))
        return bytes(out)

    def describe(self) -> dict[str, Any]:
        return {
            "stall": self.stalled(self._clock()),
            "drop": self.drop,
            "corrupt": self.corrupt,
            "noise": self.noise,
            "slow_boot": self.slow_boot,
            "raw_paste": self.raw_paste,
            "hang": self.hang,
        }


def _rate(params: dict[str, Any], default: float) -> float:
    rate = float(params.get("rate", default))
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be a probability in (0, 1], not {rate!r}")
    return rate


def noise(count: int, seed: Any = None) -> bytes:
    """``count`` random bytes; the same ``seed`` gives the same bytes (a test can expect them)."""
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(count))
