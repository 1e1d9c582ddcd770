"""What one test did on its board: steps for a person, board time and free heap, its REPL view.

The pytest plugin makes one ``TestRecorder`` per test and board and hooks it to the board's
REPL (``Repl.observers``: every finished exchange) and transcript (``action_listeners``: the
named actions of ``hil.actions``). It then

* turns each exchange outside an action into a step (``exec: import sdcard_helper``), each
  action into one step (``put main.py (2.1 kB)``) with its helper programs inside it, never as
  titles of their own (only when Allure records the run);
* adds up the time the board spent answering (every exchange but the recorder's own);
* measures ``gc.mem_free()`` (after ``gc.collect()``) before and after the test where the board
  has ``gc``, so a driver that leaks shows as a trend of negative heap changes. When not a byte
  went to or came from the board since the last test's measurement (no reset in between: a
  class or module reset scope), that measurement is the next test's start, not asked again.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from hil.boardcode import helper
from hil.errors import HilError, InfrastructureError
from hil.report import steps
from hil.transcript import QUIET, Action, Direction, Transcript

#: Board code: free heap after a collection, printed; leaves ``__main__`` as it was.
FREE_HEAP = "import gc\ngc.collect()\nprint(gc.mem_free())"
#: Seconds the heap measurement may take (a board that stopped answering must not hold the
#: test's teardown up: the health check after it finds out).
HEAP_TIMEOUT = 3.0

#: Per link (its transcript): where in its traffic the free heap was last measured, and what
#: it was.
_last_heap: weakref.WeakKeyDictionary[Transcript, tuple[int, int]] = weakref.WeakKeyDictionary()


class TestRecorder:
    """See the module docstring. ``link`` is the ``hil.board.Board`` of the test; ``facts``
    what its probe found (``hil.probe.BoardFacts``; else the link's own, if it has them)."""

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, board_id: str, link: Any, facts: Any = None) -> None:
        self.board_id = board_id
        self.link = link
        self.facts = facts
        self.transcript = link.transcript
        self.board_seconds = 0.0
        self.exchanges = 0
        self.heap_before: int | None = None
        self.heap_after: int | None = None
        self._open: list[tuple[Action, str | None, int]] = []
        self._quiet = 0
        self._stopped = False
        #: The rig failed in the last exchange: the board may not answer, do not ask it more.
        self.rig_failed = False

    # -- hooking up ---------------------------------------------------------------------------

    def attach(self) -> None:
        self.link.repl.observers = [self.exchange]
        self.transcript.action_listeners = [self.action]

    def detach(self) -> None:
        if self.exchange in self.link.repl.observers:
            self.link.repl.observers = []
        if self.action in self.transcript.action_listeners:
            self.transcript.action_listeners = []

    # -- listeners ----------------------------------------------------------------------------

    def exchange(self, exchange: Any) -> None:
        if self._quiet:
            return
        self.rig_failed = isinstance(exchange.error, InfrastructureError)
        if not self._stopped:  # a health check or recovery after the test is not its time
            self.board_seconds += exchange.seconds
            self.exchanges += 1
        if self._open:
            act, step_id, count = self._open[-1]
            self._open[-1] = (act, step_id, count + 1)
            return
        steps.exchange_step(
            exchange.title,
            exchange.sent,
            exchange.received,
            exchange.seconds,
            self.board_id,
            error=exchange.error,
        )

    def action(self, event: str, act: Action) -> None:
        if act.mode == QUIET or self._quiet:
            self._quiet += 1 if event == "begin" else -1
            self._quiet = max(self._quiet, 0)
            return
        if event == "begin":
            self._open.append((act, steps.start_action_step(act.title), 0))
            return
        if not self._open or self._open[-1][0] is not act:
            return
        _, step_id, count = self._open.pop()
        if self._open:  # the parent action counts its children's exchanges too
            parent, parent_id, parent_count = self._open[-1]
            self._open[-1] = (parent, parent_id, parent_count + count)
        view = ""
        if step_id is not None:
            from hil.replview import repl_view

            view = repl_view(self.transcript.entries(act.mark), fold=False)
        steps.stop_action_step(
            step_id, act.title, seconds=act.seconds, exchanges=count, view=view, error=act.error
        )

    # -- what the board spent -----------------------------------------------------------------

    def free_heap(self) -> int | None:
        """``gc.mem_free()`` after a collection, None where the board has no ``gc`` or does
        not answer in time. A quiet action: no step, no line in the REPL view."""
        facts = self.facts if self.facts is not None else getattr(self.link, "_facts", None)
        if facts is None or not facts.has("gc"):
            return None
        with contextlib.suppress(HilError, ValueError):
            with self.transcript.action("measure free heap", mode=QUIET):
                out = self.link.repl.exec(helper(FREE_HEAP), timeout=HEAP_TIMEOUT)
            value = int(out.strip() or b"x")
            _last_heap[self.transcript] = (self.transcript.mark(), value)
            return value
        return None

    def _unchanged_heap(self) -> int | None:
        """The last measurement, if the board has been left alone since (no byte either way)."""
        last = _last_heap.get(self.transcript)
        if last is None:
            return None
        mark, value = last
        if self.transcript.payload(Direction.TX, mark) or self.transcript.payload(
            Direction.RX, mark
        ):
            return None
        return value

    def start(self) -> None:
        """Before the test: the free heap it starts from; board time counts from here."""
        unchanged = self._unchanged_heap()
        self.heap_before = unchanged if unchanged is not None else self.free_heap()
        self.board_seconds = 0.0
        self.exchanges = 0

    def stop(self) -> None:
        """After the test: the free heap it left (not asked of a board that just failed to
        answer: the health check that follows finds out and recovers it)."""
        self.heap_after = None if self.rig_failed else self.free_heap()
        self._stopped = True

    @property
    def heap_change(self) -> int | None:
        """Bytes of free heap gained (positive) or lost (negative) over the test."""
        if self.heap_before is None or self.heap_after is None:
            return None
        return self.heap_after - self.heap_before

    def properties(self) -> list[tuple[str, object]]:
        """For the test's report (``user_properties``) and the per-board summary."""
        props: list[tuple[str, object]] = [("hil_board_seconds", round(self.board_seconds, 6))]
        if self.heap_change is not None:
            props.append(("hil_heap_change", self.heap_change))
        return props

    def report_parameters(self) -> None:
        """The same as Allure parameters (out of the history id: they change run to run)."""
        steps.add_parameter("board time", f"{self.board_seconds:.3f} s")
        if self.heap_change is not None:
            steps.add_parameter(
                "free heap change", f"{self.heap_change:+d} B (of {self.heap_before} B)"
            )
