"""PeerGovernor: every rule of the seed, plus block expiry and block sources."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.engine.framework import (
    DEFAULT_FAILURE_THRESHOLD,
    Allow,
    BackoffTable,
    BlockEntry,
    Blocklisted,
    Cooldown,
    Deny,
    FrameworkStateError,
    FrameworkUsageError,
    LifecycleTransition,
    NotAllowlisted,
    PeerGovernor,
    PeerHealth,
)
from bbnode.ids import PeerId

NONE = LifecycleTransition.NONE
WENT_DOWN = LifecycleTransition.WENT_DOWN
CAME_UP = LifecycleTransition.CAME_UP


def p(n: int) -> PeerId:
    return PeerId.from_u64(n)


# -- threshold ---------------------------------------------------------------------------------
def test_default_threshold_is_upstream_five() -> None:
    assert DEFAULT_FAILURE_THRESHOLD == 5
    assert PeerGovernor().failure_threshold == 5


@pytest.mark.parametrize(("given_value", "expected"), [(0, 1), (-7, 1), (1, 1), (9, 9)])
def test_threshold_clamped_to_at_least_one(given_value: int, expected: int) -> None:
    gov = PeerGovernor(failure_threshold=given_value)
    assert gov.failure_threshold == expected
    gov.failure_threshold = given_value - 100
    assert gov.failure_threshold == 1
    gov.failure_threshold = given_value
    assert gov.failure_threshold == expected


def test_threshold_zero_behaves_as_one() -> None:
    gov = PeerGovernor(failure_threshold=0)
    assert gov.record_failure(p(1), 10) is WENT_DOWN


@pytest.mark.parametrize("bad", ["5", 2.0, None, True])
def test_threshold_must_be_int(bad: object) -> None:
    with pytest.raises(FrameworkUsageError, match="failure_threshold must be an int"):
        PeerGovernor(failure_threshold=bad)  # type: ignore[arg-type]


# -- health transitions ------------------------------------------------------------------------
def test_went_down_exactly_once_per_streak() -> None:
    gov = PeerGovernor(failure_threshold=3)
    transitions = [gov.record_failure(p(1), t) for t in range(1, 11)]
    assert transitions == [NONE, NONE, WENT_DOWN] + [NONE] * 7
    assert gov.peer_health(p(1)) == PeerHealth(10, 10, True)
    assert gov.is_down(p(1))


def test_came_up_only_after_down() -> None:
    gov = PeerGovernor(failure_threshold=3)
    assert gov.record_success(p(1), 1) is NONE  # never seen
    assert gov.record_failure(p(1), 2) is NONE
    assert gov.record_failure(p(1), 3) is NONE
    assert gov.record_success(p(1), 4) is NONE  # streak below threshold: not down
    assert gov.peer_health(p(1)) == PeerHealth(0, 4, False)
    for t in range(5, 8):
        gov.record_failure(p(1), t)
    assert gov.is_down(p(1))
    assert gov.record_success(p(1), 8) is CAME_UP
    assert gov.record_success(p(1), 9) is NONE  # only once
    assert not gov.is_down(p(1))


def test_new_streak_after_recovery_goes_down_again() -> None:
    gov = PeerGovernor(failure_threshold=2)
    assert [gov.record_failure(p(1), t) for t in (1, 2, 3)] == [NONE, WENT_DOWN, NONE]
    assert gov.record_success(p(1), 4) is CAME_UP
    assert [gov.record_failure(p(1), t) for t in (5, 6)] == [NONE, WENT_DOWN]


def test_lowering_threshold_below_streak_goes_down_on_next_failure() -> None:
    gov = PeerGovernor(failure_threshold=10)
    for t in range(4):
        gov.record_failure(p(1), t)
    gov.failure_threshold = 2
    assert not gov.is_down(p(1))  # thresholds apply when a failure is recorded
    assert gov.record_failure(p(1), 5) is WENT_DOWN


def test_health_is_per_peer_and_tracked() -> None:
    gov = PeerGovernor(failure_threshold=1)
    assert gov.peer_health(p(1)) is None
    assert not gov.is_down(p(1))
    gov.record_failure(p(1), 5)
    gov.record_success(p(2), 6)
    assert gov.tracked_peers() == 2
    assert dict(gov.iter_health()) == {p(1): PeerHealth(1, 5, True), p(2): PeerHealth(0, 6, False)}
    assert not gov.is_down(p(2))
    assert gov.forget_health(p(1)) is True
    assert gov.forget_health(p(1)) is False
    assert gov.tracked_peers() == 1


def test_restore_health_overwrites() -> None:
    gov = PeerGovernor(failure_threshold=3)
    gov.restore_health(p(1), PeerHealth(7, 99, True))
    assert gov.is_down(p(1))
    assert gov.record_failure(p(1), 100) is NONE  # already down: no second WENT_DOWN
    assert gov.record_success(p(1), 101) is CAME_UP
    with pytest.raises(FrameworkUsageError, match="consecutive_failures"):
        gov.restore_health(p(1), PeerHealth(-1, 0, False))
    with pytest.raises(FrameworkUsageError, match="expected PeerHealth"):
        gov.restore_health(p(1), (0, 0, False))  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    threshold=st.integers(min_value=-2, max_value=6),
    events=st.lists(st.booleans(), max_size=40),
)
def test_transitions_match_reference_model(threshold: int, events: list[bool]) -> None:
    gov = PeerGovernor(failure_threshold=threshold)
    limit = max(1, threshold)
    failures, down = 0, False
    for t, ok in enumerate(events):
        if ok:
            expected = CAME_UP if down else NONE
            failures, down = 0, False
            assert gov.record_success(p(1), t) is expected
        else:
            failures += 1
            expected = WENT_DOWN if (not down and failures >= limit) else NONE
            down = down or failures >= limit
            assert gov.record_failure(p(1), t) is expected
        assert gov.peer_health(p(1)) == PeerHealth(failures, t, down)


# -- decisions ---------------------------------------------------------------------------------
def test_reason_codes() -> None:
    assert Blocklisted().code == "blocklisted"
    assert NotAllowlisted().code == "not_allowlisted"
    assert Cooldown(5).code == "cooldown"
    assert Deny(Cooldown(5)) == Deny(Cooldown(5))
    assert Deny(Cooldown(5)) != Deny(Cooldown(6))


def test_open_policy_allows() -> None:
    gov = PeerGovernor()
    assert gov.check_inbound(p(1)) == Allow()
    assert gov.check_outbound(p(1), BackoffTable(), 0) == Allow()
    assert gov.allowlist is None


def test_blocklist_denies_both_ways() -> None:
    gov = PeerGovernor()
    gov.block(p(1))
    assert gov.check_inbound(p(1)) == Deny(Blocklisted())
    assert gov.check_outbound(p(1), BackoffTable(), 0) == Deny(Blocklisted())
    assert gov.check_inbound(p(2)) == Allow()
    assert gov.unblock(p(1)) is True
    assert gov.unblock(p(1)) is False
    assert gov.check_inbound(p(1)) == Allow()


def test_allowlist() -> None:
    gov = PeerGovernor()
    gov.set_allowlist({p(1)})
    assert gov.allowlist == frozenset({p(1)})
    assert gov.check_inbound(p(1)) == Allow()
    assert gov.check_inbound(p(2)) == Deny(NotAllowlisted())
    assert gov.check_outbound(p(2), BackoffTable(), 0) == Deny(NotAllowlisted())
    gov.set_allowlist(set())
    assert gov.check_inbound(p(1)) == Deny(NotAllowlisted())  # empty = closed
    gov.set_allowlist(None)
    assert gov.check_inbound(p(2)) == Allow()


def test_allowlist_entries_must_be_peers() -> None:
    with pytest.raises(FrameworkUsageError, match="allowlist entries must be PeerIds"):
        PeerGovernor().set_allowlist({"peer"})  # type: ignore[arg-type]


def test_blocklist_checked_before_allowlist() -> None:
    gov = PeerGovernor()
    gov.set_allowlist({p(1)})
    gov.block(p(1))
    gov.block(p(2))
    assert gov.check_inbound(p(1)) == Deny(Blocklisted())
    assert gov.check_inbound(p(2)) == Deny(Blocklisted())


def test_outbound_order_block_then_allow_then_cooldown() -> None:
    backoff = BackoffTable(base_ns=100, max_delay_ns=10_000)
    gov = PeerGovernor()
    for n in (1, 2, 3):
        backoff.record_failure(p(n), 1_000)  # next_retry 1_100
    gov.set_allowlist({p(1), p(3)})
    gov.block(p(1))
    assert gov.check_outbound(p(1), backoff, 1_050) == Deny(Blocklisted())
    assert gov.check_outbound(p(2), backoff, 1_050) == Deny(NotAllowlisted())
    assert gov.check_outbound(p(3), backoff, 1_050) == Deny(Cooldown(retry_ns=1_100))
    assert gov.check_outbound(p(3), backoff, 1_099) == Deny(Cooldown(retry_ns=1_100))
    assert gov.check_outbound(p(3), backoff, 1_100) == Allow()
    # cooldown does not affect inbound
    assert gov.check_inbound(p(3), 1_050) == Allow()


def test_cooldown_retry_ns_tracks_backoff_growth() -> None:
    backoff = BackoffTable(base_ns=10, max_delay_ns=1_000)
    gov = PeerGovernor()
    backoff.record_failure(p(1), 0)
    backoff.record_failure(p(1), 10)
    backoff.record_failure(p(1), 30)  # delay 40
    decision = gov.check_outbound(p(1), backoff, 31)
    assert decision == Deny(Cooldown(70))
    assert isinstance(decision, Deny)
    assert decision.reason.code == "cooldown"
    backoff.record_success(p(1))
    assert gov.check_outbound(p(1), backoff, 31) == Allow()


# -- block expiry and sources ------------------------------------------------------------------
def test_timed_block_expires_lazily() -> None:
    gov = PeerGovernor()
    gov.block(p(1), until_ns=100)
    assert gov.check_inbound(p(1), 99) == Deny(Blocklisted())
    assert gov.check_inbound(p(1), 100) == Allow()
    assert gov.check_inbound(p(1)) == Deny(Blocklisted())  # no clock: still in force
    assert gov.is_blocked(p(1), 99)
    assert not gov.is_blocked(p(1), 100)
    assert gov.is_blocked(p(1))
    assert gov.check_outbound(p(1), BackoffTable(), 100) == Allow()
    # lazily expired entries stay listed until the sweep
    assert gov.block_entry(p(1)) == BlockEntry(p(1), 100, "runtime")


def test_expire_blocks_sweep_in_expiry_order() -> None:
    gov = PeerGovernor()
    gov.block(p(3), until_ns=300)
    gov.block(p(1), until_ns=100)
    gov.block(p(2), until_ns=100)
    gov.block(p(4))
    assert gov.next_block_expiry_ns() == 100
    assert gov.expire_blocks(99) == []
    assert gov.expire_blocks(100) == [p(1), p(2)]
    assert gov.block_entry(p(1)) is None
    assert gov.next_block_expiry_ns() == 300
    assert gov.expire_blocks(10**12) == [p(3)]
    assert [e.peer for e in gov.block_entries()] == [p(4)]
    assert gov.next_block_expiry_ns() is None


def test_bans_due_says_whether_expire_blocks_may_have_work() -> None:
    gov = PeerGovernor()
    gov.block(p(4))
    assert not gov.bans_due(10**12)  # a ban without expiry never falls due
    gov.block(p(1), until_ns=100)
    assert not gov.bans_due(99)
    assert gov.bans_due(100)
    assert gov.expire_blocks(100) == [p(1)]
    assert not gov.bans_due(10**12)


def test_reblock_supersedes_previous_expiry() -> None:
    gov = PeerGovernor()
    gov.block(p(1), until_ns=100)
    gov.block(p(1), until_ns=200)
    assert gov.expire_blocks(150) == []
    assert gov.is_blocked(p(1), 150)
    assert gov.expire_blocks(200) == [p(1)]
    gov.block(p(2), until_ns=100)
    gov.block(p(2))  # permanent now
    assert gov.expire_blocks(1_000) == []
    assert gov.is_blocked(p(2), 1_000)
    gov.block(p(3), until_ns=500)
    gov.block(p(3), until_ns=50)  # shortened
    assert gov.expire_blocks(60) == [p(3)]


def test_unblocked_peer_is_not_expired_later() -> None:
    gov = PeerGovernor()
    gov.block(p(1), until_ns=100)
    gov.unblock(p(1))
    assert gov.expire_blocks(100) == []
    assert gov.next_block_expiry_ns() is None


def test_block_churn_keeps_sweep_correct() -> None:
    gov = PeerGovernor()
    for i in range(2_000):
        gov.block(p(1), until_ns=i)
        gov.unblock(p(1))
    gov.block(p(1), until_ns=5_000)
    assert gov.expire_blocks(4_999) == []
    assert gov.expire_blocks(5_000) == [p(1)]


def test_config_reload_replaces_config_blocks_only() -> None:
    gov = PeerGovernor()
    gov.replace_config_blocks([p(1), p(2)])
    gov.block(p(3))
    gov.block(p(2), until_ns=500)  # runtime ban on a config-blocked peer
    assert {(e.peer, e.source) for e in gov.block_entries()} == {
        (p(1), "config"),
        (p(2), "config"),
        (p(2), "runtime"),
        (p(3), "runtime"),
    }
    gov.replace_config_blocks([p(4)])
    assert not gov.is_blocked(p(1))
    assert gov.is_blocked(p(2), 100)  # the runtime ban survives the reload
    assert not gov.is_blocked(p(2), 500)
    assert gov.is_blocked(p(3))
    assert gov.block_entry(p(4)) == BlockEntry(p(4), None, "config")


def test_timed_runtime_ban_expiring_under_config_ban_frees_nobody() -> None:
    gov = PeerGovernor()
    gov.block(p(1), until_ns=100)
    gov.block(p(1), source="config")
    assert gov.expire_blocks(100) == []
    assert gov.is_blocked(p(1), 100)
    assert gov.block_entry(p(1)) == BlockEntry(p(1), None, "config")
    assert gov.unblock(p(1)) is True  # lifts both layers
    assert gov.block_entries() == []


def test_block_entry_prefers_permanent_then_latest_ending() -> None:
    gov = PeerGovernor()
    gov.block(p(1), until_ns=300, source="config")
    gov.block(p(1), until_ns=200)
    assert gov.block_entry(p(1)) == BlockEntry(p(1), 300, "config")
    gov.block(p(1), until_ns=400)
    assert gov.block_entry(p(1)) == BlockEntry(p(1), 400, "runtime")
    gov.block(p(1))
    assert gov.block_entry(p(1)) == BlockEntry(p(1), None, "runtime")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"source": "operator"}, "block source must be 'config' or 'runtime'"),
        ({"until_ns": -1}, r"until_ns must be >= 0"),
        ({"until_ns": 1.5}, r"until_ns must be an int"),
    ],
)
def test_block_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    gov = PeerGovernor()
    with pytest.raises(FrameworkUsageError, match=match):
        gov.block(p(1), **kwargs)  # type: ignore[arg-type]
    assert gov.block_entries() == []


def test_block_rejects_non_peer() -> None:
    with pytest.raises(FrameworkUsageError, match="peer must be a PeerId"):
        PeerGovernor().block(b"\x00\x08" + bytes(8))  # type: ignore[arg-type]
    with pytest.raises(FrameworkUsageError, match="every peer must be a PeerId"):
        PeerGovernor().replace_config_blocks(["x"])  # type: ignore[list-item]


def test_failed_config_reload_changes_nothing() -> None:
    gov = PeerGovernor()
    gov.replace_config_blocks([p(1)])
    with pytest.raises(FrameworkUsageError):
        gov.replace_config_blocks([p(2), "bad"])  # type: ignore[list-item]
    assert gov.block_entries() == [BlockEntry(p(1), None, "config")]


# -- snapshot ----------------------------------------------------------------------------------
def _populated() -> PeerGovernor:
    gov = PeerGovernor(failure_threshold=2)
    gov.block(p(5))
    gov.block(p(6), until_ns=1_000)
    gov.replace_config_blocks([p(6), p(7)])
    gov.set_allowlist({p(1), p(2), p(5)})
    gov.record_failure(p(1), 10)
    gov.record_failure(p(1), 11)
    gov.record_success(p(2), 12)
    return gov


def test_export_state_shape() -> None:
    state = _populated().export_state()
    assert state == {
        "blocklist": [p(5).to_bytes(), p(6).to_bytes(), p(7).to_bytes()],
        "block_entries": [
            [p(5).to_bytes(), None, "runtime"],
            [p(6).to_bytes(), None, "config"],
            [p(6).to_bytes(), 1_000, "runtime"],
            [p(7).to_bytes(), None, "config"],
        ],
        "allowlist": sorted([p(1).to_bytes(), p(2).to_bytes(), p(5).to_bytes()]),
        "health": [[p(1).to_bytes(), 2, 11, True], [p(2).to_bytes(), 0, 12, False]],
        "failure_threshold": 2,
    }


def test_round_trip_through_msgpack() -> None:
    gov = _populated()
    data = msgpack.packb(gov.export_state())
    restored = PeerGovernor.from_state(msgpack.unpackb(data))
    assert restored.export_state() == gov.export_state()
    assert restored.check_inbound(p(7)) == Deny(Blocklisted())
    assert restored.check_inbound(p(3)) == Deny(NotAllowlisted())
    assert restored.is_down(p(1))
    assert restored.expire_blocks(1_000) == []  # p(6) still config-blocked
    assert restored.block_entry(p(6)) == BlockEntry(p(6), None, "config")
    assert restored.record_success(p(1), 20) is CAME_UP


def test_restored_expiry_heap_is_rebuilt() -> None:
    gov = PeerGovernor()
    gov.block(p(1), until_ns=50)
    restored = PeerGovernor.from_state(gov.export_state())
    assert restored.next_block_expiry_ns() == 50
    assert restored.expire_blocks(50) == [p(1)]


def test_from_state_adds_bans_without_a_token_per_ban(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _populated().export_state()

    def no_block(*_args: object) -> None:
        raise AssertionError("from_state went through block()")

    monkeypatch.setattr(PeerGovernor, "block", no_block)
    restored = PeerGovernor.from_state(state)
    assert restored.export_state() == state


def test_upstream_shaped_state_restores_runtime_bans() -> None:
    state = {
        "blocklist": [p(1).to_bytes()],
        "allowlist": None,
        "health": [[p(2).to_bytes(), 1, 5, False]],
        "failure_threshold": 0,
    }
    gov = PeerGovernor.from_state(state)
    assert gov.block_entries() == [BlockEntry(p(1), None, "runtime")]
    assert gov.failure_threshold == 1
    assert gov.peer_health(p(2)) == PeerHealth(1, 5, False)
    assert gov.allowlist is None


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.pop("failure_threshold"), "missing key 'failure_threshold'"),
        (lambda s: s.update(failure_threshold="5"), r"failure_threshold: expected an int"),
        (lambda s: s.update(block_entries=[[b"\x00", None, "runtime"]]), r"block_entries\[0\]"),
        (
            lambda s: s.update(block_entries=[[p(1).to_bytes(), None, "x"]]),
            r"block_entries\[0\]\.source",
        ),
        (lambda s: s.update(block_entries=[[p(1).to_bytes(), -4, "runtime"]]), r"until_ns"),
        (lambda s: s.update(health=[[p(1).to_bytes(), 1, 2]]), r"health\[0\]: expected 4"),
        (lambda s: s.update(health=[[p(1).to_bytes(), 1, 2, 1]]), r"health\[0\]\.down"),
        (
            lambda s: s.update(
                health=[[p(1).to_bytes(), 1, 2, True], [p(1).to_bytes(), 0, 3, False]]
            ),
            r"health\[1\]\.peer: duplicate peer",
        ),
        (lambda s: s.update(allowlist=[7]), r"allowlist\[0\]: expected bytes"),
        (lambda s: s.update(allowlist="all"), r"allowlist: expected a list"),
    ],
)
def test_from_state_rejects_bad_data(mutate: object, match: str) -> None:
    state = _populated().export_state()
    mutate(state)  # type: ignore[operator]
    with pytest.raises(FrameworkStateError, match=match):
        PeerGovernor.from_state(state)


def test_from_state_rejects_non_mapping() -> None:
    with pytest.raises(FrameworkStateError, match="peer_governor: expected a map"):
        PeerGovernor.from_state([])  # type: ignore[arg-type]
