"""Board kinds: the host interface the server drives, the registry of kinds, and the control
verbs a kind without some part answers with a clear error.

The "fake kind" hosts here stand in for a board kind the server would run; they record calls
instead of running a board (the real kinds are tested against real interpreters in
tests/integration)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.errors import ConfigError, SimError
from hil.sim import hosts, verbs
from hil.sim.config import BoardConfig
from hil.sim.host import BoardHost
from hil.sim.states import BoardState


class FakeKindHost(hosts.WithoutOptionalParts):
    """A fake board kind with a wire but no card slot, bootloader or firmware slot."""

    def __init__(self, config: BoardConfig, schedule: hosts.Schedule) -> None:
        self.config = config
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def prepare(self) -> None: ...
    def power_on(self) -> None: ...
    def shutdown(self) -> None: ...
    def crash(self) -> None: ...

    def readers(self) -> dict[int, Callable[[], None]]:
        return {}

    def writers(self) -> dict[int, Callable[[], None]]:
        return {}

    def pump(self, now: float) -> float | None:
        return None

    def status(self) -> dict[str, Any]:
        return {"name": self.config.name, "state": BoardState.READY.value}

    def hard_reset(self) -> None:
        self._record("hard_reset")

    def power(self, on: bool) -> None:
        self._record("power", on)

    def usb_unplug(self) -> None:
        self._record("usb_unplug")

    def usb_replug(self, new_path: bool = False) -> None:
        self._record("usb_replug", new_path)

    def set_fault(self, kind: str, params: dict[str, Any]) -> None:
        self._record("set_fault", kind, params)

    def clear_faults(self) -> None:
        self._record("clear_faults")

    def set_baud(self, baud: int | None) -> None:
        self._record("set_baud", baud)


def fake_config(tmp_path: Path) -> BoardConfig:
    return BoardConfig(name="mb0", directory=tmp_path, interpreter=[], kind="fakebit")


@pytest.fixture
def fake(tmp_path: Path) -> FakeKindHost:
    return FakeKindHost(fake_config(tmp_path), lambda delay, action: None)


def ask(host: hosts.Host, **request: Any) -> dict[str, Any]:
    """One control request line through the server's request handling."""
    line = json.dumps(request).encode()
    return verbs.answer(line, lambda op, args: verbs.apply(host, op, args))


def test_a_fake_kind_satisfies_the_host_interface(fake: FakeKindHost) -> None:
    assert isinstance(fake, hosts.Host)


def test_verbs_reach_the_host_with_the_control_socket_arguments(fake: FakeKindHost) -> None:
    assert ask(fake, op="reset") == {"ok": True}
    assert ask(fake, op="power", on=False) == {"ok": True}
    assert ask(fake, op="replug", new_path=True) == {"ok": True}
    assert ask(fake, op="fault", kind="drop", count=3) == {"ok": True}
    assert ask(fake, op="baud", rate=0) == {"ok": True}
    assert ask(fake, op="status") == {"ok": True, "name": "mb0", "state": "ready"}
    assert fake.calls == [
        ("hard_reset", ()),
        ("power", (False,)),
        ("usb_replug", (True,)),
        ("set_fault", ("drop", {"count": 3})),
        ("set_baud", (None,)),
    ]


@pytest.mark.parametrize(
    ("request_", "part"),
    [
        ({"op": "card_eject"}, "SD slot"),
        ({"op": "card_insert", "slot": 2}, "SD slot"),
        ({"op": "bootloader"}, "UF2 bootloader"),
        ({"op": "erase"}, "flash filesystem"),
        ({"op": "flash", "image": "/nonexistent.img"}, "firmware slot"),
    ],
)
def test_a_verb_for_a_missing_part_is_a_clear_refusal(
    fake: FakeKindHost, request_: dict[str, Any], part: str
) -> None:
    reply = ask(fake, **request_)
    assert reply["ok"] is False
    assert reply["error"].startswith(f"Unsupported: board kind 'fakebit' has no {part}")
    assert fake.calls == []


def test_a_host_class_without_the_method_is_refused_not_crashed(tmp_path: Path) -> None:
    class Minimal:  # a fake kind that does not even have set_baud
        config = fake_config(tmp_path)

    reply = ask(Minimal(), op="baud", rate=9600)  # type: ignore[arg-type]
    assert reply == {
        "ok": False,
        "error": "Unsupported: board kind 'fakebit' has no 'baud' (board mb0)",
    }


def test_bad_request_lines_are_answered_not_raised(fake: FakeKindHost) -> None:
    assert verbs.answer(b"{not json", lambda op, a: None)["ok"] is False
    assert "with an 'op'" in verbs.answer(b"[1, 2]", lambda op, a: None)["error"]
    assert ask(fake, op="dance") == {"ok": False, "error": "ValueError: unknown request 'dance'"}


@pytest.fixture
def registry() -> Iterator[dict[str, Any]]:
    saved = dict(hosts.HOST_KINDS)
    yield hosts.HOST_KINDS
    hosts.HOST_KINDS.clear()
    hosts.HOST_KINDS.update(saved)


def test_the_unix_kind_is_the_default_and_resolves_lazily() -> None:
    assert BoardConfig(name="vb0", directory=Path("."), interpreter=[]).kind == "unix"
    assert hosts.host_class("unix") is BoardHost


def test_a_registered_kind_is_found(registry: dict[str, Any]) -> None:
    hosts.register_kind("fakebit", FakeKindHost)
    assert hosts.host_class("fakebit") is FakeKindHost
    hosts.register_kind("fakebit2", f"{__name__}:FakeKindHost")
    assert hosts.host_class("fakebit2") is FakeKindHost


def test_unknown_and_missing_kinds_are_clear_errors(registry: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"unknown board kind 'nope' \(known: .*unix"):
        hosts.host_class("nope")
    hosts.register_kind("ghost", "hil.sim.no_such_kind.host:GhostHost")
    with pytest.raises(SimError, match=r"needs the module hil\.sim\.no_such_kind\.host"):
        hosts.host_class("ghost")
    hosts.register_kind("attrless", "hil.sim.states:NoSuchHost")
    with pytest.raises(SimError, match="has no 'NoSuchHost'"):
        hosts.host_class("attrless")


def test_a_kind_whose_own_import_is_broken_shows_the_bug(
    registry: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "brokenkind.py").write_text("import hil_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hosts.register_kind("broken", "brokenkind:Host")
    with pytest.raises(ModuleNotFoundError, match="hil_no_such_dependency"):
        hosts.host_class("broken")


def test_the_unix_host_satisfies_the_interface_and_starts_off(tmp_path: Path) -> None:
    config = BoardConfig(name="vb0", directory=tmp_path, interpreter=["false"], sd_slots={2: 0})
    host = BoardHost(config, lambda delay, action: None)
    try:
        assert isinstance(host, hosts.Host)
        status = host.status()
        assert (status["state"], status["kind"], status["plugged"]) == ("off", "unix", False)
        assert ask(host, op="card_eject", slot=5)["error"] == (
            "ValueError: board vb0 has no SD slot 5"
        )
    finally:
        host.shutdown()
