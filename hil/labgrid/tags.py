"""A rack entry as the tags of a labgrid place, and back; a selector as a reservation filter.

Tags are what labgrid schedules reservations on (``key=value``, all of a filter must match), and
what a person sees in ``labgrid-client places``. So each fact a selector asks for is a tag of its
own: ``board``, ``platform``, ``tag_<tag>=1``, ``cap_<feature>=1``, ``reset``, ``power``. The
whole entry (SD slot details, driver options, baud rate) rides along as JSON in ``hil_entry``, from
which the run rebuilds the rack entry exactly. ``hil`` is the place's state for us: ``ready``, or
``quarantined`` (the comment says why); reservations ask for ``hil=ready``, so a quarantined place
is never handed out until a person clears it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from hil.errors import ConfigError
from hil.rack._validate import InvalidField, from_table
from hil.rack.inventory import Board, DriverRef
from hil.rack.selector import Selector

STATE = "hil"
READY = "ready"
QUARANTINED = "quarantined"
ENTRY = "hil_entry"
#: The heartbeat of a place's holder (see :mod:`hil.labgrid.leases`).
BEAT = "hil_beat"

_KEY = re.compile(r"[^a-z0-9_]+")


def tag_key(prefix: str, name: str) -> str:
    """``tag_<name>`` in labgrid's key alphabet (lower case letters, digits, ``_``)."""
    return prefix + (_KEY.sub("_", name.lower()).strip("_") if name else "")


def _driver(ref: DriverRef | None) -> Any:
    if ref is None:
        return None
    if not ref.options:
        return ref.name
    return {"name": ref.name, "options": {k: _plain(v) for k, v in ref.options.items()}}


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def entry_table(board: Board) -> dict[str, Any]:
    """The rack entry's table, without id and port (the place gives those)."""
    sd = board.capabilities.sd
    capabilities: dict[str, Any] = {"features": list(board.capabilities.features)}
    if sd is not None:
        table: dict[str, Any] = {"driver": sd.driver, "mount": sd.mount}
        for name in ("slot", "spi"):
            if getattr(sd, name) is not None:
                table[name] = getattr(sd, name)
        if sd.pins is not None:
            pins = {k: v for k, v in vars(sd.pins).items() if v is not None}
            table["pins"] = pins
        capabilities["sd"] = table
    data: dict[str, Any] = {
        "platform": board.platform,
        "tags": list(board.tags),
        "capabilities": capabilities,
        "reset": _driver(board.reset),
        "baudrate": board.baudrate,
    }
    for name in ("power", "flasher"):
        value = _driver(getattr(board, name))
        if value is not None:
            data[name] = value
    if board.firmware is not None:
        data["firmware"] = board.firmware
    if getattr(board, "group", None) is not None:
        data["group"] = board.group
    return data


def place_tags(board: Board) -> dict[str, str]:
    """The tags of the place that offers ``board`` (its state not included)."""
    tags = {
        "board": board.id,
        "platform": board.platform,
        "reset": board.reset.name,
        ENTRY: json.dumps(entry_table(board), separators=(",", ":"), sort_keys=True),
    }
    if board.power is not None:
        tags["power"] = board.power.name
    for tag in board.tags:
        tags[tag_key("tag_", tag)] = "1"
    for feature in sorted(board.capabilities.names):
        tags[tag_key("cap_", feature)] = "1"
    return tags


def board_of(place_name: str, tags: Mapping[str, str], port: str) -> Board:
    """The rack entry of a place of ours, reached through ``port``; ``ConfigError`` naming the
    place when its tags are not ours or do not make a valid entry."""
    text = tags.get(ENTRY)
    if text is None:
        raise ConfigError(
            f"place has no {ENTRY} tag (not set up by `hil lab places`)", where=place_name
        )
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a table")
        return from_table(Board, {**data, "id": place_name, "port": port})
    except (ValueError, InvalidField) as error:
        raise ConfigError(f"bad {ENTRY} tag: {error}", where=place_name) from None


def reservation_filter(selector: Selector) -> dict[str, str]:
    """The tags a reservation asks for, so that only places the selector may use are allocated.

    Capabilities are left out: a board may have one by its probe that its place does not
    declare (the harness checks the probed ones after the lease, and skips naming what lacks).
    """
    wanted = {STATE: READY}
    if selector.id is not None:
        wanted["name"] = selector.id
    if selector.platform is not None:
        wanted["platform"] = selector.platform
    for tag in selector.tags:
        wanted[tag_key("tag_", tag)] = "1"
    return wanted
