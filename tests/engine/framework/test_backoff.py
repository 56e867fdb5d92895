"""BackoffTable: upstream delays, optional seeded full jitter, snapshot round trips."""

from __future__ import annotations

import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.engine.framework import (
    DEFAULT_BACKOFF_BASE_NS,
    DEFAULT_BACKOFF_MAX_NS,
    BackoffState,
    BackoffTable,
    FrameworkStateError,
    FrameworkUsageError,
)
from bbnode.ids import PeerId


def p(n: int) -> PeerId:
    return PeerId.from_u64(n)


def test_upstream_defaults() -> None:
    table = BackoffTable()
    assert DEFAULT_BACKOFF_BASE_NS == 10_000_000
    assert DEFAULT_BACKOFF_MAX_NS == 60_000_000_000
    assert (table.base_ns, table.max_delay_ns, table.jitter) == (10_000_000, 60_000_000_000, False)


def test_delay_doubles_then_caps() -> None:
    table = BackoffTable()
    ms = 1_000_000
    assert [table.delay_ns(n) for n in range(0, 5)] == [0, 10 * ms, 20 * ms, 40 * ms, 80 * ms]
    # 10 ms * 2**12 = 40.96 s < 60 s; 2**13 -> 81.92 s capped
    assert table.delay_ns(13) == 40_960 * ms
    assert table.delay_ns(14) == 60_000 * ms
    assert table.delay_ns(10_000) == 60_000 * ms
    assert table.delay_ns(-3) == 0


def test_record_failure_sets_next_retry() -> None:
    table = BackoffTable(base_ns=100, max_delay_ns=1_000)
    assert table.record_failure(p(1), 5_000) == BackoffState(1, 5_000, 5_100)
    assert table.record_failure(p(1), 5_100) == BackoffState(2, 5_100, 5_300)
    assert table.record_failure(p(1), 5_300) == BackoffState(3, 5_300, 5_700)
    assert table.record_failure(p(1), 5_700) == BackoffState(4, 5_700, 6_500)
    assert table.record_failure(p(1), 6_500) == BackoffState(5, 6_500, 7_500)  # capped
    assert table.state(p(1)) == BackoffState(5, 6_500, 7_500)
    assert table.state(p(2)) is None


def test_should_retry_boundaries() -> None:
    table = BackoffTable(base_ns=100, max_delay_ns=1_000)
    assert table.should_retry(p(1), 0)  # no entry
    table.record_failure(p(1), 1_000)
    assert not table.should_retry(p(1), 1_099)
    assert table.should_retry(p(1), 1_100)


def test_success_clears_entry() -> None:
    table = BackoffTable(base_ns=100, max_delay_ns=1_000)
    table.record_failure(p(1), 0)
    table.record_failure(p(1), 100)
    table.record_success(p(1))
    assert table.state(p(1)) is None
    assert len(table) == 0
    assert p(1) not in table
    assert table.record_failure(p(1), 500) == BackoffState(1, 500, 600)
    table.record_success(p(9))  # unknown: no-op


def test_entries_and_len() -> None:
    table = BackoffTable(base_ns=1, max_delay_ns=10)
    table.record_failure(p(2), 0)
    table.record_failure(p(1), 0)
    assert len(table) == 2
    assert dict(table.entries()) == {p(1): BackoffState(1, 0, 1), p(2): BackoffState(1, 0, 1)}


def test_jitter_is_deterministic_given_seed() -> None:
    def run(seed: int) -> list[int]:
        table = BackoffTable(
            base_ns=1_000, max_delay_ns=100_000, jitter=True, rng=random.Random(seed)
        )
        return [table.record_failure(p(1), 0).next_retry_ns for _ in range(10)]

    assert run(7) == run(7)
    assert run(7) != run(8)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32), failures=st.integers(1, 30))
def test_jitter_stays_within_full_range(seed: int, failures: int) -> None:
    table = BackoffTable(base_ns=1_000, max_delay_ns=50_000, jitter=True, rng=random.Random(seed))
    for n in range(1, failures + 1):
        state = table.record_failure(p(1), 10_000)
        assert state.attempts == n
        assert 10_000 <= state.next_retry_ns <= 10_000 + table.delay_ns(n)


def test_jitter_without_rng_still_bounded() -> None:
    table = BackoffTable(base_ns=1_000, max_delay_ns=4_000, jitter=True)
    for _ in range(6):
        state = table.record_failure(p(1), 0)
        assert 0 <= state.next_retry_ns <= 4_000


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_ns": 0}, "base_ns must be >= 1"),
        ({"max_delay_ns": -1}, "max_delay_ns must be >= 0"),
        ({"base_ns": 1.5}, "base_ns must be an int"),
        ({"rng": 42}, "rng must be a random.Random"),
    ],
)
def test_rejects_bad_config(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(FrameworkUsageError, match=match):
        BackoffTable(**kwargs)  # type: ignore[arg-type]


def test_export_restore_round_trip() -> None:
    table = BackoffTable(base_ns=100, max_delay_ns=1_000)
    table.record_failure(p(2), 10)
    table.record_failure(p(1), 20)
    table.record_failure(p(1), 30)
    exported = table.export_state()
    assert exported == [[p(1).to_bytes(), 2, 30, 230], [p(2).to_bytes(), 1, 10, 110]]
    other = BackoffTable(base_ns=100, max_delay_ns=1_000)
    other.record_failure(p(3), 0)
    other.restore_state(msgpack.unpackb(msgpack.packb(exported)))
    assert other.export_state() == exported
    assert other.state(p(3)) is None
    assert other.record_failure(p(1), 300) == BackoffState(3, 300, 700)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("x", "backoff_table: expected a list"),
        ([[b"\x00\x01\x01", 1, 0]], r"backoff_table\[0\]: expected 4 items"),
        ([[b"\xff", 1, 0, 0]], r"backoff_table\[0\]\.peer: not a peer id"),
        ([[PeerId.from_u64(1).to_bytes(), 0, 0, 0]], r"\.attempts: must be >= 1"),
        ([[PeerId.from_u64(1).to_bytes(), 1, -1, 0]], r"\.last_attempt_ns: must be >= 0"),
        (
            [[PeerId.from_u64(1).to_bytes(), 1, 0, 0]] * 2,
            r"backoff_table\[1\]\.peer: duplicate peer",
        ),
    ],
)
def test_restore_rejects_bad_rows_and_keeps_state(rows: object, match: str) -> None:
    table = BackoffTable()
    table.record_failure(p(9), 0)
    before = table.export_state()
    with pytest.raises(FrameworkStateError, match=match):
        table.restore_state(rows)  # type: ignore[arg-type]
    assert table.export_state() == before
