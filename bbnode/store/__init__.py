"""Snapshot files on disk (SPEC §5): a checksummed container and a crash-safe writer.

`fileformat` is pure (bytes in, bytes out); `generations` does the disk work for opaque
payloads; `SnapshotStore` adds `NodeSnapshot` encoding on top. Loading never raises for
anything found on disk: it reports `LoadProblem`s and moves bad files aside, so a damaged
state directory can never put the daemon into a crash loop.
"""

from bbnode.store.errors import (
    CorruptSnapshotFile,
    IncompatibleSnapshotFile,
    SnapshotFileError,
    SnapshotWriteError,
    StoreError,
    StoreUsageError,
)
from bbnode.store.fileformat import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    READABLE_FORMAT_VERSIONS,
    decode_snapshot_file,
    encode_snapshot_file,
)
from bbnode.store.generations import (
    DEFAULT_KEEP,
    GenerationStore,
    LoadProblem,
    LoadResult,
    ProblemKind,
)
from bbnode.store.snapshot_store import SnapshotStore, decode_node_snapshot

__all__ = [
    "DEFAULT_KEEP",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "READABLE_FORMAT_VERSIONS",
    "CorruptSnapshotFile",
    "GenerationStore",
    "IncompatibleSnapshotFile",
    "LoadProblem",
    "LoadResult",
    "ProblemKind",
    "SnapshotFileError",
    "SnapshotStore",
    "SnapshotWriteError",
    "StoreError",
    "StoreUsageError",
    "decode_node_snapshot",
    "decode_snapshot_file",
    "encode_snapshot_file",
]
