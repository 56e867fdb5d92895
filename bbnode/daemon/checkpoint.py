"""Checkpoints: snapshots taken in the driver task, written to disk in a worker thread.

The driver hands over a ``NodeSnapshot`` taken at a consistent point (between polls). A
background writer writes the *newest* handed-over snapshot: when several arrive while a
write is running only the last is kept, since each supersedes the ones before. A failed
write is logged, makes the node report unhealthy, and is retried after ``retry_s`` — never
fatal: a full disk must not take a running node down.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import structlog
import trio

from bbnode.daemon.counters import Counters
from bbnode.store import SnapshotStore
from bbnode.store.errors import SnapshotWriteError

__all__ = ["DEFAULT_RETRY_S", "Checkpointer"]

log = structlog.get_logger(component="checkpoint")

#: Delay before retrying a failed write (a new snapshot handed over retries sooner).
DEFAULT_RETRY_S = 5.0


class Checkpointer:
    """Serialises snapshot writes; ``run`` is the background writer task."""

    def __init__(
        self, store: SnapshotStore, counters: Counters, retry_s: float = DEFAULT_RETRY_S
    ) -> None:
        self.store = store
        self.counters = counters
        self.retry_s = retry_s
        self._lock = trio.Lock()
        self._pending: Any = None
        self._wakeup = trio.Event()
        self.last_path: Path | None = None
        self.last_error: str | None = None
        self.writes = 0
        #: The last successful write, for metrics: Unix time, seconds taken, file size.
        self.last_written_unix: float | None = None
        self.last_duration_s = 0.0
        self.last_size_bytes = 0

    @property
    def healthy(self) -> bool:
        """False while the most recent write attempt failed."""
        return self.last_error is None

    def submit(self, snapshot: Any) -> None:
        """Hand over a snapshot for the background writer (replaces one not yet written)."""
        self._pending = snapshot
        self._wakeup.set()

    async def write_now(self, snapshot: Any) -> Path:
        """Write ``snapshot`` now (waiting for a running write); raises SnapshotWriteError.

        Supersedes a pending background snapshot, which is older.
        """
        self._pending = None
        async with self._lock:
            return await self._write(snapshot)

    def _save(self, snapshot: Any) -> tuple[Path, int]:
        # Runs in the worker thread: the stat is disk I/O too.
        path: Path = self.store.save(snapshot)
        try:
            size = path.stat().st_size
        except OSError:
            size = self.last_size_bytes
        return path, size

    async def _write(self, snapshot: Any) -> Path:
        started = time.perf_counter()
        try:
            path, size = await trio.to_thread.run_sync(self._save, snapshot)
        except SnapshotWriteError as exc:
            self.last_error = str(exc)
            self.counters.incr("snapshot.write_failed")
            log.error("snapshot_write_failed", reason=str(exc))
            raise
        self.last_error = None
        self.last_path = path
        self.last_duration_s = time.perf_counter() - started
        self.last_size_bytes = size
        self.last_written_unix = time.time()
        self.writes += 1
        self.counters.incr("snapshot.written")
        log.info("snapshot_written", path=str(path))
        return path

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write handed-over snapshots until cancelled; failed ones are retried."""
        task_status.started()
        retry_at = math.inf
        while True:
            with trio.move_on_at(retry_at):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            snapshot, self._pending = self._pending, None
            if snapshot is None:
                retry_at = math.inf
                continue
            async with self._lock:
                try:
                    await self._write(snapshot)
                    retry_at = math.inf
                except SnapshotWriteError:
                    # Keep it for the retry unless a newer one arrived meanwhile.
                    if self._pending is None:
                        self._pending = snapshot
                    retry_at = trio.current_time() + self.retry_s

    async def flush(self) -> Path | None:
        """Write a pending snapshot now (shutdown); returns its path or None."""
        snapshot, self._pending = self._pending, None
        if snapshot is None:
            return None
        async with self._lock:
            try:
                return await self._write(snapshot)
            except SnapshotWriteError:
                return None
