"""The control socket's verbs, applied to one board's host (any kind).

Why apart from the server: this is the control protocol (``hil.sim.control.SimControl`` is its
client), a table from request to host method. A request for a part the board's kind does not
have is refused by the host (``hil.sim.hosts.Unsupported``) or, when its class lacks the method
altogether, here; either way the client gets a clear error, and the server carries on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.sim import inputs
from hil.sim.hosts import Host, Unsupported, unsupported

Args = dict[str, Any]
Result = dict[str, Any] | None


def _done(_: object) -> None:
    """A verb whose answer is just "ok" (whatever the host method returned)."""


def _slot(args: Args) -> int | None:
    """The card slot a request names (None: the board's first slot)."""
    slot = args.get("slot")
    return None if slot is None else int(slot)


def _fault(method: Callable[..., Any], args: Args) -> None:
    kind = args.pop("kind")
    method(kind, inputs.fault_params(args))


def _baud(args: Args) -> int | None:
    """The ``baud`` verb's rate: a positive number of bits per second, or 0/None for none."""
    rate = args.get("rate")
    return inputs.baud(rate) if rate else None


#: request op -> (host method, how to call it with the request's arguments and shape its answer)
VERBS: dict[str, tuple[str, Callable[[Callable[..., Any], Args], Result]]] = {
    "status": ("status", lambda m, a: dict(m())),
    "reset": ("hard_reset", lambda m, a: _done(m())),
    "power": ("power", lambda m, a: _done(m(bool(a["on"])))),
    "unplug": ("usb_unplug", lambda m, a: _done(m())),
    "replug": ("usb_replug", lambda m, a: _done(m(new_path=bool(a.get("new_path", False))))),
    "card_eject": ("card_eject", lambda m, a: _done(m(_slot(a)))),
    "card_insert": (
        "card_insert",
        lambda m, a: {"image": str(m(_slot(a), a.get("image"), a.get("size")))},
    ),
    "fault": ("set_fault", lambda m, a: _done(_fault(m, a))),
    "clear_faults": ("clear_faults", lambda m, a: _done(m())),
    "baud": ("set_baud", lambda m, a: _done(m(_baud(a)))),
    "bootloader": ("enter_bootloader", lambda m, a: {"drive": str(m())}),
    "erase": ("erase_flash", lambda m, a: _done(m())),
    "flash": (
        "flash",
        lambda m, a: _done(m(Path(a["image"]).read_bytes(), erase=bool(a.get("erase", False)))),
    ),
}


def apply(host: Host, op: str, args: Args) -> Result:
    """Apply the control verb ``op`` with ``args`` to ``host``; its answer's extra fields."""
    entry = VERBS.get(op)
    if entry is None:
        raise ValueError(f"unknown request {op!r}")
    name, call = entry
    method = getattr(host, name, None)
    part = getattr(method, "missing_part", None)
    if part is not None:
        raise unsupported(host.config, part)
    if method is None:
        raise Unsupported(
            f"board kind {host.config.kind!r} has no {op!r} (board {host.config.name})"
        )
    return call(method, args)


def answer(line: bytes, run: Callable[[str, Args], Result]) -> dict[str, Any]:
    """The reply to one request line: ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``.

    ``run(op, args)`` carries out the request; whatever it raises becomes the error text (the
    server must outlive any bad request)."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            raise ValueError(f"a request is a JSON object with an 'op', not {line[:80]!r}")
        op = request.pop("op")
        result = run(op, request)
    except Exception as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, **(result or {})}
