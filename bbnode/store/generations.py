"""`GenerationStore`: numbered, checksummed payload files in one directory, crash-safe.

This is the store minus any knowledge of what the payload means: it saves opaque bytes as
the next generation and loads the newest generation that a caller-supplied `decode` accepts.
`SnapshotStore` (in `snapshot_store.py`) is this plus `NodeSnapshot` encode/decode; keeping
the layers apart lets the crash tests and `bbnode snapshot verify` work on raw files.

Directory layout (everything else in the directory is left alone)::

    snapshot-0000000041.bbsnap                           generation 41
    snapshot-0000000042.bbsnap                           generation 42 (newest)
    snapshot-0000000040.bbsnap.corrupt-20250101T...Z     kept aside: failed its checks
    snapshot-0000000043.bbsnap.incompatible-2025...Z     kept aside: newer format/spec version
    .snapshot-0000000044.bbsnap.<pid>.tmp                a save in progress (or killed)
    .snapshot.lock                                       flock(2) serialising savers/loaders

Files kept aside are never deleted or overwritten by the store; an operator may delete them,
or rename one back to a generation name after upgrading bbnode to restore it.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Generic, TypeVar

from bbnode.store._disk import (
    directory_lock,
    fsync_directory,
    move_aside,
    remove_temp_files,
    write_file_durably,
)
from bbnode.store.errors import (
    CorruptSnapshotFile,
    IncompatibleSnapshotFile,
    SnapshotWriteError,
    StoreUsageError,
)
from bbnode.store.fileformat import (
    HEADER_SIZE,
    MAX_PAYLOAD_BYTES,
    decode_snapshot_file,
    encode_snapshot_file,
)

__all__ = [
    "DEFAULT_KEEP",
    "GenerationStore",
    "LoadProblem",
    "LoadResult",
    "ProblemKind",
]

T = TypeVar("T")

DEFAULT_KEEP: Final = 2  # SPEC §5 / §7 `snapshot.keep`
_PREFIX: Final = "snapshot-"
_SUFFIX: Final = ".bbsnap"
_GENERATION_RE: Final = re.compile(r"^snapshot-(\d+)\.bbsnap$")
# Also matches names kept aside, so a new generation never reuses a quarantined number.
_ANY_GENERATION_RE: Final = re.compile(r"^snapshot-(\d+)\.bbsnap(?:\.|$)")


class ProblemKind(enum.Enum):
    """Why a generation file was not restored."""

    CORRUPT = "corrupt"
    """Failed the header, length or checksum check, or its payload did not decode."""
    INCOMPATIBLE = "incompatible"
    """Intact, but of a format or snapshot spec version this bbnode does not read."""
    UNREADABLE = "unreadable"
    """Could not be read at all (permissions, I/O error); left where it was."""


@dataclass(frozen=True, slots=True)
class LoadProblem:
    """One file the loader skipped, and what it did with it."""

    path: Path
    """The file as it was found (a generation name, or the directory itself)."""
    kind: ProblemKind
    """Why it was skipped."""
    detail: str
    """The specific check that failed, e.g. `checksum mismatch: ...`."""
    moved_to: Path | None = None
    """Where it was kept aside; None when it was left in place."""

    def __str__(self) -> str:
        where = f"kept aside as {self.moved_to.name}" if self.moved_to else "left in place"
        return f"{self.path.name}: {self.kind.value}: {self.detail} ({where})"


@dataclass(frozen=True, slots=True)
class LoadResult(Generic[T]):
    """What `load` found: the restored value (or None) and every problem met on the way."""

    snapshot: T | None
    """The newest generation that decoded, or None (fresh start)."""
    path: Path | None = None
    """The file `snapshot` came from."""
    problems: tuple[LoadProblem, ...] = ()
    """Generations skipped, newest first. Non-empty with `snapshot` set means an older
    generation was restored; non-empty with `snapshot` None means restore failed."""
    removed_temp_files: tuple[Path, ...] = field(default=())
    """Leftovers of interrupted saves that were deleted (never considered for restore)."""

    @property
    def restore_failed(self) -> bool:
        """True when snapshots existed but none could be restored (`snapshot_restore_failed`
        in health and metrics). An empty directory is a fresh start, not a failure."""
        return self.snapshot is None and bool(self.problems)


def _generation_number(name: str) -> int | None:
    match = _GENERATION_RE.match(name)
    return int(match.group(1)) if match else None


class GenerationStore:
    """Saves opaque payloads as numbered generations and loads the newest valid one.

    `save_payload` writes generation N+1 atomically and then prunes all but the newest
    `keep` generations; `load` walks generations newest-first, moves corrupt and
    incompatible files aside, and returns the first one `decode` accepts. Safe to share
    between threads and processes (an flock serialises them); not async — the daemon calls
    it from a worker thread.
    """

    def __init__(self, directory: str | os.PathLike[str], keep: int = DEFAULT_KEEP) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise StoreUsageError(f"keep must be an integer >= 1, got {keep!r}")
        self.directory = Path(directory)
        self.keep = keep

    # -- inspection ------------------------------------------------------------------------
    def generations(self) -> list[Path]:
        """Generation files currently on disk, newest first (temp and kept-aside excluded)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        numbered = [(n, name) for name in names if (n := _generation_number(name)) is not None]
        return [self.directory / name for _, name in sorted(numbered, reverse=True)]

    def _next_generation(self) -> int:
        highest = 0
        for name in os.listdir(self.directory):
            match = _ANY_GENERATION_RE.match(name)
            if match:
                highest = max(highest, int(match.group(1)))
        return highest + 1

    # -- saving ----------------------------------------------------------------------------
    def save_payload(self, payload: bytes) -> Path:
        """Write `payload` as the next generation and return its path.

        Raises `SnapshotWriteError` (disk full, read-only or unwritable directory, payload
        over the size cap); every generation that existed before the call is then intact.
        """
        try:
            data = encode_snapshot_file(payload)
        except ValueError as exc:
            raise SnapshotWriteError(self.directory, str(exc)) from exc
        target = self.directory
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            with directory_lock(self.directory, required=True):
                remove_temp_files(self.directory)
                number = self._next_generation()
                target = self.directory / f"{_PREFIX}{number:010d}{_SUFFIX}"
                write_file_durably(target, data)
                self._prune()
        except OSError as exc:
            raise SnapshotWriteError(target, exc.strerror or str(exc), exc.errno) from exc
        return target

    def _prune(self) -> None:
        # The new generation is already durable: failing to delete an old one must not turn
        # a successful save into an error. The next save retries.
        stale = self.generations()[self.keep :]
        for path in stale:
            try:
                os.unlink(path)
            except OSError:
                continue
        if stale:
            with contextlib.suppress(OSError):
                fsync_directory(self.directory)

    # -- loading ---------------------------------------------------------------------------
    def load(self, decode: Callable[[bytes], T]) -> LoadResult[T]:
        """Return the newest generation whose payload `decode` accepts.

        `decode` raises `CorruptSnapshotFile` or `IncompatibleSnapshotFile` to reject a
        payload. Never raises for anything found on disk: each skipped file becomes a
        `LoadProblem`, and corrupt or incompatible files are moved aside.
        """
        if not self.directory.exists():
            return LoadResult(None)
        problems: list[LoadProblem] = []
        try:
            with directory_lock(self.directory, required=False):
                try:
                    removed = tuple(remove_temp_files(self.directory))
                except OSError:
                    removed = ()  # read-only: readers skip temp files anyway
                for path in self.generations():
                    value = self._try_load(path, decode, problems)
                    if value is not None:
                        return LoadResult(value[0], path, tuple(problems), removed)
        except OSError as exc:
            problem = LoadProblem(self.directory, ProblemKind.UNREADABLE, _os_reason(exc))
            return LoadResult(None, None, (*problems, problem))
        return LoadResult(None, None, tuple(problems), removed)

    def _try_load(
        self, path: Path, decode: Callable[[bytes], T], problems: list[LoadProblem]
    ) -> tuple[T] | None:
        try:
            data = _read_bounded(path)
            return (decode(decode_snapshot_file(data)),)
        except FileNotFoundError:
            return None  # removed by someone else between listing and reading
        except OSError as exc:
            problems.append(LoadProblem(path, ProblemKind.UNREADABLE, _os_reason(exc)))
        except IncompatibleSnapshotFile as exc:
            problems.append(self._keep_aside(path, ProblemKind.INCOMPATIBLE, exc.reason))
        except CorruptSnapshotFile as exc:
            problems.append(self._keep_aside(path, ProblemKind.CORRUPT, exc.reason))
        return None

    def _keep_aside(self, path: Path, kind: ProblemKind, detail: str) -> LoadProblem:
        try:
            moved = move_aside(path, kind.value)
        except OSError as exc:
            detail = f"{detail}; could not move it aside: {_os_reason(exc)}"
            return LoadProblem(path, kind, detail)
        return LoadProblem(path, kind, detail, moved)


def _read_bounded(path: Path) -> bytes:
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > HEADER_SIZE + MAX_PAYLOAD_BYTES:
            raise CorruptSnapshotFile(f"file is {size} bytes, larger than any snapshot file")
        return file.read()


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
