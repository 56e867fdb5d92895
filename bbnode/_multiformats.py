"""Multiformats encoding primitives shared by `bbnode.ids`: varints, FNV-1a, segment codecs.

Pure functions only. `IdError` lives here so the codecs can raise it; `bbnode.ids` re-exports it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Union

if TYPE_CHECKING:
    from bbnode.ids import PeerId


class IdError(ValueError):
    """A PeerId or Address could not be parsed; the message names what is wrong."""


# -- FNV-1a ------------------------------------------------------------------------------------
# Upstream derives ComponentRefs (32-bit) and value type hashes (64-bit) with FNV-1a; the
# offsets and primes are the published FNV constants.
_FNV32_OFFSET: Final = 0x811C9DC5
_FNV32_PRIME: Final = 0x01000193
_FNV64_OFFSET: Final = 0xCBF29CE484222325
_FNV64_PRIME: Final = 0x100000001B3


def fnv1a_32(data: bytes) -> int:
    """32-bit FNV-1a of `data`."""
    h = _FNV32_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def fnv1a_64(data: bytes) -> int:
    """64-bit FNV-1a of `data`."""
    h = _FNV64_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


# -- unsigned varints (multiformats unsigned-varint: LEB128, minimal, at most 9 bytes) ---------
MAX_VARINT_BYTES: Final = 9


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise IdError(f"varint cannot encode negative value {value}")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def decode_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Decode a varint at `pos`; return (value, next position)."""
    value = 0
    shift = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise IdError(f"{what}: truncated varint at byte {pos}")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise IdError(f"{what}: varint at byte {pos} is not minimally encoded")
            return value, pos + i + 1
        shift += 7
    raise IdError(f"{what}: varint at byte {pos} is longer than {MAX_VARINT_BYTES} bytes")


# -- multiaddr segments ------------------------------------------------------------------------
SegmentValue = Union[str, int, "PeerId", None]
Segment = tuple[str, SegmentValue]


class SegmentCodec:
    """How one multiaddr protocol's value is encoded in binary and in text."""

    __slots__ = ("code", "from_binary", "from_text", "name", "to_binary", "to_text")

    def __init__(
        self,
        name: str,
        code: int,
        to_binary: Callable[[SegmentValue], bytes],
        from_binary: Callable[[bytes, int], tuple[SegmentValue, int]],
        to_text: Callable[[SegmentValue], str],
        from_text: Callable[[str], SegmentValue],
    ) -> None:
        self.name = name
        self.code = code
        self.to_binary = to_binary
        self.from_binary = from_binary
        self.to_text = to_text
        self.from_text = from_text


def fixed_reader(size: int, name: str) -> Callable[[bytes, int], tuple[bytes, int]]:
    def read(data: bytes, pos: int) -> tuple[bytes, int]:
        if pos + size > len(data):
            raise IdError(f"address: /{name} needs {size} bytes, {len(data) - pos} left")
        return data[pos : pos + size], pos + size

    return read


def length_prefixed_reader(name: str) -> Callable[[bytes, int], tuple[bytes, int]]:
    def read(data: bytes, pos: int) -> tuple[bytes, int]:
        length, pos = decode_varint(data, pos, f"address: /{name} length")
        if pos + length > len(data):
            raise IdError(f"address: /{name} declares {length} bytes, {len(data) - pos} left")
        return data[pos : pos + length], pos + length

    return read


def ip_protocol(name: str, code: int, version: int) -> SegmentCodec:
    size = 4 if version == 4 else 16
    read = fixed_reader(size, name)

    def parse(text: str) -> SegmentValue:
        if "%" in text:
            # A zone cannot be carried in the binary form; multiaddr has /ip6zone for that.
            raise IdError(f"address: /{name}/{text}: zoned addresses are not supported")
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            raise IdError(f"address: /{name}/{text}: not an IPv{version} address") from None
        if addr.version != version:
            raise IdError(f"address: /{name}/{text}: not an IPv{version} address")
        return str(addr)

    def to_binary(value: SegmentValue) -> bytes:
        return ipaddress.ip_address(str(value)).packed

    def from_binary(data: bytes, pos: int) -> tuple[SegmentValue, int]:
        raw, pos = read(data, pos)
        ip = ipaddress.IPv4Address(raw) if version == 4 else ipaddress.IPv6Address(raw)
        return str(ip), pos

    return SegmentCodec(name, code, to_binary, from_binary, str, parse)


def uint_protocol(name: str, code: int, size: int) -> SegmentCodec:
    read = fixed_reader(size, name)
    limit = 1 << (8 * size)

    def parse(text: str) -> SegmentValue:
        if not text.isdigit() or not text.isascii():
            raise IdError(f"address: /{name}/{text}: not a decimal number")
        value = int(text)
        if value >= limit:
            raise IdError(f"address: /{name}/{text}: out of range (max {limit - 1})")
        return value

    def to_binary(value: SegmentValue) -> bytes:
        assert isinstance(value, int)
        return value.to_bytes(size, "big")

    def from_binary(data: bytes, pos: int) -> tuple[SegmentValue, int]:
        raw, pos = read(data, pos)
        return int.from_bytes(raw, "big"), pos

    return SegmentCodec(name, code, to_binary, from_binary, str, parse)


def text_protocol(name: str, code: int) -> SegmentCodec:
    read = length_prefixed_reader(name)

    def parse(text: str) -> SegmentValue:
        if not text:
            raise IdError(f"address: /{name} needs a non-empty value")
        return text

    def to_binary(value: SegmentValue) -> bytes:
        raw = str(value).encode("utf-8")
        return encode_varint(len(raw)) + raw

    def from_binary(data: bytes, pos: int) -> tuple[SegmentValue, int]:
        raw, pos = read(data, pos)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise IdError(f"address: /{name} value is not UTF-8") from None
        if not text or "/" in text:
            raise IdError(f"address: /{name} value {text!r} is empty or contains '/'")
        return text, pos

    return SegmentCodec(name, code, to_binary, from_binary, str, parse)
