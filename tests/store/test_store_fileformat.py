"""The snapshot container: exact layout, and every damaged form raises a typed error."""

from __future__ import annotations

import contextlib
import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.store import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    READABLE_FORMAT_VERSIONS,
    CorruptSnapshotFile,
    IncompatibleSnapshotFile,
    SnapshotFileError,
    decode_snapshot_file,
    encode_snapshot_file,
)


def test_layout_is_magic_version_flags_length_sha256_payload() -> None:
    payload = b"hello snapshot"
    data = encode_snapshot_file(payload)
    assert HEADER_SIZE == 52
    assert data[:8] == MAGIC == b"\x89BBSNAP\n"
    assert data[8:10] == struct.pack(">H", FORMAT_VERSION)
    assert data[10:12] == b"\0\0"
    assert data[12:20] == struct.pack(">Q", len(payload))
    assert data[20:52] == hashlib.sha256(payload).digest()
    assert data[52:] == payload
    assert decode_snapshot_file(data) == payload


def test_empty_payload_round_trips() -> None:
    assert decode_snapshot_file(encode_snapshot_file(b"")) == b""


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:10], "shorter than the 52-byte header"),
        (lambda d: b"X" + d[1:], "bad magic"),
        (lambda d: d[:10] + b"\0\1" + d[12:], "reserved header flags"),
        (lambda d: d[:-1], "truncated: header declares 5 payload bytes, file holds 4"),
        (lambda d: d + b"!", "1 trailing bytes"),
        (lambda d: d[:-1] + b"X", "checksum mismatch"),
        (lambda d: d[:12] + struct.pack(">Q", 1 << 40) + d[20:], "above the"),
    ],
)
def test_damaged_files_are_corrupt(mutate: object, message: str) -> None:
    data = encode_snapshot_file(b"abcde")
    assert callable(mutate)
    with pytest.raises(CorruptSnapshotFile, match=message):
        decode_snapshot_file(mutate(data))


def test_other_format_version_is_incompatible_not_corrupt() -> None:
    data = encode_snapshot_file(b"abc")
    future = data[:8] + struct.pack(">H", FORMAT_VERSION + 1) + data[10:]
    with pytest.raises(IncompatibleSnapshotFile) as info:
        decode_snapshot_file(future)
    assert (info.value.got, info.value.expected) == (FORMAT_VERSION + 1, FORMAT_VERSION)
    assert "file format version 3, this bbnode reads versions 1, 2" in str(info.value)


def test_version_1_files_of_earlier_builds_still_decode_and_version_0_is_refused() -> None:
    # Version 1 differs only in the payload (tables as rows), which the payload decoder
    # still reads (tests/engine/test_snapshot_columns.py).
    data = encode_snapshot_file(b"rows")
    assert FORMAT_VERSION == 2
    assert {1, 2} == READABLE_FORMAT_VERSIONS
    assert decode_snapshot_file(data[:8] + struct.pack(">H", 1) + data[10:]) == b"rows"
    # No build wrote version 0: below the oldest readable version is refused like a newer one.
    with pytest.raises(IncompatibleSnapshotFile) as info:
        decode_snapshot_file(data[:8] + struct.pack(">H", 0) + data[10:])
    assert (info.value.got, info.value.expected) == (0, FORMAT_VERSION)
    assert "file format version 0, this bbnode reads versions 1, 2" in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_the_documented_error(data: bytes) -> None:
    with contextlib.suppress(SnapshotFileError):
        decode_snapshot_file(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.data())
def test_any_single_byte_change_is_detected(payload: bytes, data: st.DataObject) -> None:
    original = encode_snapshot_file(payload)
    index = data.draw(st.integers(0, len(original) - 1))
    flip = data.draw(st.integers(1, 255))
    damaged = bytearray(original)
    damaged[index] ^= flip
    with pytest.raises(SnapshotFileError):
        decode_snapshot_file(bytes(damaged))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64), st.data())
def test_every_truncation_is_detected(payload: bytes, data: st.DataObject) -> None:
    original = encode_snapshot_file(payload)
    cut = data.draw(st.integers(0, len(original) - 1))
    with pytest.raises(CorruptSnapshotFile):
        decode_snapshot_file(original[:cut])
