"""Shared test plumbing for bbnode.wire: an in-memory pipe and an independent Noise peer.

`RawPeer` is built directly on `noiseprotocol` and `cryptography` with hand-written protobuf
bytes, using nothing from `bbnode.wire`, so interop tests check our wire format against
something other than our own code.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.connection import Keypair, NoiseConnection

from bbnode.ids import PeerId
from bbnode.wire import Event, IdentityKey, SecureConnection

_RAW = serialization.Encoding.Raw


def drain(conn: SecureConnection) -> list[Event]:
    """Every event the connection can produce from what it has buffered."""
    events: list[Event] = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def pump(a: SecureConnection, b: SecureConnection) -> tuple[list[Event], list[Event]]:
    """Shuttle bytes both ways until neither side has anything to send; events per side."""
    events_a: list[Event] = []
    events_b: list[Event] = []
    while True:
        to_b = a.data_to_send()
        if to_b:
            b.receive_data(to_b)
        events_b += drain(b)
        to_a = b.data_to_send()
        if to_a:
            a.receive_data(to_a)
        events_a += drain(a)
        if not to_a and not to_b:
            return events_a, events_b


def connected_pair(
    max_frame_bytes: int = 16 * 1024 * 1024,
    responder_max_frame_bytes: int | None = None,
) -> tuple[SecureConnection, SecureConnection]:
    """An established (initiator, responder) pair with fresh keys."""
    a, b = IdentityKey.generate(), IdentityKey.generate()
    i = SecureConnection(
        a, initiator=True, expected_peer=b.peer_id, max_frame_bytes=max_frame_bytes
    )
    r = SecureConnection(
        b, initiator=False, max_frame_bytes=responder_max_frame_bytes or max_frame_bytes
    )
    pump(i, r)
    assert i.is_established
    assert r.is_established
    return i, r


def split_messages(data: bytes | bytearray) -> list[bytes]:
    """Split a byte stream into its 2-byte-length-prefixed messages (prefix included)."""
    data = bytes(data)  # `data_to_send()` may return a bytearray; noiseprotocol wants bytes
    out = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from(">H", data, pos)
        out.append(data[pos : pos + 2 + length])
        pos += 2 + length
    assert pos == len(data)
    return out


# -- the independent peer ----------------------------------------------------------------------
def pb_bytes(field: int, value: bytes) -> bytes:
    """A hand-rolled protobuf length-delimited field."""
    length = len(value)
    varint = bytearray()
    while length > 0x7F:
        varint.append((length & 0x7F) | 0x80)
        length >>= 7
    varint.append(length)
    return bytes([field << 3 | 2]) + bytes(varint) + value


class RawPeer:
    """A libp2p-noise XX peer written straight against noiseprotocol, for interop tests."""

    def __init__(
        self,
        *,
        initiator: bool,
        protocols: tuple[str, ...] = ("/bbnode/1",),
        payload_hook: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.identity = Ed25519PrivateKey.generate()
        self.identity_public = self.identity.public_key().public_bytes(
            _RAW, serialization.PublicFormat.Raw
        )
        static = X25519PrivateKey.generate()
        self.static_public = static.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
        self.noise = NoiseConnection.from_name(b"Noise_XX_25519_ChaChaPoly_SHA256")
        if initiator:
            self.noise.set_as_initiator()
        else:
            self.noise.set_as_responder()
        self.noise.set_keypair_from_private_bytes(
            Keypair.STATIC,
            static.private_bytes(
                _RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            ),
        )
        self.noise.start_handshake()
        self.protocols = protocols
        self.payload_hook = payload_hook
        self.received_payload: bytes | None = None
        self.remote_static: bytes | None = None

    @property
    def peer_id(self) -> PeerId:
        return PeerId.from_bytes(b"\x00\x24\x08\x01\x12\x20" + self.identity_public)

    def payload(self) -> bytes:
        signature = self.identity.sign(b"noise-libp2p-static-key:" + self.static_public)
        extensions = b"".join(pb_bytes(2, p.encode()) for p in self.protocols)
        body = (
            pb_bytes(1, b"\x08\x01\x12\x20" + self.identity_public)
            + pb_bytes(2, signature)
            + pb_bytes(4, extensions)
        )
        return self.payload_hook(body) if self.payload_hook else body

    def write(self, payload: bytes = b"") -> bytes:
        message = bytes(self.noise.write_message(payload))
        return struct.pack(">H", len(message)) + message

    def read(self, framed: bytes) -> bytes:
        (length,) = struct.unpack_from(">H", framed)
        assert len(framed) == 2 + length
        state = self.noise.noise_protocol.handshake_state
        payload = bytes(self.noise.read_message(framed[2:]))
        # noiseprotocol leaves `rs` as a placeholder until the peer's static key arrives.
        self.remote_static = getattr(state.rs, "public_bytes", self.remote_static)
        return payload

    def encrypt_frames(self, frames: list[bytes]) -> bytes:
        """bbnode frame codec, built by hand: u32 length headers, ≤ 65519-byte plaintexts."""
        stream = b"".join(struct.pack(">I", len(f)) + f for f in frames)
        out = b""
        for start in range(0, len(stream), 65519):
            ct = self.noise.encrypt(stream[start : start + 65519])
            out += struct.pack(">H", len(ct)) + ct
        return out

    def decrypt_frames(self, data: bytes) -> list[bytes]:
        stream = b"".join(self.noise.decrypt(m[2:]) for m in split_messages(data))
        frames = []
        pos = 0
        while pos < len(stream):
            (length,) = struct.unpack_from(">I", stream, pos)
            frames.append(stream[pos + 4 : pos + 4 + length])
            pos += 4 + length
        return frames
