"""The libp2p `NoiseHandshakePayload` protobuf, encoded and parsed by hand.

Schema (libp2p noise spec)::

    message NoiseExtensions {
        repeated bytes webtransport_certhashes = 1;
        repeated string stream_muxers = 2;
    }
    message NoiseHandshakePayload {
        optional bytes identity_key = 1;        // libp2p PublicKey protobuf
        optional bytes identity_sig = 2;        // sig over "noise-libp2p-static-key:" || s
        optional NoiseExtensions extensions = 4;
    }

bbnode announces its application protocol (`/bbnode/1`) in `stream_muxers`, the slot libp2p uses
to skip a negotiation round trip. Parsing is strict about the wire format and about repeats of
singular fields; unknown fields (e.g. the retired `data` field 3) are skipped, as protobuf
requires. Every problem raises `MalformedHandshake` (the peer sent it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bbnode.wire._protobuf import ProtobufError, bytes_field, parse_fields
from bbnode.wire.errors import MalformedHandshake

__all__ = ["HandshakePayload", "decode_payload", "encode_payload"]

_IDENTITY_KEY: Final = 1
_IDENTITY_SIG: Final = 2
_EXTENSIONS: Final = 4
_EXT_CERTHASHES: Final = 1
_EXT_STREAM_MUXERS: Final = 2
# More announced protocols than this is not a real peer; it bounds the work per handshake.
_MAX_PROTOCOLS: Final = 64


@dataclass(frozen=True, slots=True)
class HandshakePayload:
    """One side's authentication data, as carried in handshake messages 2 and 3."""

    identity_key: bytes
    """The sender's libp2p `PublicKey` protobuf."""
    identity_sig: bytes
    """Signature by that key over `"noise-libp2p-static-key:" || noise static public key`."""
    protocols: tuple[str, ...] = ()
    """Protocols announced in `extensions.stream_muxers`."""


def encode_payload(payload: HandshakePayload) -> bytes:
    """Serialize in field order (the canonical protobuf form)."""
    extensions = b"".join(
        bytes_field(_EXT_STREAM_MUXERS, p.encode("utf-8")) for p in payload.protocols
    )
    return (
        bytes_field(_IDENTITY_KEY, payload.identity_key)
        + bytes_field(_IDENTITY_SIG, payload.identity_sig)
        + bytes_field(_EXTENSIONS, extensions)
    )


def _fields(data: bytes, what: str) -> list[tuple[int, int | bytes]]:
    try:
        return parse_fields(data)
    except ProtobufError as exc:
        raise MalformedHandshake(f"{what}: {exc}") from None


def _decode_protocols(data: bytes) -> tuple[str, ...]:
    protocols: list[str] = []
    for number, value in _fields(data, "handshake extensions"):
        if number == _EXT_STREAM_MUXERS:
            if not isinstance(value, bytes):
                raise MalformedHandshake("handshake extensions: stream_muxers must be a string")
            if len(protocols) >= _MAX_PROTOCOLS:
                raise MalformedHandshake(
                    f"handshake extensions: more than {_MAX_PROTOCOLS} protocols announced"
                )
            try:
                protocols.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                raise MalformedHandshake(
                    "handshake extensions: a protocol name is not UTF-8"
                ) from None
        elif number == _EXT_CERTHASHES and not isinstance(value, bytes):
            raise MalformedHandshake("handshake extensions: certhash must be bytes")
    return tuple(protocols)


def decode_payload(data: bytes) -> HandshakePayload:
    """Parse a peer's payload; `identity_key` and `identity_sig` are required."""
    singular: dict[int, bytes] = {}
    for number, value in _fields(data, "handshake payload"):
        if number not in (_IDENTITY_KEY, _IDENTITY_SIG, _EXTENSIONS):
            continue
        if not isinstance(value, bytes):
            raise MalformedHandshake(f"handshake payload: field {number} must be bytes")
        if number in singular:
            raise MalformedHandshake(f"handshake payload: field {number} appears twice")
        singular[number] = value
    if _IDENTITY_KEY not in singular:
        raise MalformedHandshake("handshake payload: identity_key is missing")
    if _IDENTITY_SIG not in singular:
        raise MalformedHandshake("handshake payload: identity_sig is missing")
    protocols = _decode_protocols(singular[_EXTENSIONS]) if _EXTENSIONS in singular else ()
    return HandshakePayload(singular[_IDENTITY_KEY], singular[_IDENTITY_SIG], protocols)
