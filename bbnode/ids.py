"""Peer identities and addresses: libp2p-compatible PeerIds and multiaddrs.

`PeerId` is a multihash (`varint(code) || varint(len) || digest`) shown as base58btc;
`Address` is a multiaddr, an ordered list of protocol segments with a binary form
(`varint(code) || value`) and a text form (`/ip4/127.0.0.1/tcp/7400`). Both encodings follow
the multiformats specs byte for byte, so ids and addresses made by any libp2p implementation
mean the same thing here. bbnode adds three private-use segments (`site`, `component`, `op`)
that address an op inside a node.

Everything here is pure (no I/O) and every malformed input raises `IdError` naming the problem.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Final

import base58

from bbnode._multiformats import (
    IdError,
    Segment,
    SegmentCodec,
    SegmentValue,
    decode_varint,
    encode_varint,
    fnv1a_32,
    fnv1a_64,
    ip_protocol,
    length_prefixed_reader,
    text_protocol,
    uint_protocol,
)

__all__ = [
    "MAX_PEER_ID_BYTES",
    "Address",
    "IdError",
    "PeerId",
    "Segment",
    "SegmentValue",
    "fnv1a_32",
    "fnv1a_64",
]


# -- PeerId ------------------------------------------------------------------------------------
_IDENTITY_CODE: Final = 0x00
_SHA2_256_CODE: Final = 0x12
MAX_PEER_ID_BYTES: Final = 128
"""The longest multihash `PeerId.from_bytes` accepts.

