"""The libp2p Noise XX handshake over `noiseprotocol`, one message at a time.

    XX:  -> e
         <- e, ee, s, es      + responder's NoiseHandshakePayload
         -> s, se             + initiator's NoiseHandshakePayload

`NoiseXX` turns unframed handshake messages into the next message to send and, once a
payload arrives, the authenticated remote PeerId. It checks everything the libp2p noise spec
requires (the identity signature over the static key) and what bbnode adds (the expected PeerId,
the application protocol). It never frames, buffers or reads a clock: `SecureConnection` does
the framing and calls these methods in the order its state table allows.

Every failure is a `RemoteProtocolError` subclass; exceptions `noiseprotocol` or `cryptography`
raise on garbage are translated here, at the library boundary.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from noise.backends.default.keypairs import KeyPair25519
from noise.connection import NoiseConnection
from noise.exceptions import NoiseHandshakeError, NoiseInvalidMessage, NoiseValueError

from bbnode.ids import PeerId
from bbnode.wire.errors import (
    BadSignature,
    KeyFormatError,
    KeyTypeNotSupported,
    MalformedHandshake,
    PeerIdMismatch,
    UnsupportedKeyType,
    UnsupportedProtocol,
)
from bbnode.wire.keys import (
    NOISE_STATIC_KEY_PREFIX,
    IdentityKey,
    decode_public_key,
    verify_signature,
)
from bbnode.wire.payload import HandshakePayload, decode_payload, encode_payload

__all__ = ["NOISE_PROTOCOL_NAME", "NoiseXX", "TransportKeys"]

NOISE_PROTOCOL_NAME: Final = b"Noise_XX_25519_ChaChaPoly_SHA256"
_DH_LEN: Final = 32
_TAG_LEN: Final = 16
# Minimum sizes of each message: e | e + enc(s) + enc(payload) | enc(s) + enc(payload).
_MSG1_LEN: Final = _DH_LEN
_MSG2_MIN: Final = _DH_LEN + (_DH_LEN + _TAG_LEN) + _TAG_LEN
_MSG3_MIN: Final = (_DH_LEN + _TAG_LEN) + _TAG_LEN
# Distinct (identity key, static key, signature) triples remembered as verified; see
# `_VerifiedSignatures`. 4096 entries of ~140 bytes is well under a megabyte.
_VERIFIED_CACHE_ENTRIES: Final = 4096
# What noiseprotocol/cryptography raise for bytes that are not a valid handshake message.
_NOISE_FAILURES: Final = (
    InvalidTag,
    ValueError,
    NoiseValueError,
    NoiseInvalidMessage,
    NoiseHandshakeError,
)


@dataclass(frozen=True, slots=True)
class TransportKeys:
    """The split() result: one ChaCha20-Poly1305 key per direction, nonces starting at 0."""

    send_key: bytes
    receive_key: bytes


@functools.lru_cache(maxsize=16)
def _static_keypair(private: bytes) -> Any:
    """noiseprotocol's key pair object for a static key; immutable, so shared by connections."""
    return KeyPair25519.from_private_bytes(private)


@functools.lru_cache(maxsize=16)
def _payload_bytes(identity_key: bytes, signature: bytes, protocol: str) -> bytes:
    """Our handshake payload: the same bytes for every connection of one identity."""
    return encode_payload(
        HandshakePayload(identity_key=identity_key, identity_sig=signature, protocols=(protocol,))
    )


class _VerifiedSignatures:
    """A bounded memo of identity signatures that have already verified.

    Ed25519 verification is the most expensive step of a handshake (several X25519 operations'
    worth), and peers keep their Noise static key for their process lifetime, so a node that
    reconnects to a known peer sees the very same (identity key, static key, signature) triple
    again. Verification is a pure function of that triple, so remembering a success is exact:
    only byte-identical inputs hit. Failures are never remembered. Oldest entries are evicted
    first, so memory stays bounded whatever peers send.
    """

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._entries: dict[tuple[bytes, bytes, bytes], None] = {}

    def verify(self, public_key: bytes, static_key: bytes, signature: bytes) -> bool:
        entry = (public_key, static_key, signature)
        if entry in self._entries:
            return True
        if not verify_signature(public_key, NOISE_STATIC_KEY_PREFIX + static_key, signature):
            return False
        if len(self._entries) >= self._limit:
            del self._entries[next(iter(self._entries))]
        self._entries[entry] = None
        return True


_verified = _VerifiedSignatures(_VERIFIED_CACHE_ENTRIES)


