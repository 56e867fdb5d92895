"""Low-level, crash-safe file operations used by the generation store.

The one rule: a file appears under its final name only once its bytes are durable. Writers
create a temp file (a dot-name ending in `.tmp`) in the target's own directory, write, fsync,
rename over the final name and fsync the directory, so a crash at any instant leaves either
the old set of files or the old set plus one complete new file — and perhaps a temp file,
which readers never open and the next save/load deletes.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

__all__ = [
    "TEMP_SUFFIX",
    "directory_lock",
    "fsync_directory",
    "is_temp_name",
    "move_aside",
    "remove_temp_files",
    "temp_name_for",
    "write_file_durably",
]

TEMP_SUFFIX: Final = ".tmp"
LOCK_NAME: Final = ".snapshot.lock"
_NO_PERMISSION: Final = frozenset({errno_mod.EACCES, errno_mod.EPERM, errno_mod.EROFS})


def temp_name_for(final_name: str) -> str:
    """The temp name a writer uses for `final_name`: hidden, pid-tagged, never a generation."""
    return f".{final_name}.{os.getpid()}{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    """True for names made by `temp_name_for` (any pid)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def fsync_directory(directory: Path) -> None:
    """Make renames/unlinks inside `directory` durable (POSIX needs the directory fsynced)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_durably(path: Path, data: bytes) -> None:
    """Atomically create `path` holding `data` (temp file, fsync, rename, directory fsync).

    Raises `OSError` on failure after removing the temp file; `path` is then untouched.
    """
    tmp = path.with_name(temp_name_for(path.name))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def remove_temp_files(directory: Path) -> list[Path]:
    """Delete temp files left by writers that died mid-save; returns what was removed.

    Only safe under `directory_lock`: a live writer's temp file would otherwise vanish.
    """
    removed: list[Path] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        if is_temp_name(name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / name)
                removed.append(directory / name)
    return removed


def _utc_stamp(now_ns: int) -> str:
    seconds, rest = divmod(now_ns, 1_000_000_000)
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def move_aside(path: Path, label: str, now_ns: int | None = None) -> Path:
    """Rename `path` to `<name>.<label>-<UTC timestamp>` without ever replacing a file.

    The timestamp has microseconds; if the name is still taken a `-2`, `-3`, ... suffix is
    added. Callers hold `directory_lock`, so the existence check cannot race another store.
    """
    stamp = _utc_stamp(time.time_ns() if now_ns is None else now_ns)
    base = f"{path.name}.{label}-{stamp}"
    target = path.with_name(base)
    counter = 1
    while os.path.lexists(target):
        counter += 1
        target = path.with_name(f"{base}-{counter}")
    os.rename(path, target)
    fsync_directory(path.parent)
    return target


@contextlib.contextmanager
def directory_lock(directory: Path, *, required: bool) -> Iterator[bool]:
    """Hold an exclusive advisory lock on `directory` for the duration of the block.

    Serialises savers and loaders (threads or processes) so that temp-file cleanup never
    deletes a live writer's file. The kernel drops the lock when a process dies, so a killed
    writer never wedges the store. When the lock file cannot be opened for lack of permission
    (a read-only directory) and `required` is False, yields False instead: loading still
    proceeds, since nothing can write there either.
    """
    try:
        # Read-only suffices for flock(2), and lets a read-only filesystem still be locked.
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if required or exc.errno not in _NO_PERMISSION:
            raise
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)
