"""InboundDedup: FIFO window semantics and snapshot round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.engine.framework import (
    DEFAULT_DEDUP_WINDOW,
    FrameworkStateError,
    FrameworkUsageError,
    InboundDedup,
)


def test_default_window_is_upstream() -> None:
    assert DEFAULT_DEDUP_WINDOW == 8192
    assert InboundDedup().window == 8192


def test_seen_reports_duplicates() -> None:
    dedup = InboundDedup(window=4)
    assert dedup.seen(b"a") is False
    assert dedup.seen(b"a") is True
    assert dedup.seen(b"b") is False
    assert len(dedup) == 2
    assert b"a" in dedup


def test_fifo_eviction_not_refreshed_by_repeat() -> None:
    dedup = InboundDedup(window=3)
    for key in (b"1", b"2", b"3"):
        dedup.seen(key)
    assert dedup.seen(b"1") is True  # does not move b"1" to the back
    assert dedup.seen(b"4") is False  # evicts b"1", the oldest
    assert dedup.export_state() == [b"2", b"3", b"4"]
    assert dedup.seen(b"1") is False  # forgotten: accepted again (evicts b"2")
    assert dedup.export_state() == [b"3", b"4", b"1"]


def test_clear() -> None:
    dedup = InboundDedup(window=3)
    dedup.seen(b"x")
    dedup.clear()
    assert dedup.seen(b"x") is False


def test_rejects_bad_window() -> None:
    with pytest.raises(FrameworkUsageError, match="window must be >= 1"):
        InboundDedup(window=0)


def test_restore_round_trip_and_truncation() -> None:
    dedup = InboundDedup(window=3)
    dedup.restore_state([b"a", b"b", b"c", b"d"])  # oldest dropped to fit the window
    assert dedup.export_state() == [b"b", b"c", b"d"]
    assert dedup.seen(b"a") is False
    assert dedup.export_state() == [b"c", b"d", b"a"]


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ([b"a", "b"], r"dedup\[1\]: expected bytes"),
        ([b"a", b"a"], "duplicate keys"),
        (b"ab", "dedup: expected a list"),
    ],
)
def test_restore_rejects_bad_keys(keys: object, match: str) -> None:
    dedup = InboundDedup(window=3)
    dedup.seen(b"z")
    with pytest.raises(FrameworkStateError, match=match):
        dedup.restore_state(keys)  # type: ignore[arg-type]
    assert dedup.export_state() == [b"z"]


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.binary(min_size=1, max_size=2), max_size=80), window=st.integers(1, 8))
def test_matches_reference_fifo(keys: list[bytes], window: int) -> None:
    dedup = InboundDedup(window=window)
    model: list[bytes] = []
    for key in keys:
        expected = key in model
        assert dedup.seen(key) is expected
        if not expected:
            model.append(key)
            model = model[-window:]
    assert dedup.export_state() == model
    twin = InboundDedup(window=window)
    twin.restore_state(dedup.export_state())
    assert all(twin.seen(k) is dedup.seen(k) for k in keys)
