"""Scheduler: (at_ns, FIFO) order, cancellation, snapshot with identical order."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.engine.framework import (
    FrameworkStateError,
    FrameworkUsageError,
    Scheduler,
    TimerHandle,
)


def test_pop_due_in_maturity_order() -> None:
    sched: Scheduler[str] = Scheduler()
    h_late = sched.schedule(300, "late")
    h_early = sched.schedule(100, "early")
    assert (h_late, h_early) == (1, 2)
    assert sched.next_deadline_ns() == 100
    assert sched.pop_due(99) == []
    assert sched.pop_due(100) == [(h_early, 100, "early")]
    assert sched.pop_due(1_000) == [(h_late, 300, "late")]
    assert sched.next_deadline_ns() is None
    assert len(sched) == 0


def test_equal_maturities_fire_fifo() -> None:
    sched: Scheduler[int] = Scheduler()
    handles = [sched.schedule(50, i) for i in range(5)]
    assert sched.pop_due(50) == [(h, 50, i) for i, h in enumerate(handles)]


def test_cancel() -> None:
    sched: Scheduler[str] = Scheduler()
    a = sched.schedule(10, "a")
    b = sched.schedule(10, "b")
    assert sched.cancel(a) is True
    assert sched.cancel(a) is False
    assert sched.cancel(TimerHandle(999)) is False
    assert a not in sched
    assert len(sched) == 1
    assert sched.pop_due(10) == [(b, 10, "b")]
    assert sched.cancel(b) is False  # already fired


def test_cancelled_head_skipped_by_next_deadline() -> None:
    sched: Scheduler[None] = Scheduler()
    first = sched.schedule(5, None)
    sched.schedule(9, None)
    sched.cancel(first)
    assert sched.next_deadline_ns() == 9


def test_due_says_whether_pop_due_may_have_work() -> None:
    sched: Scheduler[str] = Scheduler()
    assert not sched.due(10**12)
    handle = sched.schedule(100, "a")
    assert not sched.due(99)
    assert sched.due(100)
    sched.cancel(handle)
    assert sched.due(100)  # a cancelled timer still at the head: only pop_due can tell
    assert sched.pop_due(100) == []
    assert not sched.due(10**12)


def test_mass_cancel_keeps_order() -> None:
    sched: Scheduler[int] = Scheduler()
    handles = [sched.schedule(i % 7, i) for i in range(1_000)]
    for h in handles[:-3]:
        sched.cancel(h)
    assert len(sched) == 3
    assert [payload for _, _, payload in sched.pop_due(10)] == [997, 998, 999]  # at 3, 4, 5


def test_schedule_rejects_bad_time() -> None:
    with pytest.raises(FrameworkUsageError, match="at_ns must be >= 0"):
        Scheduler[int]().schedule(-1, 0)
    with pytest.raises(FrameworkUsageError, match="at_ns must be an int"):
        Scheduler[int]().schedule(1.5, 0)  # type: ignore[arg-type]


def test_export_restore_identical_order_and_handles_continue() -> None:
    sched: Scheduler[object] = Scheduler()
    sched.schedule(20, "b1")
    sched.schedule(10, "a")
    gone = sched.schedule(20, "x")
    sched.schedule(20, "b2")
    sched.cancel(gone)
    state = sched.export_state()
    assert state == [[2, 10, "a"], [1, 20, "b1"], [4, 20, "b2"]]
    twin: Scheduler[object] = Scheduler()
    twin.restore_state(msgpack.unpackb(msgpack.packb(state)), next_handle=sched.next_handle)
    assert twin.export_state() == state
    assert twin.next_handle == 5
    assert twin.schedule(20, "c") == sched.schedule(20, "c") == 5
    assert twin.pop_due(20) == sched.pop_due(20)


def test_restore_without_next_handle_continues_above_restored() -> None:
    twin: Scheduler[int] = Scheduler()
    twin.restore_state([[7, 1, 0], [3, 1, 0]])
    assert twin.next_handle == 8
    assert [h for h, _, _ in twin.pop_due(1)] == [7, 3]  # row order decides FIFO


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([[1, 5]], r"scheduler\[0\]: expected 3 items"),
        ([[0, 5, None]], r"scheduler\[0\]\.handle: must be >= 1"),
        ([[1, -5, None]], r"scheduler\[0\]\.at_ns: must be >= 0"),
        ([[1, 5, None], [1, 6, None]], "duplicate handle 1"),
        ({"x": 1}, "scheduler: expected a list"),
    ],
)
def test_restore_rejects_bad_rows(rows: object, match: str) -> None:
    sched: Scheduler[int] = Scheduler()
    sched.schedule(1, 1)
    with pytest.raises(FrameworkStateError, match=match):
        sched.restore_state(rows)  # type: ignore[arg-type]
    assert sched.export_state() == [[1, 1, 1]]


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 20), max_size=50),
    cancel_mask=st.lists(st.booleans(), max_size=50),
    now=st.integers(0, 25),
)
def test_order_is_sorted_at_then_seq(times: list[int], cancel_mask: list[bool], now: int) -> None:
    sched: Scheduler[int] = Scheduler()
    handles = [sched.schedule(t, i) for i, t in enumerate(times)]
    cancelled = {h for h, c in zip(handles, cancel_mask, strict=False) if c}
    for h in cancelled:
        sched.cancel(h)
    live = [(t, i) for i, t in enumerate(times) if handles[i] not in cancelled]
    assert len(sched) == len(live)
    twin: Scheduler[int] = Scheduler()
    twin.restore_state(sched.export_state(), next_handle=sched.next_handle)
    expected = [(handles[i], t, i) for t, i in sorted(live) if t <= now]
    assert sched.pop_due(now) == expected
    assert twin.pop_due(now) == expected
    assert twin.export_state() == sched.export_state()
