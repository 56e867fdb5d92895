"""Just enough protobuf (proto2/proto3 wire format) for the libp2p key and handshake messages.

Encoding writes fields in field-number order, which is the canonical form libp2p hashes into
PeerIds. Decoding is strict about the wire format (truncation, bad wire types, overlong
varints) and leaves field-level rules (required, duplicates) to the caller; unknown fields are
returned like known ones so callers can decide. Every problem raises `ProtobufError`, which the
callers translate into their own error type.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ProtobufError", "bytes_field", "parse_fields", "varint_field"]

WIRE_VARINT: Final = 0
WIRE_FIXED64: Final = 1
WIRE_LEN: Final = 2
WIRE_FIXED32: Final = 5
# A 64-bit varint needs at most 10 bytes; anything longer is garbage.
_MAX_VARINT_BYTES: Final = 10


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint_field(number: int, value: int) -> bytes:
    """Encode field `number` as a varint (wire type 0)."""
    return _varint(number << 3 | WIRE_VARINT) + _varint(value)


def bytes_field(number: int, value: bytes) -> bytes:
    """Encode field `number` as length-delimited bytes (wire type 2)."""
    return _varint(number << 3 | WIRE_LEN) + _varint(len(value)) + value


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise ProtobufError(f"truncated varint at byte {pos}")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise ProtobufError(f"varint at byte {pos} is longer than {_MAX_VARINT_BYTES} bytes")


def parse_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Split a message into `(field number, value)` in wire order.

    Varints come back as `int`, length-delimited fields as `bytes`; fixed32/fixed64 fields are
    returned as their raw bytes. Groups (wire types 3/4, deprecated) are rejected.
    """
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    end = len(data)
    while pos < end:
        key = data[pos]
        if key < 0x80:  # every key we use fits one byte; skip the general varint loop
            pos += 1
        else:
            key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0 is invalid")
        value: int | bytes
        if wire_type == WIRE_VARINT:
            value, pos = _read_varint(data, pos)
        elif wire_type == WIRE_LEN:
            if pos < end and data[pos] < 0x80:
                length = data[pos]
                pos += 1
            else:
                length, pos = _read_varint(data, pos)
            if length > end - pos:
                raise ProtobufError(
                    f"field {number} declares {length} bytes but only {end - pos} remain"
                )
            value = bytes(data[pos : pos + length])
            pos += length
        elif wire_type in (WIRE_FIXED32, WIRE_FIXED64):
            size = 4 if wire_type == WIRE_FIXED32 else 8
            if size > end - pos:
                raise ProtobufError(f"field {number} is truncated")
            value = bytes(data[pos : pos + size])
            pos += size
        else:
            raise ProtobufError(f"field {number} has unsupported wire type {wire_type}")
        fields.append((number, value))
    return fields
