"""RequestTracker: tokens from 1, completion, deadline-ordered expiry, snapshot."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.engine.framework import (
    FIRST_WIRE_REQ_ID,
    FrameworkStateError,
    FrameworkUsageError,
    InFlightRequest,
    RequestTracker,
)
from bbnode.ids import PeerId


def p(n: int) -> PeerId:
    return PeerId.from_u64(n)


def test_tokens_start_at_one_and_increase() -> None:
    rt = RequestTracker()
    assert FIRST_WIRE_REQ_ID == 1
    assert rt.next_token == 1
    assert [rt.start(p(1), 0, 10) for _ in range(3)] == [1, 2, 3]
    assert rt.next_token == 4
    rt.complete(3)
    assert rt.start(p(1), 0, 10) == 4  # never reused


def test_complete_returns_request_once() -> None:
    rt = RequestTracker()
    token = rt.start(p(7), 100, 50, parked_op={"op": 3})
    assert token in rt
    assert rt.get(token) == InFlightRequest(token, p(7), 100, 150, {"op": 3})
    assert rt.complete(token) == InFlightRequest(token, p(7), 100, 150, {"op": 3})
    assert rt.complete(token) is None
    assert rt.complete(999) is None
    assert len(rt) == 0


def test_due_says_whether_expire_may_have_work() -> None:
    rt = RequestTracker()
    assert not rt.due(10**12)
    token = rt.start(p(1), 0, 10)
    assert not rt.due(9)
    assert rt.due(10)
    rt.complete(token)
    assert rt.due(10)  # a completed request's deadline is dropped lazily, by expire
    assert rt.expire(10) == []
    assert not rt.due(10**12)


def test_expire_in_deadline_order_inclusive() -> None:
    rt = RequestTracker()
    t1 = rt.start(p(1), 0, 300)
    t2 = rt.start(p(2), 0, 100)
    t3 = rt.start(p(3), 50, 50)  # deadline 100, later token
    assert rt.next_deadline_ns() == 100
    assert rt.expire(99) == []
    assert [r.wire_req_id for r in rt.expire(100)] == [t2, t3]
    assert rt.next_deadline_ns() == 300
    assert rt.complete(t1) is not None
    assert rt.next_deadline_ns() is None
    assert rt.expire(10**12) == []


def test_completed_request_never_expires() -> None:
    rt = RequestTracker()
    token = rt.start(p(1), 0, 10)
    rt.complete(token)
    assert rt.expire(10) == []


def test_zero_ttl_expires_immediately() -> None:
    rt = RequestTracker()
    token = rt.start(p(1), 5, 0)
    assert [r.wire_req_id for r in rt.expire(5)] == [token]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((PeerId.from_u64(1), -1, 10), "now_ns must be >= 0"),
        ((PeerId.from_u64(1), 0, -10), "ttl_ns must be >= 0"),
        (("peer", 0, 10), "target_peer must be a PeerId"),
    ],
)
def test_start_rejects_bad_arguments(args: tuple[object, ...], match: str) -> None:
    rt = RequestTracker()
    with pytest.raises(FrameworkUsageError, match=match):
        rt.start(*args)  # type: ignore[arg-type]
    assert rt.next_token == 1


def test_export_restore_round_trip() -> None:
    rt = RequestTracker()
    rt.start(p(1), 0, 100, parked_op=[1, b"x"])
    done = rt.start(p(2), 0, 100)
    rt.start(p(3), 10, 20)
    rt.complete(done)
    state = rt.export_state()
    assert state == {
        "next_token": 4,
        "in_flight": [[1, p(1).to_bytes(), 0, 100, [1, b"x"]], [3, p(3).to_bytes(), 10, 30, None]],
    }
    twin = RequestTracker()
    twin.restore_state(msgpack.unpackb(msgpack.packb(state)))
    assert twin.export_state() == state
    assert twin.next_deadline_ns() == 30
    assert twin.start(p(4), 0, 1) == 4
    assert [r.wire_req_id for r in twin.expire(100)] == [4, 3, 1]


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"in_flight": []}, "missing key 'next_token'"),
        ({"next_token": 0, "in_flight": []}, "next_token: must be >= 1"),
        (
            {"next_token": 2, "in_flight": [[2, PeerId.from_u64(1).to_bytes(), 0, 1, None]]},
            "not below next_token",
        ),
        (
            {"next_token": 9, "in_flight": [[1, PeerId.from_u64(1).to_bytes(), 5, 1, None]]},
            r"deadline_ns: must be >= 5",
        ),
        (
            {"next_token": 9, "in_flight": [[1, PeerId.from_u64(1).to_bytes(), 0, 1, None]] * 2},
            "duplicate token 1",
        ),
        ({"next_token": 9, "in_flight": [[1, b"", 0, 1, None]]}, r"in_flight\[0\]\.target_peer"),
    ],
)
def test_restore_rejects_bad_state(state: object, match: str) -> None:
    rt = RequestTracker()
    rt.start(p(1), 0, 10)
    before = rt.export_state()
    with pytest.raises(FrameworkStateError, match=match):
        rt.restore_state(state)  # type: ignore[arg-type]
    assert rt.export_state() == before


@settings(max_examples=50, deadline=None)
@given(
    ttls=st.lists(st.integers(0, 50), max_size=40),
    completes=st.sets(st.integers(1, 40)),
    now=st.integers(0, 60),
)
def test_expire_matches_reference(ttls: list[int], completes: set[int], now: int) -> None:
    rt = RequestTracker()
    tokens = [rt.start(p(i), i, ttl) for i, ttl in enumerate(ttls)]
    for token in completes:
        rt.complete(token)
    expected = sorted(
        (i + ttl, token)
        for i, (ttl, token) in enumerate(zip(ttls, tokens, strict=True))
        if token not in completes and i + ttl <= now
    )
    assert [(r.deadline_ns, r.wire_req_id) for r in rt.expire(now)] == expected
    remaining = rt.next_deadline_ns()
    assert remaining is None or remaining > now
