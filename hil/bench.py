"""A bench board, given by its port alone (``--hil-port``): the board itself says what it is.

Why ask rather than assume: a developer's board may be any port, firmware and wiring. Its
platform is what its ``sys.platform`` says, its capabilities are what the probe finds (plus what
the developer states where no probe can tell, such as the SD card's driver and slot: ``--hil-sd``),
and its id is stable across runs: its unique id, or the name the developer gives, never the device
path that changes when the port re-enumerates (test ids and report history hang on it).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from hil.errors import ConfigError
from hil.rack import (
    Board,
    Capabilities,
    Rack,
    SdSlot,
    auto_port,
    bench_board_id,
    canonical_platform,
    parse_port,
    resolve_port,
    safe_board_id,
)

#: How long the bench board may take to answer at start.
CONNECT_SECONDS = 10.0


def bench_rack(
    port: str, *, name: str | None = None, sd: SdSlot | bool | None = None
) -> tuple[Rack, Any]:
    """One bench board as a rack, and what its probe found (its ``BoardFacts``).

    ``sd``: the card as the user states it, ``False`` for "no card", None to use the probe's.
    """
    from hil.board import Board as BoardLink

    spec = parse_port(auto_port().device if port == "auto" else port)
    if spec.kind == "device" and sys.platform != "win32" and not os.path.exists(spec.value):
        # waiting for the port to appear is for a board that re-enumerates, not for a typo
        raise ConfigError(
            "--hil-port: no such device (is the board plugged in? "
            "'--hil-port auto' finds a connected one)",
            where=spec.value,
        )
    with BoardLink.open(resolve_port(spec, where=port), name=port, wait=CONNECT_SECONDS) as link:
        facts = link.facts
        unique_id = link.identity().unique_id
    platform = canonical_platform(facts.platform)
    if name:
        board_id = name
    elif unique_id:
        board_id = safe_board_id(f"{platform}-", unique_id)
    else:
        board_id = bench_board_id(spec)
    slot = sd if isinstance(sd, SdSlot) else (None if sd is False else sd_from_facts(facts))
    entry = Board(
        id=board_id,
        port=str(spec) if spec.kind != "device" else spec.value,
        platform=platform,
        tags=("bench",),
        capabilities=Capabilities(sd=slot),
    )
    return Rack(boards=(entry,)), facts


def sd_from_facts(facts: Any) -> SdSlot | None:
    """The SD slot the probe found, as a rack would declare it (None: no card found)."""
    card = getattr(facts, "sd", None)
    if card is None:
        return None
    driver = getattr(card, "driver", None)
    mount = getattr(card, "mount", None) or "/sd"
    if driver == "machine.SDCard":
        return SdSlot(driver="machine.SDCard", slot=getattr(card, "slot", None), mount=mount)
    if driver == "pyb.SDCard" or (driver == "mounted" and facts.platform == "pyboard"):
        return SdSlot(driver="pyb.SDCard", mount=mount)  # stm32 mounts its card at boot
    return None  # mounted by firmware we cannot remount: the user states it (--hil-sd)
