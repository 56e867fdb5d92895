"""Errors raised by `bbnode.store`.

Two families, in the h11 spirit of local vs remote errors:

* `SnapshotFileError` — the *bytes on disk* are not a snapshot file we can use (truncated,
  bit-flipped, written by a newer bbnode). This is the "remote" side: the data misbehaved,
  not the caller. `SnapshotStore.load` never raises these; it turns them into `LoadProblem`s
  and moves the file aside. `decode_snapshot_file` raises them for callers such as
  `bbnode snapshot verify`.
* `SnapshotWriteError` — the store could not write a new generation (full disk, read-only
  or missing permissions). The previous generations are untouched when it is raised.

`StoreUsageError` is the local error: the caller passed an argument outside its domain.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CorruptSnapshotFile",
    "IncompatibleSnapshotFile",
    "SnapshotFileError",
    "SnapshotWriteError",
    "StoreError",
    "StoreUsageError",
]


class StoreError(Exception):
    """Base of every error raised by `bbnode.store`."""


class StoreUsageError(StoreError, ValueError):
    """An argument was outside its documented domain (for example `keep=0`)."""


class SnapshotFileError(StoreError):
    """The content of a snapshot file cannot be used; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CorruptSnapshotFile(SnapshotFileError):
    """Bad magic, a length that disagrees with the file, a checksum mismatch, or a payload
    that is not a decodable snapshot. The file is damaged; an older generation may be fine."""


class IncompatibleSnapshotFile(SnapshotFileError):
    """The file is intact but was written in a format or snapshot `spec_version` this bbnode
    does not read (typically by a newer release). It must be kept, never overwritten: a
    later upgrade can still restore it."""

    def __init__(self, reason: str, *, got: int, expected: int) -> None:
        super().__init__(reason)
        self.got = got
        self.expected = expected


class SnapshotWriteError(StoreError):
    """A new generation could not be written to `path`; `reason` names the OS error.

    Nothing that existed before the call was modified: the previous generation is intact and
    no partial file is left under a generation name.
    """

    def __init__(self, path: Path, reason: str, errno: int | None = None) -> None:
        super().__init__(f"cannot write snapshot {path}: {reason}")
        self.path = path
        self.reason = reason
        self.errno = errno
