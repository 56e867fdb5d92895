"""GenerationStore on real files: rotation, fallback, quarantine, temp-file hygiene."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bbnode.store import (
    CorruptSnapshotFile,
    GenerationStore,
    IncompatibleSnapshotFile,
    ProblemKind,
    StoreUsageError,
    encode_snapshot_file,
)
from bbnode.store._disk import move_aside


def identity(payload: bytes) -> bytes:
    return payload


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_save_creates_directory_and_numbered_generations(tmp_path: Path) -> None:
    store = GenerationStore(tmp_path / "state" / "snapshots")
    first = store.save_payload(b"one")
    second = store.save_payload(b"two")
    assert first.name == "snapshot-0000000001.bbsnap"
    assert second.name == "snapshot-0000000002.bbsnap"
    assert store.generations() == [second, first]
    assert first.read_bytes() == encode_snapshot_file(b"one")
    assert (first.stat().st_mode & 0o777) == 0o600
    result = store.load(identity)
    assert (result.snapshot, result.path, result.problems) == (b"two", second, ())
    assert not result.restore_failed


def test_keep_limits_generations_to_the_newest(tmp_path: Path) -> None:
    store = GenerationStore(tmp_path, keep=3)
    for i in range(6):
        store.save_payload(bytes([i]))
    assert [p.name for p in store.generations()] == [
        "snapshot-0000000006.bbsnap",
        "snapshot-0000000005.bbsnap",
        "snapshot-0000000004.bbsnap",
    ]


@pytest.mark.parametrize("keep", [0, -1, True, 1.5, "2"])
def test_keep_must_be_a_positive_integer(tmp_path: Path, keep: object) -> None:
    with pytest.raises(StoreUsageError, match="keep must be an integer >= 1"):
        GenerationStore(tmp_path, keep=keep)  # type: ignore[arg-type]


def test_missing_or_empty_directory_is_a_fresh_start(tmp_path: Path) -> None:
    for directory in (tmp_path / "absent", tmp_path):
        result = GenerationStore(directory).load(identity)
        assert (result.snapshot, result.path, result.problems) == (None, None, ())
        assert not result.restore_failed


def test_corrupt_newest_falls_back_and_is_moved_aside(tmp_path: Path) -> None:
    store = GenerationStore(tmp_path)
    older = store.save_payload(b"good")
    newest = store.save_payload(b"also good")
    newest.write_bytes(newest.read_bytes()[:-3])  # torn write
    result = store.load(identity)
    assert result.snapshot == b"good"
    assert result.path == older
    [problem] = result.problems
    assert problem.kind is ProblemKind.CORRUPT
    assert problem.path == newest
    assert problem.detail.startswith("truncated: header declares 9 payload bytes")
    assert problem.moved_to is not None
    assert re.fullmatch(
        r"snapshot-0000000002\.bbsnap\.corrupt-\d{8}T\d{6}\.\d{6}Z", problem.moved_to.name
    )
    assert problem.moved_to.exists()
    assert not newest.exists()
    assert str(problem).startswith("snapshot-0000000002.bbsnap: corrupt: truncated")
    # A second load finds only the good one and reports nothing new.
    again = store.load(identity)
    assert (again.snapshot, again.problems) == (b"good", ())


def test_no_valid_generation_means_restore_failed(tmp_path: Path) -> None:
    store = GenerationStore(tmp_path)
    for payload in (b"a", b"b"):
        store.save_payload(payload).write_bytes(b"garbage" * 10)
    result = store.load(identity)
    assert result.snapshot is None
    assert result.restore_failed
    assert [p.kind for p in result.problems] == [ProblemKind.CORRUPT, ProblemKind.CORRUPT]
    assert all("bad magic" in p.detail for p in result.problems)
    assert store.generations() == []


def test_incompatible_version_is_kept_aside_and_never_overwritten(tmp_path: Path) -> None:
    store = GenerationStore(tmp_path)
    store.save_payload(b"v1 state")
    future = store.save_payload(b"v2 state")
    original_bytes = future.read_bytes()

    def decode(payload: bytes) -> bytes:
        if payload.startswith(b"v2"):
            raise IncompatibleSnapshotFile("snapshot spec_version 2", got=2, expected=1)
        return payload

    result = store.load(decode)
    assert result.snapshot == b"v1 state"
    [problem] = result.problems
    assert problem.kind is ProblemKind.INCOMPATIBLE
    assert problem.moved_to is not None
    assert problem.moved_to.name.startswith("snapshot-0000000002.bbsnap.incompatible-")
    # Many later saves rotate generations but never touch (or reuse the number of) the file.
    for i in range(5):
        store.save_payload(bytes([i]))
    assert problem.moved_to.read_bytes() == original_bytes
    assert store.generations()[0].name == "snapshot-0000000007.bbsnap"


def test_kept_aside_names_never_collide(tmp_path: Path) -> None:
    moved = []
    for i in range(3):
        victim = tmp_path / "snapshot-0000000001.bbsnap"
        victim.write_bytes(bytes([i]))
        moved.append(move_aside(victim, "corrupt", now_ns=1_700_000_000_123_456_000))
    assert [m.name for m in moved] == [
        "snapshot-0000000001.bbsnap.corrupt-20231114T221320.123456Z",
        "snapshot-0000000001.bbsnap.corrupt-20231114T221320.123456Z-2",
        "snapshot-0000000001.bbsnap.corrupt-20231114T221320.123456Z-3",
    ]
    assert [m.read_bytes() for m in moved] == [b"\0", b"\1", b"\2"]


def test_decoder_rejection_is_corrupt(tmp_path: Path) -> None:
    store = GenerationStore(tmp_path)
    store.save_payload(b"not what the decoder wants")

    def decode(payload: bytes) -> bytes:
        raise CorruptSnapshotFile("payload is not a NodeSnapshot: bad field")

    result = store.load(decode)
    assert result.restore_failed
    assert result.problems[0].detail == "payload is not a NodeSnapshot: bad field"


def test_temp_files_are_never_chosen_and_are_cleaned(tmp_path: Path) -> None:
    store = GenerationStore(tmp_path)
    store.save_payload(b"committed")
    # A complete-looking file under a temp name, as a writer killed before rename leaves it.
    stale = tmp_path / ".snapshot-0000000009.bbsnap.4242.tmp"
    stale.write_bytes(encode_snapshot_file(b"uncommitted"))
    result = store.load(identity)
    assert result.snapshot == b"committed"
    assert result.problems == ()
    assert result.removed_temp_files == (stale,)
    assert not stale.exists()
    stale.write_bytes(b"partial")
    store.save_payload(b"next")
    assert not stale.exists()
    assert names(tmp_path) == [
        ".snapshot.lock",
        "snapshot-0000000001.bbsnap",
        "snapshot-0000000002.bbsnap",
    ]


def test_unrelated_files_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "identity.key").write_bytes(b"k")
    (tmp_path / "snapshot-notes.txt").write_bytes(b"n")
    store = GenerationStore(tmp_path, keep=1)
    for i in range(3):
        store.save_payload(bytes([i]))
    assert names(tmp_path) == [
        ".snapshot.lock",
        "identity.key",
        "snapshot-0000000003.bbsnap",
        "snapshot-notes.txt",
    ]


def test_directory_that_is_a_file_is_reported_not_raised(tmp_path: Path) -> None:
    target = tmp_path / "not-a-dir"
    target.write_bytes(b"")
    result = GenerationStore(target).load(identity)
    assert result.snapshot is None
    [problem] = result.problems
    assert (problem.kind, problem.path) == (ProblemKind.UNREADABLE, target)
    assert result.restore_failed


def test_unreadable_generation_is_left_in_place(tmp_path: Path) -> None:
    store = GenerationStore(tmp_path)
    store.save_payload(b"old")
    newest = store.save_payload(b"new")
    newest.unlink()
    newest.mkdir()  # reading a directory fails with an OSError, as root too
    result = store.load(identity)
    assert result.snapshot == b"old"
    [problem] = result.problems
    assert (problem.kind, problem.moved_to) == (ProblemKind.UNREADABLE, None)
    assert newest.exists()
