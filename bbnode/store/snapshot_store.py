"""`SnapshotStore`: the node's snapshot generations on disk (SPEC §5).

A `GenerationStore` whose payload is a msgpack `NodeSnapshot`. Loading classifies what the
engine's decoder says: `SpecVersionMismatch` → the file is *incompatible* (kept aside, never
overwritten: a later bbnode may read it); `SnapshotDecodeError` → *corrupt* (kept aside too,
under a different label). Everything found on disk is reported, nothing found on disk raises.
"""

from __future__ import annotations

import os
from pathlib import Path

from bbnode.engine.errors import SnapshotDecodeError, SpecVersionMismatch
from bbnode.engine.snapshot import NodeSnapshot
from bbnode.store.errors import CorruptSnapshotFile, IncompatibleSnapshotFile
from bbnode.store.generations import DEFAULT_KEEP, GenerationStore, LoadResult

__all__ = ["SnapshotStore", "decode_node_snapshot"]


def decode_node_snapshot(payload: bytes) -> NodeSnapshot:
    """Decode a `NodeSnapshot` payload, translating engine errors to store errors.

    Raises `IncompatibleSnapshotFile` for another `spec_version` and `CorruptSnapshotFile`
    for anything else the decoder refuses. A payload reaches this point only after its
    SHA-256 matched, so a refusal means it was written wrong, not damaged on disk; moving it
    aside (not deleting it) keeps the evidence and avoids a crash loop either way — which is
    also why an unexpected exception from the decoder (a bug) is treated as corruption rather
    than allowed to stop every start-up.
    """
    try:
        return NodeSnapshot.decode(payload)
    except SpecVersionMismatch as exc:
        got, expected = int(exc.got), int(exc.expected)
        raise IncompatibleSnapshotFile(
            f"snapshot spec_version {got}, this bbnode restores spec_version {expected}",
            got=got,
            expected=expected,
        ) from exc
    except SnapshotDecodeError as exc:
        raise CorruptSnapshotFile(f"payload is not a NodeSnapshot: {exc}") from exc
    except Exception as exc:
        raise CorruptSnapshotFile(
            f"payload could not be decoded ({type(exc).__name__}: {exc})"
        ) from exc


class SnapshotStore:
    """The node's snapshot directory: `save(snapshot) -> Path`, `load() -> LoadResult`.

    `keep` generations are retained (default 2). See `GenerationStore` for the directory
    layout, atomicity and locking; `load` never raises for bad files (see `LoadResult`).
    """

    def __init__(self, directory: str | os.PathLike[str], keep: int = DEFAULT_KEEP) -> None:
        self._files = GenerationStore(directory, keep)

    @property
    def directory(self) -> Path:
        """The directory holding the generations."""
        return self._files.directory

    @property
    def keep(self) -> int:
        """How many generations `save` retains."""
        return self._files.keep

    def generations(self) -> list[Path]:
        """Generation files on disk, newest first."""
        return self._files.generations()

    def save(self, snapshot: NodeSnapshot) -> Path:
        """Encode and write `snapshot` as the newest generation; returns its path.

        Raises `SnapshotWriteError` with previous generations intact.
        """
        payload = snapshot.encode()
        return self._files.save_payload(payload)

    def load(self) -> LoadResult[NodeSnapshot]:
        """Restore the newest valid generation; see `LoadResult` for what is reported."""
        return self._files.load(decode_node_snapshot)
