"""`Scheduler`: cancellable timers on a min-heap; equal maturities fire in FIFO order.

Timers are keyed `(at_ns, seq)` where `seq` increases with every `schedule`, so two timers due
at the same instant fire in the order they were scheduled (upstream rule). Cancelling marks the
timer dead in O(1); dead heap items are skipped when reached and purged once they dominate.

The scheduler never reads a clock: the engine asks `next_deadline_ns()` to arm its one wrapper
timer and calls `pop_due(now_ns)` when it fires.
"""

from __future__ import annotations

import heapq
from typing import Any, Final, Generic, NewType, TypeVar

from bbnode.engine.framework._check import state_int, state_list, state_row, usage_int
from bbnode.engine.framework.errors import FrameworkStateError

__all__ = ["Scheduler", "TimerHandle"]

TimerHandle = NewType("TimerHandle", int)
"""A timer's id: a plain int (msgpack-able), unique over the scheduler's life."""

P = TypeVar("P")
_HEAP_SLACK: Final = 64


class Scheduler(Generic[P]):
    """Timers carrying an opaque payload, fired in `(at_ns, scheduling order)` order."""

    __slots__ = ("_heap", "_live", "_next_handle", "_next_seq")

    def __init__(self) -> None:
        """No timers; the first handle is 1."""
        # (at_ns, seq, handle); payloads live in _live so cancel needs no heap search.
        self._heap: list[tuple[int, int, TimerHandle]] = []
        self._live: dict[TimerHandle, tuple[int, P]] = {}
        self._next_handle = 1
        self._next_seq = 0

    @property
    def next_handle(self) -> int:
        """The id the next `schedule` returns (persist it to avoid reuse across restores)."""
        return self._next_handle

    def schedule(self, at_ns: int, payload: P) -> TimerHandle:
        """Arm a timer maturing at `at_ns` (>= 0) carrying `payload`; return its handle."""
        usage_int("schedule: at_ns", at_ns)
        handle = TimerHandle(self._next_handle)
        self._next_handle += 1
        self._push(at_ns, handle, payload)
        return handle

    def _push(self, at_ns: int, handle: TimerHandle, payload: P) -> None:
        self._live[handle] = (at_ns, payload)
        heapq.heappush(self._heap, (at_ns, self._next_seq, handle))
        self._next_seq += 1

    def cancel(self, handle: TimerHandle | int) -> bool:
        """Disarm a timer; True if it was still pending (False if fired, cancelled, unknown)."""
        if self._live.pop(TimerHandle(handle), None) is None:
            return False
        if len(self._heap) > 2 * len(self._live) + _HEAP_SLACK:
            self._heap = [item for item in self._heap if item[2] in self._live]
            heapq.heapify(self._heap)
        return True

    def due(self, now_ns: int) -> bool:
        """True when `pop_due(now_ns)` may have work: a timer, perhaps a cancelled one, matures
        at or before `now_ns` (cheaper than a `pop_due` that finds nothing)."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= now_ns

    def pop_due(self, now_ns: int) -> list[tuple[TimerHandle, int, P]]:
        """Remove and return `(handle, at_ns, payload)` for every timer with `at_ns <= now_ns`.

        Order is maturity, then scheduling order among equal maturities.
        """
        heap = self._heap
        live = self._live
        due: list[tuple[TimerHandle, int, P]] = []
        while heap and heap[0][0] <= now_ns:
            at_ns, _, handle = heapq.heappop(heap)
            entry = live.pop(handle, None)
            if entry is not None:
                due.append((handle, at_ns, entry[1]))
        return due

    def next_deadline_ns(self) -> int | None:
        """Maturity of the next live timer, or None."""
        heap = self._heap
        while heap and heap[0][2] not in self._live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, handle: object) -> bool:
        return handle in self._live

    # snapshot -------------------------------------------------------------------------------
    def export_state(self) -> list[list[Any]]:
        """`[[handle, at_ns, payload], ...]` in firing order (payloads must be msgpack-able)."""
        ordered = sorted(item for item in self._heap if item[2] in self._live)
        return [[handle, at_ns, self._live[handle][1]] for at_ns, _, handle in ordered]

    def restore_state(self, rows: list[Any], next_handle: int | None = None) -> None:
        """Replace every timer with exported rows; nothing changes if a row is bad.

        Rows keep their handles, and their list order decides FIFO among equal `at_ns`, so
        the restored firing order is identical. New handles continue above `next_handle`
        (when given, e.g. from a persisted `next_handle`) and above every restored handle.
        """
        where = "scheduler"
        parsed: list[tuple[int, TimerHandle, Any]] = []
        seen: set[int] = set()
        for i, raw in enumerate(state_list(where, rows)):
            at = f"{where}[{i}]"
            handle_raw, at_raw, payload = state_row(at, raw, 3)
            handle = state_int(f"{at}.handle", handle_raw, minimum=1)
            if handle in seen:
                raise FrameworkStateError(f"{at}.handle: duplicate handle {handle}")
            seen.add(handle)
            parsed.append((state_int(f"{at}.at_ns", at_raw), TimerHandle(handle), payload))
        floor = 1 if next_handle is None else state_int(f"{where}.next_handle", next_handle, 1)
        self._heap = []
        self._live = {}
        self._next_seq = 0
        for at_ns, handle, payload in parsed:
            self._push(at_ns, handle, payload)
        self._next_handle = max([floor, *(h + 1 for h in seen)])
