"""Crash consistency: real writer processes SIGKILLed at random moments, then a clean load.

Each trial forks a writer that saves generations in a tight loop (temp file, fsync, rename,
directory fsync), kills it with SIGKILL after a random 0-20 ms, and loads the directory from
this process. `bench/snapshot_bench.py --crash-trials 1000` runs the same harness longer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bbnode.store import CorruptSnapshotFile
from bbnode.store._torture import make_payload, run_crash_trials, verify_payload

SNAPSHOT_TRIALS = 200
RAW_TRIALS = 100


def test_payloads_verify_only_when_complete() -> None:
    payload = make_payload(7)
    assert verify_payload(payload) == 7
    assert verify_payload(make_payload(8)) == 8
    for damaged in (payload[:-1], payload[:8] + make_payload(8)[8:], b"short"):
        with pytest.raises(CorruptSnapshotFile):
            verify_payload(damaged)


def test_sigkilled_snapshot_writers_always_leave_a_complete_snapshot(tmp_path: Path) -> None:
    report = run_crash_trials(tmp_path, SNAPSHOT_TRIALS, workers=2, seed=4, mode="snapshot")
    assert report.failures == []
    assert report.trials == SNAPSHOT_TRIALS


def test_sigkilled_raw_writers_always_leave_a_complete_generation(tmp_path: Path) -> None:
    # Raw payloads up to 96 KiB: kills land mid-write far more often than with small files.
    report = run_crash_trials(tmp_path, RAW_TRIALS, workers=2, seed=5, mode="raw")
    assert report.failures == []
    assert report.trials == RAW_TRIALS