class NoiseXX:
    """One side of one libp2p Noise XX handshake.

    Initiator: `start()` → send; `read_response(msg2)` → (remote, msg3) → send, done.
    Responder: `read_hello(msg1)` → msg2 → send; `read_finish(msg3)` → remote, done.
    Then `transport_keys()`.
    """

    __slots__ = ("_expected", "_key", "_noise", "_protocol", "initiator")

    def __init__(
        self,
        key: IdentityKey,
        *,
        initiator: bool,
        protocol: str,
        expected_peer: PeerId | None = None,
    ) -> None:
        self.initiator = initiator
        self._key = key
        self._protocol = protocol
        self._expected = expected_peer
        static = key.noise_static()
        noise = NoiseConnection.from_name(NOISE_PROTOCOL_NAME)
        if initiator:
            noise.set_as_initiator()
        else:
            noise.set_as_responder()
        # What set_keypair_from_private_bytes(Keypair.STATIC, ...) does, minus re-deriving
        # the public key from the private one for every connection.
        noise.noise_protocol.keypairs["s"] = _static_keypair(static.private)
        noise.start_handshake()
        self._noise = noise

    # the three messages -------------------------------------------------------------------------
    def start(self) -> bytes:
        """Initiator: message 1 (`e`, empty payload)."""
        return bytes(self._noise.write_message(b""))

    def read_hello(self, message: bytes) -> bytes:
        """Responder: consume message 1, return message 2 (with our signed payload)."""
        if len(message) != _MSG1_LEN:
            raise MalformedHandshake(
                f"handshake message 1 must be {_MSG1_LEN} bytes (an ephemeral key and no "
                f"payload), got {len(message)}"
            )
        self._read(message, "handshake message 1")
        return bytes(self._noise.write_message(self._our_payload()))

    def read_response(self, message: bytes) -> tuple[PeerId, bytes]:
        """Initiator: consume message 2, authenticate the responder, return message 3."""
        if len(message) < _MSG2_MIN:
            raise MalformedHandshake(
                f"handshake message 2 is {len(message)} bytes, shorter than {_MSG2_MIN}"
            )
        state = self._noise.noise_protocol.handshake_state
        payload = self._read(message, "handshake message 2")
        remote = self._authenticate(payload, state.rs.public_bytes)
        return remote, bytes(self._noise.write_message(self._our_payload()))

    def read_finish(self, message: bytes) -> PeerId:
        """Responder: consume message 3, authenticate the initiator."""
        if len(message) < _MSG3_MIN:
            raise MalformedHandshake(
                f"handshake message 3 is {len(message)} bytes, shorter than {_MSG3_MIN}"
            )
        # noiseprotocol drops its handshake state when the last message is read; keep a
        # reference so the initiator's static key (`rs`) is still reachable afterwards.
        state = self._noise.noise_protocol.handshake_state
        payload = self._read(message, "handshake message 3")
        return self._authenticate(payload, state.rs.public_bytes)

    def transport_keys(self) -> TransportKeys:
        """The directional keys once the handshake is finished."""
        protocol: Any = self._noise.noise_protocol
        send, receive = protocol.cipher_state_encrypt, protocol.cipher_state_decrypt
        # Fresh CipherStates from Split(): nonce 0; the transport layer counts from here.
        assert send.n == 0
        assert receive.n == 0
        return TransportKeys(send_key=bytes(send.k), receive_key=bytes(receive.k))

    # helpers ------------------------------------------------------------------------------------
    def _read(self, message: bytes, what: str) -> bytes:
        try:
            return bytes(self._noise.read_message(message))
        except _NOISE_FAILURES as exc:
            detail = str(exc) or type(exc).__name__
            raise MalformedHandshake(f"{what} failed to decrypt or parse: {detail}") from None

    def _our_payload(self) -> bytes:
        return _payload_bytes(
            self._key.public_key_proto, self._key.noise_static().signature, self._protocol
        )

    def _authenticate(self, raw_payload: bytes, remote_static: bytes) -> PeerId:
        """Verify the payload against the static key the handshake delivered; the PeerId."""
        payload = decode_payload(raw_payload)
        try:
            public = decode_public_key(payload.identity_key)
        except KeyTypeNotSupported as exc:
            raise UnsupportedKeyType(f"peer identity key: {exc}") from None
        except KeyFormatError as exc:
            raise MalformedHandshake(f"peer identity key: {exc}") from None
        peer = PeerId.from_public_key(public)
        if not _verified.verify(public, remote_static, payload.identity_sig):
            raise BadSignature(
                f"peer {peer} did not sign its Noise static key: the handshake signature is invalid"
            )
        if self._expected is not None and peer != self._expected:
            raise PeerIdMismatch(f"expected peer {self._expected} but the remote is {peer}")
        if self._protocol not in payload.protocols:
            offered = ", ".join(payload.protocols) or "nothing"
            raise UnsupportedProtocol(
                f"peer {peer} does not speak {self._protocol} (it offers {offered})"
            )
        return peer
