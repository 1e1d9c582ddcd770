"""What a test did on a board, as Allure steps, attachments, labels and parameters.

A HIL failure is only useful when the report shows what was sent to the board, what came back,
how long it took and which board (and firmware) it was. These helpers write exactly that through
allure-commons' hooks, the API that allure-pytest implements.

Everything here is a no-op costing one hook lookup when no Allure listener records the run
(pytest without ``--alluredir``, or allure-pytest not installed): the REPL calls
``exchange_step`` after every exchange and must not pay for rendering bytes nobody keeps.

Call these from the thread that runs the test: allure-pytest keeps the "current test" per thread,
so a step recorded from another thread would not land in the test.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from hil import board_text
from hil.transcript import CONTROL_NAMES

try:  # allure-pytest is the optional "report" extra: without it, reporting is off
    import allure_commons
    from allure_commons.types import AttachmentType
except ImportError:  # pragma: no cover - exercised only where the extra is missing
    allure_commons = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Longest step title summary of what was sent (the attachment has all of it).
TITLE_CHARS = 60
#: Largest attachment of one exchange; a deployed file can be big, its bytes are in the transcript.
ATTACHMENT_CHARS = 64 * 1024

#: The REPL's control bytes by name (``<CTRL-D>``); which characters are escaped at all, and
#: how the others look (``\\r``, ``\\x1b``, ``\\x9b``), is ``hil.board_text``'s rule.
_NAMES = {chr(code): name for code, name in CONTROL_NAMES.items()}
#: The attachment of a step or test that shows what a person would have seen at the REPL,
#: and the one with every byte as it crossed the link.
REPL_NAME, WIRE_NAME = "REPL session", "wire"
#: A step's own piece of it.
STEP_REPL_NAME = "REPL"


def is_active() -> bool:
    """True when an Allure listener records this run (pytest with ``--alluredir``)."""
    if allure_commons is None:
        return False
    return bool(allure_commons.plugin_manager.hook.start_step.get_hookimpls())


def readable(data: bytes, *, limit: int | None = ATTACHMENT_CHARS) -> str:
    """Board bytes as text: UTF-8 where valid, ``\\r\\n`` as a newline, control bytes visible.

    ``<CTRL-D>`` and friends show the REPL protocol; invalid UTF-8 shows as ``\\xNN``. Over
    ``limit`` characters the middle is cut and the cut says how much.
    """
    text = data.decode("utf-8", "backslashreplace").replace("\r\n", "\n")
    text = board_text.escape(text, names=_NAMES)
    return text if limit is None else _limit(text, limit)


def summarize(sent: bytes, *, width: int = TITLE_CHARS) -> str:
    """A one-line summary of code, for a step title: its first non-blank line."""
    decoded = sent.decode("utf-8", "replace")
    text = "".join(ch for ch in decoded if board_text.is_shown(ch))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return readable(sent, limit=width) if sent else ""
    first = lines[0]
    if len(first) > width:
        first = first[: width - 1] + "…"
    if len(lines) > 1:
        more = len(lines) - 1
        first += f" (+{more} line{'s' if more > 1 else ''})"
    return first


#: Step titles per kind of exchange (``hil.repl.Exchange.title`` starts with the kind).
KIND_TITLES = {"friendly": "type at >>>", "launch": "launch"}


def step_title(title: str, sent: bytes) -> str:
    """``exec: print(1)``, ``eval: 1 + 1``, ``soft reset``: what the exchange did, in short.

    The code is read back from what was sent (the REPL protocol's framing removed), so the
    title shows what the test ran; an ``eval`` shows its expression, not our ``print(repr())``.
    """
    from hil.replview import eval_expression, exec_parts, unwrap_code

    kind = title.split(":", 1)[0].strip() or "exchange"
    if kind in ("exec", "launch"):
        code = unwrap_code(exec_parts(sent, b"")[0])[0]
        if not code.strip() and ":" in title:  # never sent (a hung board): the driver's summary
            code = title.split(":", 1)[1].strip().replace("\\n", "\n").encode()
        expression = eval_expression(code)
        if expression is not None and kind == "exec":
            kind, code = "eval", expression
        summary = summarize(code)
        return f"{kind}: {summary}" if summary else kind
    if kind == "friendly":
        typed = summarize(sent.replace(b"\r", b"\n"))
        return f"{KIND_TITLES[kind]}: {typed}" if typed else KIND_TITLES[kind]
    return kind


def exchange_step(
    title: str,
    sent: bytes,
    received: bytes,
    seconds: float,
    board: str,
    *,
    error: BaseException | None = None,
) -> None:
    """Record one finished REPL exchange as an Allure step.

    The step is named after what it did (``exec: print(1)``, ``eval: 1 + 1``, ``soft reset``),
    carries the duration as a parameter and a ``REPL`` attachment (the exchange
    as a person would have seen it at the prompt), and spans the ``seconds`` the exchange took
    in the report's timeline. ``error`` (say a ``RemoteError``) marks the step broken (failed
    for an ``AssertionError``) with its message.

    It is called after the exchange, not around it, so the REPL needs only a listener
    (``Repl.observers``, called with each ``hil.repl.Exchange``) and no knowledge of Allure.
    """
    if not is_active():
        return
    _safely("step", _record_exchange, title, sent, received, seconds, board, error)


def start_action_step(title: str) -> str | None:
    """Open a step for a named action (``put main.py (2.1 kB)``); its uuid, None when off."""
    if not is_active():
        return None
    step_id = str(uuid.uuid4())
    _safely("action step", _start_step, step_id, title)
    return step_id


def stop_action_step(
    step_id: str | None,
    title: str,
    *,
    seconds: float,
    exchanges: int,
    view: str,
    error: BaseException | None = None,
) -> None:
    """Close an action's step: its final title (``deploy firmware/ (5 files, 1 sent)``), how
    long it took and how many exchanges it needed, and its REPL view (helper code included)."""
    if step_id is None or not is_active():
        return
    _safely("action step", _stop_action, step_id, title, seconds, exchanges, view, error)


def _start_step(step_id: str, title: str) -> None:
    allure_commons.plugin_manager.hook.start_step(uuid=step_id, title=title, params={})


def _stop_action(
    step_id: str,
    title: str,
    seconds: float,
    exchanges: int,
    view: str,
    error: BaseException | None,
) -> None:
    hook = allure_commons.plugin_manager.hook
    model = _step_model(step_id)
    if model is not None:
        model.name = title
    if model is not None and hasattr(model, "parameters"):
        from allure_commons.model2 import Parameter

        model.parameters.append(Parameter(name="duration", value=f"{seconds * 1000:.1f} ms"))
        model.parameters.append(Parameter(name="exchanges", value=str(exchanges)))
    if view:
        _attach_text(_limit(view), STEP_REPL_NAME)
    hook.stop_step(
        uuid=step_id,
        title=title,
        exc_type=type(error) if error is not None else None,
        exc_val=error,
        exc_tb=None,  # the message says it; the frames would be mpy-hil's own
    )


def add_parameter(name: str, value: str) -> None:
    """A parameter of the current test, kept out of its history id (board time, heap)."""
    if not is_active():
        return
    _safely("parameter", _parameter, name, value)


def attach_transcript(text: str, name: str = "transcript") -> None:
    """Attach a rendered transcript (``Transcript.render()``) to the current test or step."""
    if not is_active():
        return
    _safely("transcript", _attach_text, text, name)


def label_board(
    board_id: str,
    platform: str,
    port: str,
    firmware: str | None,
    *,
    role: str | None = None,
    board_in_history: bool = False,
    group: str | None = None,
    capabilities: str | None = None,
) -> None:
    """Name the board a test ran on: labels and parameters ``board``, ``platform``, ``port``,
    ``firmware``, plus the platform as a tag.

    The parameters are excluded from Allure's history id, so a test's history follows the test
    across boards and firmware versions instead of starting anew on every board. When one run
    runs a test on several boards (the pytest plugin parametrizes by board), the board must stay
    in the history id (``board_in_history``), or Allure folds the boards' results into retries
    of one test; port, platform and firmware stay out of it. When the parametrization names a
    group of equivalent boards instead (``group``: the pytest plugin's ``--hil-spread group``),
    the parameter ``group`` carries the history id (the same on whichever board of the group
    the test ran) and ``board`` is the board it ran on, out of the history id: each parameter
    is what its name says, where allure-pytest would show the parametrization's group as
    ``board``. ``role`` tells the boards of a multi-board test apart (``board (peer)``). A
    ``None`` firmware (not known) is left out. ``capabilities`` (what the board declares and
    its probe found) is a parameter only.
    """
    if not is_active():
        return
    suffix = f" ({role})" if role else ""
    if group:
        _safely("board group", _parameter, f"group{suffix}", group, False)
    fields = {"board": board_id, "platform": platform, "port": port, "firmware": firmware}
    in_history = {f"board{suffix}"} if board_in_history and not group else set()
    _safely("board labels", _label, {f"{k}{suffix}": v for k, v in fields.items() if v}, in_history)
    if capabilities:
        _safely("board capabilities", _parameter, f"capabilities{suffix}", capabilities)


def label_group(group: str, moved_from: str | None = None) -> None:
    """The group of equivalent boards the test ran in (a label), and, when its first board was
    quarantined, the board it moved from: a test that ran elsewhere says so."""
    if not is_active():
        return
    _safely("group label", _label_only, "group", group)
    if moved_from:
        _safely("moved", _parameter, "moved from (quarantined)", moved_from)


def _label_only(name: str, value: str) -> None:
    allure_commons.plugin_manager.hook.add_label(label_type=name, labels=(value,))


# -- the recording itself (only reached when Allure is active) ---------------------------------


def _record_exchange(
    title: str,
    sent: bytes,
    received: bytes,
    seconds: float,
    board: str,
    error: BaseException | None,
) -> None:
    from hil.replview import exchange_view

    hook = allure_commons.plugin_manager.hook
    step_id = str(uuid.uuid4())
    name = step_title(title, sent)
    params = {"duration": f"{seconds * 1000:.1f} ms"}
    hook.start_step(uuid=step_id, title=name, params=params)
    model = _step_model(step_id)
    try:
        kind = title.split(":", 1)[0].strip()
        _attach_text(_limit(exchange_view(kind, sent, received)), STEP_REPL_NAME)
    finally:
        hook.stop_step(
            uuid=step_id,
            title=name,
            exc_type=type(error) if error is not None else None,
            exc_val=error,
            exc_tb=None,  # the message says it; the frames would be mpy-hil's own
        )
    _backdate(model, seconds)


def _limit(text: str, limit: int = ATTACHMENT_CHARS) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n(... {len(text) - 2 * half} characters cut ...)\n{text[-half:]}"


def _attach_text(text: str, name: str) -> None:
    allure_commons.plugin_manager.hook.attach_data(
        body=text, name=name, attachment_type=AttachmentType.TEXT, extension=None
    )


def _label(fields: dict[str, str], in_history: set[str]) -> None:
    hook = allure_commons.plugin_manager.hook
    for name, value in fields.items():
        hook.add_label(label_type=name, labels=(value,))
        _parameter(name, value, name not in in_history)
    platform = next((v for k, v in fields.items() if k.startswith("platform")), None)
    if platform:
        hook.add_label(label_type="tag", labels=(platform,))


def _parameter(name: str, value: str, excluded: bool = True) -> None:
    """Set a parameter of the current test to ``value`` as it is.

    allure-commons' ``add_parameter`` hook (``allure.dynamic.parameter``) stores
    ``represent(value)``, the ``repr`` of a string: the report would show ``'unix'`` and
    ``'0.132 s'``, and allure-pytest documents no way around it. So the parameter goes into
    the test's result model directly, the way allure-pytest's own listener does it (a
    ``Parameter`` of ``allure_commons.model2`` in the current ``TestResult`` of its reporter,
    as ``_stop_action`` does for steps); where no such model is found, through the hook
    (then quoted). An existing parameter of that name is replaced: one name, one value. The
    history id takes a parameter that is not ``excluded`` by its pytest parametrization's
    value where the test has one of that name, else by this value.
    """
    test = _test_model()
    if test is None or not isinstance(getattr(test, "parameters", None), list):
        allure_commons.plugin_manager.hook.add_parameter(
            name=name, value=value, excluded=excluded, mode=None
        )
        return
    from allure_commons.model2 import Parameter

    test.parameters[:] = [p for p in test.parameters if p.name != name]
    test.parameters.append(Parameter(name=name, value=value, excluded=excluded or None))


def _test_model() -> Any:
    """The current test's result object inside allure-pytest's reporter, or None."""
    return _reporter_item("get_test", None)


def _step_model(step_id: str) -> Any:
    """The step's result object inside allure-pytest's reporter, or None.

    The hooks stamp a step with the time of ``start_step``; the exchange began ``seconds``
    earlier. allure-pytest keeps no public handle for that, so this looks for it and reporting
    works (with a near-zero step duration) wherever it is not found.
    """
    return _reporter_item("get_item", step_id)


def _reporter_item(getter_name: str, key: str | None) -> Any:
    """``allure_logger.<getter_name>(key)`` of the first allure plugin that has it, or None:
    the one way in to allure-pytest's models, kept in one place since it is not public."""
    for plugin in allure_commons.plugin_manager.get_plugins():
        getter = getattr(getattr(plugin, "allure_logger", None), getter_name, None)
        if callable(getter):
            item = getter(key)
            if item is not None:
                return item
    return None


def _backdate(model: Any, seconds: float) -> None:
    """Make the step span the exchange: start ``seconds`` before it stopped (epoch ms)."""
    stop = getattr(model, "stop", None)
    if isinstance(stop, int) and seconds >= 0:
        model.start = stop - round(seconds * 1000)


def _safely(what: str, record: Callable[..., None], *args: Any) -> None:
    """Reporting must never turn a passing test into an error: log the failure and go on."""
    try:
        record(*args)
    except Exception as exc:
        log.warning("hil.report: could not record the %s in Allure: %r", what, exc)
