"""The libp2p Noise XX handshake, written directly on `cryptography` and `hashlib`/`hmac`.

    XX:  -> e
         <- e, ee, s, es      + responder's NoiseHandshakePayload
         -> s, se             + initiator's NoiseHandshakePayload

`NoiseXX` turns unframed handshake messages into the next message to send and, once a
payload arrives, the authenticated remote PeerId. It checks everything the libp2p noise spec
requires (the identity signature over the static key) and what bbnode adds (the expected PeerId,
the application protocol). It never frames, buffers or reads a clock: `SecureConnection` does
the framing and calls these methods in the order its state table allows.

Why not `noiseprotocol`: its generic handshake machinery (pattern interpretation, key-pair
wrapper objects, a Python HMAC/HKDF, state copies) costs about as much Python time as the
X25519 operations themselves. XX has exactly three fixed messages, so the Noise spec's
`SymmetricState` (§5.2: `MixHash`, `MixKey`, `EncryptAndHash`, `DecryptAndHash`, `Split`) is
written out below for this one pattern, and the time saved pays for the Ed25519 verification
libp2p adds. The bytes are identical: tests/wire/test_interop.py runs it against a peer built
on `noiseprotocol`, in both roles.

Every failure is a `RemoteProtocolError` subclass; exceptions `cryptography` raises on garbage
(a failed tag, a low-order point) are translated here, at the library boundary.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

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
from bbnode.wire.transport import NONCE, TAG_BYTES

__all__ = ["NOISE_PROTOCOL_NAME", "NoiseXX", "TransportKeys"]

NOISE_PROTOCOL_NAME: Final = b"Noise_XX_25519_ChaChaPoly_SHA256"
_DH_LEN: Final = 32
# Minimum sizes of each message: e | e + enc(s) + enc(payload) | enc(s) + enc(payload).
_MSG1_LEN: Final = _DH_LEN
_ENCRYPTED_STATIC: Final = _DH_LEN + TAG_BYTES
_MSG2_MIN: Final = _DH_LEN + _ENCRYPTED_STATIC + TAG_BYTES
_MSG3_MIN: Final = _ENCRYPTED_STATIC + TAG_BYTES
# Noise spec §5.2 InitializeSymmetric: the name is exactly HASHLEN (32) bytes, so it is both
# the initial h and ck, unhashed; the handshake then calls MixHash(prologue), and libp2p's
# prologue is empty.
assert len(NOISE_PROTOCOL_NAME) == hashlib.sha256().digest_size
_INITIAL_CK: Final = NOISE_PROTOCOL_NAME
_INITIAL_H: Final = hashlib.sha256(NOISE_PROTOCOL_NAME).digest()
# Distinct (identity key, static key, signature) triples remembered as verified; see
# `_VerifiedSignatures`. 4096 entries of ~140 bytes is well under a megabyte.
_VERIFIED_CACHE_ENTRIES: Final = 4096
_sha256 = hashlib.sha256
_hmac = hmac.digest


@dataclass(frozen=True, slots=True)
class TransportKeys:
    """The split() result: one ChaCha20-Poly1305 key per direction, nonces starting at 0."""

    send_key: bytes
    receive_key: bytes


@functools.lru_cache(maxsize=16)
def _static_private(private: bytes) -> X25519PrivateKey:
    """The loaded static key; immutable, so shared by every connection of one identity."""
    return X25519PrivateKey.from_private_bytes(private)


@functools.lru_cache(maxsize=16)
def _payload_bytes(identity_key: bytes, signature: bytes, protocol: str) -> bytes:
    """Our handshake payload: the same bytes for every connection of one identity."""
    return encode_payload(
        HandshakePayload(identity_key=identity_key, identity_sig=signature, protocols=(protocol,))
    )


def _hkdf2(chaining_key: bytes, input_key_material: bytes) -> tuple[bytes, bytes]:
    """Noise spec §4.3 HKDF with two outputs (HMAC-SHA256)."""
    temp_key = _hmac(chaining_key, input_key_material, "sha256")
    first = _hmac(temp_key, b"\x01", "sha256")
    return first, _hmac(temp_key, first + b"\x02", "sha256")


def _public_key(data: bytes, what: str) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(data)
    except ValueError:
        raise MalformedHandshake(f"{what}: not an X25519 public key") from None


def _dh(private: X25519PrivateKey, public: X25519PublicKey, what: str) -> bytes:
    try:
        return private.exchange(public)
    except ValueError:  # a low-order point: the shared secret would be all zeros
        raise MalformedHandshake(f"{what}: the peer's key is a low-order point") from None


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

    The attributes are the Noise spec's HandshakeState: `_h`/`_ck` the transcript hash and
    chaining key, `_cipher`/`_n` the handshake CipherState (`None` before the first MixKey),
    `_e`/`_re` the ephemeral keys.
    """

    __slots__ = (
        "_cipher",
        "_ck",
        "_e",
        "_expected",
        "_h",
        "_key",
        "_n",
        "_protocol",
        "_re",
        "initiator",
    )

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
        self._h = _INITIAL_H
        self._ck = _INITIAL_CK
        self._cipher: ChaCha20Poly1305 | None = None
        self._n = 0
        self._e: X25519PrivateKey | None = None
        self._re: X25519PublicKey | None = None

    # the three messages -------------------------------------------------------------------------
    def start(self) -> bytes:
        """Initiator: message 1 (`e`, empty payload)."""
        ephemeral = self._new_ephemeral()
        self._mix_hash(ephemeral)
        self._mix_hash(b"")  # EncryptAndHash of the empty payload, with no key yet
        return ephemeral

    def read_hello(self, message: bytes | memoryview) -> bytes:
        """Responder: consume message 1, return message 2 (with our signed payload)."""
        if len(message) != _MSG1_LEN:
            raise MalformedHandshake(
                f"handshake message 1 must be {_MSG1_LEN} bytes (an ephemeral key and no "
                f"payload), got {len(message)}"
            )
        what = "handshake message 1"
        # -> e (and the empty payload)
        re = bytes(message)
        self._re = _public_key(re, what)
        self._mix_hash(re)
        self._mix_hash(b"")
        # <- e, ee, s, es, payload
        what = "handshake message 2"
        ephemeral = self._new_ephemeral()
        self._mix_hash(ephemeral)
        self._mix_key(_dh(self._ephemeral(), self._re, what))
        static = self._encrypt_and_hash(self._static_public())
        self._mix_key(_dh(self._static(), self._re, what))
        return ephemeral + static + self._encrypt_and_hash(self._our_payload())

    def read_response(self, message: bytes | memoryview) -> tuple[PeerId, bytes]:
        """Initiator: consume message 2, authenticate the responder, return message 3."""
        if len(message) < _MSG2_MIN:
            raise MalformedHandshake(
                f"handshake message 2 is {len(message)} bytes, shorter than {_MSG2_MIN}"
            )
        what = "handshake message 2"
        message = bytes(message)
        # <- e, ee, s, es, payload
        re = message[:_DH_LEN]
        self._re = _public_key(re, what)
        self._mix_hash(re)
        self._mix_key(_dh(self._ephemeral(), self._re, what))
        rs = self._decrypt_and_hash(message[_DH_LEN : _DH_LEN + _ENCRYPTED_STATIC], what)
        self._mix_key(_dh(self._ephemeral(), _public_key(rs, what), what))
        payload = self._decrypt_and_hash(message[_DH_LEN + _ENCRYPTED_STATIC :], what)
        remote = self._authenticate(payload, rs)
        # -> s, se, payload
        what = "handshake message 3"
        static = self._encrypt_and_hash(self._static_public())
        self._mix_key(_dh(self._static(), self._re, what))
        return remote, static + self._encrypt_and_hash(self._our_payload())

    def read_finish(self, message: bytes | memoryview) -> PeerId:
        """Responder: consume message 3, authenticate the initiator."""
        if len(message) < _MSG3_MIN:
            raise MalformedHandshake(
                f"handshake message 3 is {len(message)} bytes, shorter than {_MSG3_MIN}"
            )
        what = "handshake message 3"
        message = bytes(message)
        # -> s, se, payload
        rs = self._decrypt_and_hash(message[:_ENCRYPTED_STATIC], what)
        self._mix_key(_dh(self._ephemeral(), _public_key(rs, what), what))
        payload = self._decrypt_and_hash(message[_ENCRYPTED_STATIC:], what)
        return self._authenticate(payload, rs)

    def transport_keys(self) -> TransportKeys:
        """The directional keys once the handshake is finished (Noise spec §5.2 `Split`)."""
        initiator_to_responder, responder_to_initiator = _hkdf2(self._ck, b"")
        if self.initiator:
            return TransportKeys(initiator_to_responder, responder_to_initiator)
        return TransportKeys(responder_to_initiator, initiator_to_responder)

    # Noise SymmetricState -----------------------------------------------------------------------
    def _mix_hash(self, data: bytes) -> None:
        self._h = _sha256(self._h + data).digest()

    def _mix_key(self, input_key_material: bytes) -> None:
        self._ck, key = _hkdf2(self._ck, input_key_material)
        self._cipher = ChaCha20Poly1305(key)
        self._n = 0

    def _encrypt_and_hash(self, plaintext: bytes) -> bytes:
        # Every XX message that encrypts runs after a MixKey, so the key is always set here.
        assert self._cipher is not None
        ciphertext = self._cipher.encrypt(NONCE.pack(self._n), plaintext, self._h)
        self._n += 1
        self._mix_hash(ciphertext)
        return ciphertext

    def _decrypt_and_hash(self, ciphertext: bytes, what: str) -> bytes:
        assert self._cipher is not None
        try:
            plaintext = self._cipher.decrypt(NONCE.pack(self._n), ciphertext, self._h)
        except InvalidTag:
            raise MalformedHandshake(
                f"{what} failed to decrypt or parse: it does not authenticate "
                "(tampered, or not from the peer this handshake started with)"
            ) from None
        self._n += 1
        self._mix_hash(ciphertext)
        return plaintext

    # helpers ------------------------------------------------------------------------------------
    def _new_ephemeral(self) -> bytes:
        self._e = X25519PrivateKey.generate()
        return self._e.public_key().public_bytes_raw()

    def _ephemeral(self) -> X25519PrivateKey:
        assert self._e is not None
        return self._e

    def _static(self) -> X25519PrivateKey:
        return _static_private(self._key.noise_static().private)

    def _static_public(self) -> bytes:
        return self._key.noise_static().public

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
