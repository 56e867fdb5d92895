"""OutboundQueue: drop-oldest overflow, drop counting, snapshot round trips."""

from __future__ import annotations

import pytest

from bbnode.engine.framework import (
    DEFAULT_OUTBOUND_CAPACITY,
    FrameworkStateError,
    FrameworkUsageError,
    OutboundQueue,
)


def test_default_capacity_is_upstream() -> None:
    assert DEFAULT_OUTBOUND_CAPACITY == 10_000
    assert OutboundQueue[int]().capacity == 10_000


def test_fifo_drain() -> None:
    q: OutboundQueue[str] = OutboundQueue(capacity=3)
    assert not q
    q.push("a")
    q.push("b")
    assert len(q) == 2
    assert q.drain() == ["a", "b"]
    assert len(q) == 0
    assert q.drain() == []


def test_overflow_drops_oldest_and_counts() -> None:
    q: OutboundQueue[int] = OutboundQueue(capacity=3)
    for i in range(7):
        q.push(i)
    assert q.dropped_since_drain == 4
    assert q.drain() == [4, 5, 6]
    assert q.dropped_since_drain == 4  # drain does not report drops; take_dropped does
    assert q.take_dropped() == 4
    assert q.take_dropped() == 0
    assert q.dropped_since_drain == 0
    assert q.total_dropped == 4
    q.push(1)
    assert q.take_dropped() == 0


def test_rejects_bad_capacity() -> None:
    with pytest.raises(FrameworkUsageError, match="capacity must be >= 1"):
        OutboundQueue[int](capacity=0)


def test_export_restore() -> None:
    q: OutboundQueue[bytes] = OutboundQueue(capacity=2)
    for item in (b"a", b"b", b"c"):
        q.push(item)
    state = q.export_state()
    assert state == {"items": [b"b", b"c"], "dropped": 1}
    twin: OutboundQueue[bytes] = OutboundQueue(capacity=2)
    twin.restore_state(state)
    assert twin.take_dropped() == 1
    assert twin.drain() == [b"b", b"c"]


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"items": [1, 2, 3]}, "3 items exceed capacity 2"),
        ({"dropped": 0}, "missing key 'items'"),
        ({"items": [], "dropped": -1}, r"dropped: must be >= 0"),
        ([], "outbound_queue: expected a map"),
    ],
)
def test_restore_rejects_bad_state(state: object, match: str) -> None:
    q: OutboundQueue[int] = OutboundQueue(capacity=2)
    q.push(9)
    with pytest.raises(FrameworkStateError, match=match):
        q.restore_state(state)  # type: ignore[arg-type]
    assert q.drain() == [9]


def test_take_all_is_drain_and_take_dropped_in_one_call() -> None:
    q: OutboundQueue[int] = OutboundQueue(capacity=2)
    assert q.take_all() == ([], 0)
    for i in range(5):
        q.push(i)
    assert q.take_all() == ([3, 4], 3)
    assert q.take_all() == ([], 0)
    assert q.total_dropped == 3
    q.push(7)
    assert q.take_all() == ([7], 0)