A larger one is not a peer id anyone issues (RSA ids are sha2-256 hashed); the cap keeps
hostile input from making us hash and store arbitrary blobs as identities.
"""
# libp2p PublicKey protobuf for an Ed25519 key: field 1 (KeyType) = 1, field 2 (Data) = 32 bytes.
_ED25519_PUBKEY_PREFIX: Final = b"\x08\x01\x12\x20"


class PeerId:
    """A peer's identity: a multihash, compared and hashed by its bytes.

    Immutable and totally ordered (by bytes) so that anything sorted by peer is deterministic.
    """

    __slots__ = ("_bytes", "_hash")

    _bytes: bytes
    _hash: int

    def __init__(self, multihash: bytes) -> None:
        """Wrap already-validated multihash bytes; use `from_bytes` for untrusted input."""
        self._bytes = multihash
        self._hash = hash(multihash)

    # construction -----------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> PeerId:
        """Parse a multihash; the digest length must match the declared length exactly."""
        data = bytes(data)
        if not data:
            raise IdError("peer id: empty multihash")
        if len(data) > MAX_PEER_ID_BYTES:
            raise IdError(f"peer id: {len(data)} bytes is longer than {MAX_PEER_ID_BYTES}")
        _code, pos = decode_varint(data, 0, "peer id code")
        length, pos = decode_varint(data, pos, "peer id digest length")
        if len(data) - pos != length:
            raise IdError(
                f"peer id: multihash declares a {length}-byte digest "
                f"but carries {len(data) - pos} bytes"
            )
        return cls(data)

    @classmethod
    def from_string(cls, text: str) -> PeerId:
        """Parse the base58btc text form (e.g. `12D3KooW...` or `Qm...`)."""
        if not isinstance(text, str) or not text:
            raise IdError("peer id: empty string")
        try:
            raw = base58.b58decode(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise IdError(f"peer id: {text!r} is not base58btc: {exc}") from None
        try:
            return cls.from_bytes(raw)
        except IdError as exc:
            raise IdError(f"{exc} (in {text!r})") from None

    @classmethod
    def from_u64(cls, n: int) -> PeerId:
        """Identity multihash of `n` as 8 big-endian bytes (for tests and simulations)."""
        if not 0 <= n < 1 << 64:
            raise IdError(f"peer id: {n} is not a u64")
        return cls(bytes((_IDENTITY_CODE, 8)) + n.to_bytes(8, "big"))

    @classmethod
    def from_public_key(cls, public_key: bytes) -> PeerId:
        """The libp2p PeerId of a raw 32-byte Ed25519 public key.

        Per the libp2p peer-id spec: the protobuf `PublicKey{Type=Ed25519, Data=key}` is 36
        bytes, at most 42, so it is embedded with the identity multihash (`12D3KooW...`).
        """
        if len(public_key) != 32:
            raise IdError(f"peer id: Ed25519 public key must be 32 bytes, got {len(public_key)}")
        encoded = _ED25519_PUBKEY_PREFIX + bytes(public_key)
        return cls(bytes((_IDENTITY_CODE, len(encoded))) + encoded)

    # views --------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return self._bytes

    @property
    def code(self) -> int:
        """The multihash function code (0x00 identity, 0x12 sha2-256, ...)."""
        return decode_varint(self._bytes, 0, "peer id code")[0]

    @property
    def digest(self) -> bytes:
        _code, pos = decode_varint(self._bytes, 0, "peer id code")
        _length, pos = decode_varint(self._bytes, pos, "peer id digest length")
        return self._bytes[pos:]

    def __str__(self) -> str:
        return base58.b58encode(self._bytes).decode("ascii")

    def __repr__(self) -> str:
        return f"PeerId({self})"

    def short(self) -> str:
        """The last 8 characters of the text form, for logs and tables."""
        return str(self)[-8:]

    # identity -----------------------------------------------------------------------------------
    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if other.__class__ is PeerId:
            return self._bytes == other._bytes
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if other.__class__ is not PeerId:
            return NotImplemented
        return self._bytes < other._bytes

    def __le__(self, other: object) -> bool:
        if other.__class__ is not PeerId:
            return NotImplemented
        return self._bytes <= other._bytes

    def __gt__(self, other: object) -> bool:
        if other.__class__ is not PeerId:
            return NotImplemented
        return self._bytes > other._bytes

    def __ge__(self, other: object) -> bool:
        if other.__class__ is not PeerId:
            return NotImplemented
        return self._bytes >= other._bytes

    def __reduce__(self) -> tuple[type[PeerId], tuple[bytes]]:
        return (PeerId, (self._bytes,))


def _p2p_protocol() -> SegmentCodec:
    read = length_prefixed_reader("p2p")

    def to_binary(value: SegmentValue) -> bytes:
        assert isinstance(value, PeerId)
        raw = value.to_bytes()
        return encode_varint(len(raw)) + raw

    def from_binary(data: bytes, pos: int) -> tuple[SegmentValue, int]:
        raw, pos = read(data, pos)
        return PeerId.from_bytes(raw), pos

    return SegmentCodec("p2p", 421, to_binary, from_binary, str, PeerId.from_string)


_PROTOCOLS: Final[tuple[SegmentCodec, ...]] = (
    ip_protocol("ip4", 4, 4),
    ip_protocol("ip6", 41, 6),
    text_protocol("dns", 53),
    text_protocol("dns4", 54),
    text_protocol("dns6", 55),
    uint_protocol("tcp", 6, 2),
    _p2p_protocol(),
    uint_protocol("site", 0xE2, 8),
    uint_protocol("component", 0xE3, 4),
    text_protocol("op", 0xE4),
)
_BY_NAME: Final = {p.name: p for p in _PROTOCOLS}
_BY_CODE: Final = {p.code: p for p in _PROTOCOLS}
# "/ipfs/<id>" is the historical spelling of "/p2p/<id>"; accepted on input, printed as p2p.
_NAME_ALIASES: Final = {"ipfs": "p2p"}
_HOST_SEGMENTS: Final = frozenset({"ip4", "ip6", "dns", "dns4", "dns6"})
# Addresses travel in envelopes and snapshots; no legitimate one is anywhere near this long.
_MAX_ADDRESS_BYTES: Final = 1024


class Address:
    """A multiaddr: an immutable, hashable sequence of `(name, value)` segments.

    Values are typed: ip4/ip6/dns*/op are `str`, tcp/site/component are `int`, p2p is `PeerId`.
    Equality and hashing use the binary form.
    """

    __slots__ = ("_bytes", "_hash", "segments")

    segments: tuple[Segment, ...]
    _bytes: bytes
    _hash: int

    def __init__(self, segments: Iterable[Segment]) -> None:
        """Build from segments (validated and encoded); see `from_string` for text."""
        normalised: list[Segment] = []
        parts = []
        for name, value in segments:
            proto = _BY_NAME.get(name)
            if proto is None:
                raise IdError(f"address: unknown protocol {name!r}")
            # Store the canonical value (e.g. port as int, compressed IPv6) so that equal
            # addresses have equal segments and text, however they were built.
            canonical = _canonical_value(proto, value)
            normalised.append((name, canonical))
            parts.append(encode_varint(proto.code) + proto.to_binary(canonical))
        self.segments = tuple(normalised)
        self._bytes = b"".join(parts)
        self._hash = hash(self._bytes)

    # parsing ------------------------------------------------------------------------------------
    @classmethod
    def from_string(cls, text: str) -> Address:
        """Parse `/name/value/...`; raises `IdError` naming the bad segment."""
        if not isinstance(text, str) or not text.startswith("/"):
            raise IdError(f"address: {text!r} must start with '/'")
        parts = text.split("/")[1:]
        if parts and parts[-1] == "":
            parts.pop()  # tolerate one trailing slash, as go-multiaddr does
        if not parts:
            raise IdError("address: empty multiaddr")
        segments: list[Segment] = []
        i = 0
        while i < len(parts):
            name = _NAME_ALIASES.get(parts[i], parts[i])
            proto = _BY_NAME.get(name)
            if proto is None:
                raise IdError(f"address: unknown protocol {parts[i]!r} in {text!r}")
            if i + 1 >= len(parts):
                raise IdError(f"address: /{name} is missing its value in {text!r}")
            segments.append((name, proto.from_text(parts[i + 1])))
            i += 2
        return cls(segments)

    @classmethod
    def from_bytes(cls, data: bytes) -> Address:
        """Parse the binary form; the whole input must be consumed."""
        data = bytes(data)
        if not data:
            raise IdError("address: empty multiaddr")
        if len(data) > _MAX_ADDRESS_BYTES:
            raise IdError(f"address: {len(data)} bytes is longer than {_MAX_ADDRESS_BYTES}")
        segments: list[Segment] = []
        pos = 0
        while pos < len(data):
            code, pos = decode_varint(data, pos, "address: protocol code")
            proto = _BY_CODE.get(code)
            if proto is None:
                raise IdError(f"address: unknown protocol code {code:#x} at byte {pos}")
            value, pos = proto.from_binary(data, pos)
            segments.append((proto.name, value))
        addr = cls.__new__(cls)
        addr.segments = tuple(segments)
        addr._bytes = data
        addr._hash = hash(data)
        return addr

    @classmethod
    def tcp(cls, host: str, port: int, peer: PeerId | None = None) -> Address:
        """`/ip4|ip6|dns/<host>/tcp/<port>[/p2p/<peer>]`, picking the host segment by form."""
        try:
            version = ipaddress.ip_address(host).version
            host_segment = "ip4" if version == 4 else "ip6"
        except ValueError:
            host_segment = "dns"
        segments: list[Segment] = [(host_segment, host), ("tcp", port)]
        if peer is not None:
            segments.append(("p2p", peer))
        return cls(segments)

    # views --------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return self._bytes

    @property
    def peer_id(self) -> PeerId | None:
        """The first `/p2p` segment's PeerId, or None."""
        for name, value in self.segments:
            if name == "p2p":
                assert isinstance(value, PeerId)
                return value
        return None

    def tcp_endpoint(self) -> tuple[str, int] | None:
        """`(host, port)` when the address starts `/ip4|ip6|dns*/<host>/tcp/<port>`."""
        if len(self.segments) < 2:
            return None
        (host_name, host), (tcp_name, port) = self.segments[0], self.segments[1]
        if host_name not in _HOST_SEGMENTS or tcp_name != "tcp":
            return None
        assert isinstance(host, str)
        assert isinstance(port, int)
        return host, port

    def with_peer(self, peer: PeerId) -> Address:
        """This address ending in `/p2p/<peer>` (replacing any existing p2p segment)."""
        return Address([*self.without_peer().segments, ("p2p", peer)])

    def without_peer(self) -> Address:
        """This address with every `/p2p` segment removed."""
        return Address([s for s in self.segments if s[0] != "p2p"])

    def __str__(self) -> str:
        return "".join(f"/{name}/{_BY_NAME[name].to_text(value)}" for name, value in self.segments)

    def __repr__(self) -> str:
        return f"Address({self})"

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if other.__class__ is Address:
            return self._bytes == other._bytes
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if other.__class__ is not Address:
            return NotImplemented
        return self._bytes < other._bytes

    def __reduce__(self) -> tuple[Callable[[bytes], Address], tuple[bytes]]:
        return (Address.from_bytes, (self._bytes,))


def _canonical_value(proto: SegmentCodec, value: SegmentValue) -> SegmentValue:
    """Validate a caller-supplied segment value as text parsing would; return its canonical form."""
    if proto.name == "p2p":
        if not isinstance(value, PeerId):
            raise IdError(f"address: /p2p value must be a PeerId, got {value!r}")
        return value
    if isinstance(value, PeerId) or value is None:
        raise IdError(f"address: /{proto.name} value {value!r} has the wrong type")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise IdError(f"address: /{proto.name} value {value!r} has the wrong type")
    if "/" in value:
        raise IdError(f"address: /{proto.name} value {value!r} contains '/'")
    return proto.from_text(value)
