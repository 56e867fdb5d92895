"""RttTracker: RFC 6298 arithmetic, RTO clamps, peer cap, snapshot."""

from __future__ import annotations

import pytest

from bbnode.engine.framework import FrameworkStateError, FrameworkUsageError, RttTracker
from bbnode.ids import PeerId


def p(n: int) -> PeerId:
    return PeerId.from_u64(n)


def test_first_sample() -> None:
    rtt = RttTracker()
    assert rtt.srtt_ns(p(1)) is None
    assert rtt.rttvar_ns(p(1)) is None
    assert rtt.rto_ns(p(1), default=123) == 123
    rtt.observe(p(1), 100_000_000)
    assert rtt.srtt_ns(p(1)) == 100_000_000
    assert rtt.rttvar_ns(p(1)) == 50_000_000
    assert rtt.rto_ns(p(1), default=0) == 100_000_000 + 4 * 50_000_000


def test_subsequent_samples_use_gains() -> None:
    rtt = RttTracker()
    rtt.observe(p(1), 800)
    rtt.observe(p(1), 1_600)
    # rttvar = 3/4 * 400 + 1/4 * |800 - 1600| = 300 + 200; srtt = 7/8 * 800 + 1/8 * 1600
    assert rtt.rttvar_ns(p(1)) == 500
    assert rtt.srtt_ns(p(1)) == 900
    rtt.observe(p(1), 900)
    assert rtt.rttvar_ns(p(1)) == 375
    assert rtt.srtt_ns(p(1)) == 900


def test_rto_granularity_floor_and_clamps() -> None:
    rtt = RttTracker(granularity_ns=1_000, min_rto_ns=0, max_rto_ns=10_000)
    rtt.observe(p(1), 100)  # rttvar 50: 4*50 < G
    assert rtt.rto_ns(p(1), 0) == 100 + 1_000
    rtt.observe(p(2), 9_000)  # 9000 + 18000 -> clamped
    assert rtt.rto_ns(p(2), 0) == 10_000
    floor = RttTracker(granularity_ns=0, min_rto_ns=5_000)
    floor.observe(p(1), 10)
    assert floor.rto_ns(p(1), 0) == 5_000


def test_peer_cap_forgets_least_recently_observed() -> None:
    rtt = RttTracker(max_peers=2)
    rtt.observe(p(1), 10)
    rtt.observe(p(2), 10)
    rtt.observe(p(1), 10)
    rtt.observe(p(3), 10)
    assert p(2) not in rtt
    assert p(1) in rtt
    assert p(3) in rtt
    assert len(rtt) == 2
    assert rtt.forget(p(1)) is True
    assert rtt.forget(p(1)) is False


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_observe_rejects_bad_sample(bad: object) -> None:
    with pytest.raises(FrameworkUsageError, match="sample_ns must be an int >= 0"):
        RttTracker().observe(p(1), bad)  # type: ignore[arg-type]


def test_rejects_bad_config() -> None:
    with pytest.raises(FrameworkUsageError, match="max_rto_ns"):
        RttTracker(min_rto_ns=10, max_rto_ns=5)
    with pytest.raises(FrameworkUsageError, match="max_peers must be >= 1"):
        RttTracker(max_peers=0)


def test_export_restore() -> None:
    rtt = RttTracker()
    rtt.observe(p(2), 100)
    rtt.observe(p(1), 300)
    state = rtt.export_state()
    assert state == [[p(2).to_bytes(), 100, 50], [p(1).to_bytes(), 300, 150]]
    twin = RttTracker()
    twin.restore_state(state)
    assert twin.export_state() == state
    small = RttTracker(max_peers=1)
    small.restore_state(state)
    assert small.export_state() == [[p(1).to_bytes(), 300, 150]]
    with pytest.raises(FrameworkStateError, match=r"rtt\[0\]\.srtt_ns: must be >= 0"):
        twin.restore_state([[p(1).to_bytes(), -1, 0]])
    with pytest.raises(FrameworkStateError, match="duplicate peer"):
        twin.restore_state([[p(1).to_bytes(), 1, 0], [p(1).to_bytes(), 1, 0]])
    assert twin.export_state() == state
