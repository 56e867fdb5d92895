"""BackpressureTracker: notices, K-notice throttling, recovery (beyond upstream)."""

from __future__ import annotations

import pytest

from bbnode.engine.framework import (
    DEFAULT_BACKPRESSURE_HIGH_WATER,
    DEFAULT_BACKPRESSURE_MIN_INTERVAL_NS,
    DEFAULT_NOTICES_BEFORE_ACTION,
    BackpressureSignal,
    BackpressureTracker,
    FrameworkStateError,
    FrameworkUsageError,
)
from bbnode.ids import PeerId

S = 1_000_000_000
NONE = BackpressureSignal.NONE
NOTICE = BackpressureSignal.NOTICE
THROTTLED = BackpressureSignal.THROTTLED
RECOVERED = BackpressureSignal.RECOVERED


def p(n: int) -> PeerId:
    return PeerId.from_u64(n)


def test_upstream_defaults() -> None:
    assert DEFAULT_BACKPRESSURE_HIGH_WATER == 0.75
    assert DEFAULT_NOTICES_BEFORE_ACTION == 3
    assert DEFAULT_BACKPRESSURE_MIN_INTERVAL_NS == S
    bp = BackpressureTracker(capacity=100)
    assert bp.high_water_depth == 75
    assert bp.notices_before_action == 3
    assert BackpressureTracker(capacity=10).high_water_depth == 8  # ceil(7.5)
    assert BackpressureTracker(capacity=1).high_water_depth == 1


def test_below_mark_is_ignored_and_stateless() -> None:
    bp = BackpressureTracker(capacity=100)
    assert bp.observe(p(1), 74, 0) is NONE
    assert len(bp) == 0
    assert bp.notices(p(1)) == 0


def test_notices_rate_limited_then_throttled_on_kth() -> None:
    bp = BackpressureTracker(capacity=100)
    assert bp.observe(p(1), 75, 0) is NOTICE
    assert bp.observe(p(1), 99, S - 1) is NONE  # within min interval
    assert bp.notices(p(1)) == 1
    assert bp.observe(p(1), 80, S) is NOTICE
    assert not bp.is_throttled(p(1))
    assert bp.observe(p(1), 80, 2 * S) is THROTTLED
    assert bp.is_throttled(p(1))
    assert bp.throttled_peers() == [p(1)]
    assert bp.observe(p(1), 100, 10 * S) is NONE  # no further notices while throttled
    assert bp.notices(p(1)) == 3


def test_recovery_after_quiet_interval() -> None:
    bp = BackpressureTracker(capacity=100)
    for t in range(3):
        bp.observe(p(1), 90, t * S)
    assert bp.is_throttled(p(1))
    assert bp.observe(p(1), 10, 5 * S) is NONE  # quiet period starts
    assert bp.observe(p(1), 10, 6 * S - 1) is NONE
    assert bp.is_throttled(p(1))
    assert bp.observe(p(1), 10, 6 * S) is RECOVERED
    assert not bp.is_throttled(p(1))
    assert bp.notices(p(1)) == 0
    assert bp.observe(p(1), 10, 7 * S) is NONE  # recovered only once
    assert bp.observe(p(1), 90, 7 * S) is NOTICE  # a fresh episode


def test_high_depth_restarts_quiet_period() -> None:
    bp = BackpressureTracker(capacity=100)
    for t in range(3):
        bp.observe(p(1), 90, t * S)
    bp.observe(p(1), 10, 10 * S)
    bp.observe(p(1), 90, 10 * S + 500)  # spike: quiet period void
    assert bp.observe(p(1), 10, 11 * S) is NONE  # restarts here
    assert bp.observe(p(1), 10, 12 * S - 1) is NONE
    assert bp.observe(p(1), 10, 12 * S) is RECOVERED


def test_unthrottled_peer_notices_reset_silently() -> None:
    bp = BackpressureTracker(capacity=100)
    bp.observe(p(1), 90, 0)
    bp.observe(p(1), 90, S)
    assert bp.notices(p(1)) == 2
    assert bp.observe(p(1), 0, 2 * S) is NONE
    assert bp.observe(p(1), 0, 3 * S) is NONE
    assert bp.notices(p(1)) == 0
    assert len(bp) == 0
    assert bp.observe(p(1), 90, 3 * S) is NOTICE
    assert bp.notices(p(1)) == 1


def test_peers_are_independent_and_forgettable() -> None:
    bp = BackpressureTracker(capacity=4, notices_before_action=1, min_interval_ns=0)
    assert bp.observe(p(1), 3, 0) is THROTTLED
    assert bp.observe(p(2), 2, 0) is NONE
    assert bp.throttled_peers() == [p(1)]
    assert bp.forget(p(1)) is True
    assert bp.forget(p(1)) is False
    assert not bp.is_throttled(p(1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity must be >= 1"),
        ({"capacity": 10, "high_water": 0.0}, r"high_water must be in \(0, 1\]"),
        ({"capacity": 10, "high_water": 1.5}, "high_water"),
        ({"capacity": 10, "notices_before_action": 0}, "notices_before_action must be >= 1"),
        ({"capacity": 10, "min_interval_ns": -1}, "min_interval_ns must be >= 0"),
    ],
)
def test_rejects_bad_config(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(FrameworkUsageError, match=match):
        BackpressureTracker(**kwargs)  # type: ignore[arg-type]


def test_export_restore_continues_identically() -> None:
    bp = BackpressureTracker(capacity=100)
    for t in range(3):
        bp.observe(p(1), 90, t * S)
    bp.observe(p(1), 0, 4 * S)
    bp.observe(p(2), 80, 4 * S)
    state = bp.export_state()
    assert state == [
        [p(1).to_bytes(), 3, 2 * S, True, 4 * S],
        [p(2).to_bytes(), 1, 4 * S, False, None],
    ]
    twin = BackpressureTracker(capacity=100)
    twin.restore_state(state)
    assert twin.export_state() == state
    assert twin.observe(p(1), 0, 5 * S) is RECOVERED
    assert twin.observe(p(2), 80, 5 * S) is NOTICE


def test_restore_rejects_bad_rows() -> None:
    bp = BackpressureTracker(capacity=10)
    bp.observe(p(1), 9, 0)
    before = bp.export_state()
    with pytest.raises(FrameworkStateError, match=r"backpressure\[0\]\.throttled"):
        bp.restore_state([[p(1).to_bytes(), 1, 0, 1, None]])
    with pytest.raises(FrameworkStateError, match=r"backpressure\[0\]: expected 5 items"):
        bp.restore_state([[p(1).to_bytes(), 1]])
    assert bp.export_state() == before
