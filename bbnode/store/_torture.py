"""Crash-consistency harness: SIGKILL snapshot writers at random moments, then load.

Used by the test suite (hundreds of trials) and by `bench/snapshot_bench.py --crash-trials`.
A *zygote* child process (`python -m bbnode.store._torture`) imports the store once, then for
each trial forks a writer that saves generations in a tight loop, sleeps a random 0..N ms and
SIGKILLs it. Forking from a warm process makes a trial cost milliseconds instead of an
interpreter start-up, so hundreds of real kills fit in a few seconds. The parent — a separate
process that never wrote anything — then loads the directory and checks that it got a
complete generation with exactly the expected content, no problems, and no temp file left.

Payloads are self-describing: 8 bytes of sequence number followed by filler derived from it,
so a verifier can tell a complete generation from any mix of two.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bbnode.store._disk import is_temp_name
from bbnode.store.errors import CorruptSnapshotFile
from bbnode.store.generations import GenerationStore

__all__ = [
    "CrashReport",
    "make_node_snapshot_writer",
    "make_payload",
    "run_crash_trials",
    "verify_node_snapshot",
    "verify_payload",
]

_MIN_FILLER = 512
_MAX_FILLER = 96 * 1024


def make_payload(seq: int) -> bytes:
    """A payload for generation `seq`: the sequence number, then deterministic filler."""
    rng = random.Random(seq)
    block = hashlib.sha256(seq.to_bytes(8, "big")).digest()
    size = rng.randrange(_MIN_FILLER, _MAX_FILLER)
    filler = (block * (size // len(block) + 1))[:size]
    return seq.to_bytes(8, "big") + filler


def verify_payload(payload: bytes) -> int:
    """Return the sequence number of a complete payload; raise `CorruptSnapshotFile` if not."""
    if len(payload) < 8:
        raise CorruptSnapshotFile("payload shorter than its sequence number")
    seq = int.from_bytes(payload[:8], "big")
    if payload != make_payload(seq):
        raise CorruptSnapshotFile(f"payload for sequence {seq} has the wrong content")
    return seq


def _peer_address(n: int) -> Any:
    from bbnode.ids import Address

    return Address.tcp("127.0.0.1", n % 60_000 + 1)


def make_node_snapshot_writer(first_seq: int) -> Callable[[], Any]:
    """A callable returning successive real `NodeSnapshot`s: each adds one peer `n` (as
    `PeerId.from_u64(n)`) at the address `_peer_address(n)`."""
    from bbnode.engine.node import Node, NodeConfig
    from bbnode.ids import PeerId

    node = Node(PeerId.from_u64(1 << 40), config=NodeConfig(rng_seed=1))
    counter = [first_seq]

    def next_snapshot() -> Any:
        n = counter[0]
        counter[0] += 1
        node.add_peer(PeerId.from_u64(n), [_peer_address(n)])
        return node.snapshot()

    return next_snapshot


def verify_node_snapshot(snapshot: Any) -> int:
    """Check a restored snapshot from `make_node_snapshot_writer`; returns its peer count."""
    from bbnode.ids import Address, PeerId

    entries = snapshot.transient.framework.address_book
    if not entries:
        raise CorruptSnapshotFile("restored snapshot has an empty address book")
    for entry in entries:
        n = int.from_bytes(PeerId.from_bytes(entry.peer_id).digest, "big")
        if [Address.from_bytes(a) for a in entry.addresses] != [_peer_address(n)]:
            raise CorruptSnapshotFile(f"peer {n} restored with the wrong addresses")
    return len(entries)


# -- zygote side ---------------------------------------------------------------------------
def _writer(directory: Path, first_seq: int, mode: str) -> None:
    if mode == "snapshot":
        from bbnode.store.snapshot_store import SnapshotStore

        snapshots = make_node_snapshot_writer(first_seq)
        node_store = SnapshotStore(directory, keep=2)
        while True:
            node_store.save(snapshots())
    store = GenerationStore(directory, keep=2)
    seq = first_seq
    while True:
        store.save_payload(make_payload(seq))
        seq += 1


def _run_trial(directory: Path, first_seq: int, delay_ns: int, mode: str) -> str:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the writer is killed, never returns
        try:
            _writer(directory, first_seq, mode)
        finally:
            os._exit(3)
    time.sleep(delay_ns / 1e9)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed"
    return f"writer exited by itself with status {status}"


def _zygote() -> None:
    """Serve `trial <dir> <first_seq> <delay_ns> <mode>` lines from stdin, one reply each."""
    if sys.argv[1:] == ["snapshot"]:
        make_node_snapshot_writer(1)()  # warm the engine imports before any fork
    print("ready", flush=True)
    for line in sys.stdin:
        _, directory, first_seq, delay_ns, mode = line.split()
        print(_run_trial(Path(directory), int(first_seq), int(delay_ns), mode), flush=True)


# -- parent side ---------------------------------------------------------------------------
@dataclass
class CrashReport:
    """Outcome of `run_crash_trials`."""

    trials: int = 0
    """Writers killed and verified."""
    failures: list[str] = field(default_factory=list)
    """One line per trial whose load was not a clean, complete generation."""
    temp_files_found: int = 0
    """Trials where a kill left a temp file (a save was cut mid-write); load removed it."""
    seconds: float = 0.0
    """Wall time of the whole run."""


def _check_after_kill(store: GenerationStore, trial: int, mode: str) -> tuple[str | None, bool]:
    had_temp = any(is_temp_name(name) for name in os.listdir(store.directory))
    if mode == "snapshot":
        from bbnode.store.snapshot_store import SnapshotStore

        result: Any = SnapshotStore(store.directory).load()
        if result.snapshot is not None:
            verify_node_snapshot(result.snapshot)
    else:
        result = store.load(verify_payload)
    leftover = [name for name in os.listdir(store.directory) if is_temp_name(name)]
    if result.snapshot is None or result.problems or leftover:
        problems = "; ".join(str(p) for p in result.problems) or "none"
        return (
            f"trial {trial}: snapshot={result.snapshot is not None} problems=[{problems}] "
            f"temp files left={leftover}",
            had_temp,
        )
    return None, had_temp


def _drive_zygote(
    directories: list[Path],
    rng: random.Random,
    max_delay_ms: float,
    report: CrashReport,
    mode: str,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bbnode.store._torture", mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("crash-test zygote failed to start")
        for index, directory in enumerate(directories):
            store = GenerationStore(directory, keep=2)
            first_seq = (index + 1) * 1_000_000
            # Something valid to fall back on, written before the writer starts.
            if mode == "snapshot":
                from bbnode.store.snapshot_store import SnapshotStore

                SnapshotStore(directory).save(make_node_snapshot_writer(first_seq - 1)())
            else:
                store.save_payload(make_payload(first_seq - 1))
            delay_ns = int(rng.uniform(0, max_delay_ms) * 1e6)
            proc.stdin.write(f"trial {directory} {first_seq} {delay_ns} {mode}\n")
            proc.stdin.flush()
            outcome = proc.stdout.readline().strip()
            failure, had_temp = _check_after_kill(store, index, mode)
            if outcome != "killed":
                failure = f"trial {index}: {outcome or 'zygote died'}"
            report.trials += 1
            report.temp_files_found += had_temp
            if failure:
                report.failures.append(failure)
    except Exception as exc:  # a thread's exception would otherwise vanish
        report.failures.append(f"harness error: {type(exc).__name__}: {exc}")
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


def run_crash_trials(
    root: Path,
    trials: int,
    *,
    workers: int = 2,
    max_delay_ms: float = 20.0,
    seed: int = 0,
    mode: str = "snapshot",
) -> CrashReport:
    """Run `trials` kill-and-load trials under `root`, `workers` zygotes in parallel.

    `mode="snapshot"` writes real `NodeSnapshot`s through `SnapshotStore` (the default);
    `mode="raw"` writes self-verifying raw payloads through `GenerationStore`.
    """
    if mode not in ("snapshot", "raw"):
        raise ValueError(f"mode must be 'snapshot' or 'raw', got {mode!r}")
    report = CrashReport()
    started = time.perf_counter()
    shares = [list(range(w, trials, workers)) for w in range(workers)]
    partial = [CrashReport() for _ in range(workers)]
    threads = []
    for w, share in enumerate(shares):
        dirs = [root / f"trial-{i:05d}" for i in share]
        rng = random.Random(seed * 1000 + w)
        threads.append(
            threading.Thread(target=_drive_zygote, args=(dirs, rng, max_delay_ms, partial[w], mode))
        )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for part in partial:
        report.trials += part.trials
        report.failures.extend(part.failures)
        report.temp_files_found += part.temp_files_found
    report.seconds = time.perf_counter() - started
    return report


if __name__ == "__main__":
    _zygote()
