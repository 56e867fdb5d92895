"""The snapshot file container: a fixed header, then the payload. Pure: bytes in, bytes out.

Layout (all integers big-endian)::

    offset  size  field
         0     8  magic            b"\\x89BBSNAP\\n" (high bit and newline catch text-mode
                                   transfers and truncation to 7 bits, as PNG's magic does)
         8     2  format_version   FORMAT_VERSION when written; READABLE_FORMAT_VERSIONS read
        10     2  flags            0; reserved, a reader refuses non-zero
        12     8  payload_length   exact byte count of the payload
        20    32  payload_sha256   SHA-256 of the payload
        52     n  payload          msgpack `NodeSnapshot` (opaque to this module)

Format versions: 1, the per-peer tables of the payload as arrays of rows; 2, those tables by
column (see `bbnode.engine._snapshot_columns`). The payload decoder reads both forms, so both
versions load; a build that knows only version 1 reports a version-2 file as incompatible
(kept aside, never overwritten) rather than as corrupt.

The checksum covers only the payload; the header fields are each validated on their own.
A file with trailing bytes after the payload is refused: a valid file has exactly one length.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final

from bbnode.store.errors import CorruptSnapshotFile, IncompatibleSnapshotFile

__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_PAYLOAD_BYTES",
    "READABLE_FORMAT_VERSIONS",
    "FileHeader",
    "decode_snapshot_file",
    "encode_snapshot_file",
    "parse_header",
]

MAGIC: Final = b"\x89BBSNAP\n"
FORMAT_VERSION: Final = 2
READABLE_FORMAT_VERSIONS: Final = frozenset({1, 2})
_HEADER: Final = struct.Struct(">8sHHQ32s")
HEADER_SIZE: Final = _HEADER.size
# A 100 000-peer snapshot is ~15 MB; 1 GiB leaves two orders of magnitude of headroom while
# keeping a corrupted length field from asking us to allocate the address space.
MAX_PAYLOAD_BYTES: Final = 1 << 30


@dataclass(frozen=True, slots=True)
class FileHeader:
    """The decoded, validated header of a snapshot file."""

    format_version: int
    """The file's format version; one of `READABLE_FORMAT_VERSIONS` once validated."""
    payload_length: int
    """Exact length of the payload in bytes."""
    payload_sha256: bytes
    """SHA-256 digest (32 bytes) the payload must hash to."""


def encode_snapshot_file(payload: bytes) -> bytes:
    """Wrap `payload` in a header; the result is what goes on disk."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"snapshot payload is {len(payload)} bytes; the maximum is {MAX_PAYLOAD_BYTES}"
        )
    digest = hashlib.sha256(payload).digest()
    return _HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(payload), digest) + payload


def parse_header(data: bytes) -> FileHeader:
    """Validate the first `HEADER_SIZE` bytes of a file.

    Raises `CorruptSnapshotFile` (short, bad magic, reserved flags set, absurd length) or
    `IncompatibleSnapshotFile` (an intact header of another format version).
    """
    if len(data) < HEADER_SIZE:
        raise CorruptSnapshotFile(
            f"file is {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header"
        )
    magic, version, flags, length, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptSnapshotFile(f"bad magic {magic!r}, expected {MAGIC!r}")
    if version not in READABLE_FORMAT_VERSIONS:
        readable = ", ".join(map(str, sorted(READABLE_FORMAT_VERSIONS)))
        raise IncompatibleSnapshotFile(
            f"file format version {version}, this bbnode reads versions {readable}",
            got=version,
            expected=FORMAT_VERSION,
        )
    if flags != 0:
        raise CorruptSnapshotFile(f"reserved header flags are {flags:#06x}, expected 0")
    if length > MAX_PAYLOAD_BYTES:
        raise CorruptSnapshotFile(
            f"header declares a {length}-byte payload, above the {MAX_PAYLOAD_BYTES} maximum"
        )
    return FileHeader(format_version=version, payload_length=length, payload_sha256=digest)


def decode_snapshot_file(data: bytes) -> bytes:
    """Check a whole file and return its payload.

    Raises `CorruptSnapshotFile` naming the first problem found (header, length, then
    checksum) or `IncompatibleSnapshotFile` for another format version.
    """
    header = parse_header(data)
    actual = len(data) - HEADER_SIZE
    if actual < header.payload_length:
        raise CorruptSnapshotFile(
            f"truncated: header declares {header.payload_length} payload bytes, file holds {actual}"
        )
    if actual > header.payload_length:
        raise CorruptSnapshotFile(
            f"{actual - header.payload_length} trailing bytes after the "
            f"{header.payload_length}-byte payload"
        )
    payload = bytes(data[HEADER_SIZE:])
    digest = hashlib.sha256(payload).digest()
    if digest != header.payload_sha256:
        raise CorruptSnapshotFile(
            f"checksum mismatch: payload hashes to {digest.hex()[:16]}..., "
            f"header says {header.payload_sha256.hex()[:16]}..."
        )
    return payload
