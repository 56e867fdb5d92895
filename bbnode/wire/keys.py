"""Ed25519 identity keys in libp2p's encodings (peer-id spec), and the Noise static key they sign.

A node's identity is an Ed25519 key pair. Its PeerId is derived from the protobuf
`PublicKey{Type=Ed25519, Data=<32 bytes>}` exactly as every libp2p implementation does, and it is
stored as the protobuf `PrivateKey{Type=Ed25519, Data=<seed || public>}`. This module only
converts bytes; reading and writing key files (I/O) lives in `bbnode.keyfile`.

Per the libp2p noise spec the Noise static X25519 key is distinct from the identity key and is
authenticated by an identity signature over `"noise-libp2p-static-key:" || static public key`.
The spec lets an implementation keep one static key for the process lifetime, so each
`IdentityKey` makes one lazily and signs it once: a handshake then costs one signature
*verification* (of the peer's payload) and no signing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bbnode.ids import PeerId
from bbnode.wire._protobuf import ProtobufError, bytes_field, parse_fields, varint_field
from bbnode.wire.errors import KeyFormatError, KeyTypeNotSupported

__all__ = [
    "NOISE_STATIC_KEY_PREFIX",
    "IdentityKey",
    "NoiseStaticKey",
    "decode_public_key",
    "encode_public_key",
    "verify_signature",
]

# libp2p peer-id spec: `enum KeyType { RSA = 0; Ed25519 = 1; Secp256k1 = 2; ECDSA = 3; }`.
KEY_TYPE_ED25519: Final = 1
_KEY_TYPE_NAMES: Final = {0: "RSA", 1: "Ed25519", 2: "Secp256k1", 3: "ECDSA"}
_FIELD_TYPE: Final = 1
_FIELD_DATA: Final = 2
ED25519_KEY_BYTES: Final = 32
ED25519_SIGNATURE_BYTES: Final = 64
# libp2p noise spec, "Static Key Authentication": the signed message is this prefix + key.
NOISE_STATIC_KEY_PREFIX: Final = b"noise-libp2p-static-key:"

_RAW: Final = serialization.Encoding.Raw
_RAW_PRIVATE: Final = serialization.PrivateFormat.Raw
_RAW_PUBLIC: Final = serialization.PublicFormat.Raw
_NO_ENCRYPTION: Final = serialization.NoEncryption()


@dataclass(frozen=True, slots=True)
class NoiseStaticKey:
    """A Noise X25519 static key pair and the identity signature that authenticates it."""

    private: bytes
    """Raw 32-byte X25519 private key (what `noiseprotocol` takes)."""
    public: bytes
    """Raw 32-byte X25519 public key, as sent in the handshake."""
    signature: bytes
    """Ed25519 identity signature over `NOISE_STATIC_KEY_PREFIX + public`."""

    def __repr__(self) -> str:
        return f"NoiseStaticKey(public={self.public.hex()})"


def encode_public_key(public_key: bytes) -> bytes:
    """The libp2p `PublicKey` protobuf of a raw 32-byte Ed25519 public key (36 bytes)."""
    if len(public_key) != ED25519_KEY_BYTES:
        raise KeyFormatError(f"Ed25519 public key must be 32 bytes, got {len(public_key)}")
    return varint_field(_FIELD_TYPE, KEY_TYPE_ED25519) + bytes_field(_FIELD_DATA, public_key)


def _parse_key_message(data: bytes, what: str) -> tuple[int, bytes]:
    """Parse a libp2p `PublicKey`/`PrivateKey` message into `(type, data)`, strictly."""
    try:
        fields = parse_fields(data)
    except ProtobufError as exc:
        raise KeyFormatError(f"{what}: not a protobuf message: {exc}") from None
    key_type: int | None = None
    key_data: bytes | None = None
    for number, value in fields:
        if number == _FIELD_TYPE and isinstance(value, int) and key_type is None:
            key_type = value
        elif number == _FIELD_DATA and isinstance(value, bytes) and key_data is None:
            key_data = value
        else:
            raise KeyFormatError(f"{what}: unexpected or repeated field {number}")
    if key_type is None or key_data is None:
        missing = "Type" if key_type is None else "Data"
        raise KeyFormatError(f"{what}: required field {missing} is missing")
    if key_type != KEY_TYPE_ED25519:
        name = _KEY_TYPE_NAMES.get(key_type, f"unknown ({key_type})")
        raise KeyTypeNotSupported(f"{what}: key type {name} is not supported; bbnode uses Ed25519")
    return key_type, key_data


def decode_public_key(data: bytes) -> bytes:
    """The raw 32-byte Ed25519 key inside a libp2p `PublicKey` protobuf."""
    _type, key = _parse_key_message(data, "public key")
    if len(key) != ED25519_KEY_BYTES:
        raise KeyFormatError(f"public key: Ed25519 key must be 32 bytes, got {len(key)}")
    return key


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` by `public_key`."""
    if len(public_key) != ED25519_KEY_BYTES or len(signature) != ED25519_SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class IdentityKey:
    """A node's Ed25519 identity key pair.

    Immutable. `peer_id` is the libp2p PeerId (`12D3KooW...`); `to_bytes()`/`from_bytes()` are
    the libp2p `PrivateKey` protobuf, byte-compatible with keys made by go/rust/js libp2p.
    """

    __slots__ = ("_noise_static", "_peer_id", "_private", "_public")

    _private: Ed25519PrivateKey
    _public: bytes
    _peer_id: PeerId
    _noise_static: NoiseStaticKey | None

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        """Wrap a `cryptography` key; prefer `generate`, `from_seed` or `from_bytes`."""
        self._private = private_key
        self._public = private_key.public_key().public_bytes(_RAW, _RAW_PUBLIC)
        self._peer_id = PeerId.from_public_key(self._public)
        self._noise_static = None

    # construction -----------------------------------------------------------------------------
    @classmethod
    def generate(cls) -> IdentityKey:
        """A fresh random key pair."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKey:
        """The key pair of a 32-byte Ed25519 seed (RFC 8032 private key)."""
        if len(seed) != ED25519_KEY_BYTES:
            raise KeyFormatError(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @classmethod
    def from_bytes(cls, data: bytes) -> IdentityKey:
        """Parse a libp2p `PrivateKey` protobuf (Ed25519 only).

        Data is `seed || public` (64 bytes) or the legacy `seed || public || public` (96
        bytes); the embedded public key must match the seed's.
        """
        _type, key_data = _parse_key_message(bytes(data), "private key")
        if len(key_data) not in (64, 96):
            raise KeyFormatError(
                f"private key: Ed25519 data must be 64 bytes (seed || public), got {len(key_data)}"
            )
        seed, public = key_data[:32], key_data[32:64]
        if len(key_data) == 96 and key_data[64:] != public:
            raise KeyFormatError("private key: legacy 96-byte form has two different public keys")
        key = cls.from_seed(seed)
        if key.public_bytes != public:
            raise KeyFormatError("private key: embedded public key does not match the seed")
        return key

    # views --------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The libp2p `PrivateKey` protobuf: `Type=Ed25519, Data=seed || public`."""
        seed = self._private.private_bytes(_RAW, _RAW_PRIVATE, _NO_ENCRYPTION)
        return varint_field(_FIELD_TYPE, KEY_TYPE_ED25519) + bytes_field(
            _FIELD_DATA, seed + self._public
        )

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._public

    @property
    def public_key_proto(self) -> bytes:
        """The libp2p `PublicKey` protobuf (what handshakes carry)."""
        return encode_public_key(self._public)

    @property
    def peer_id(self) -> PeerId:
        """This key's libp2p PeerId."""
        return self._peer_id

    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature of `data`."""
        return self._private.sign(bytes(data))

    def noise_static(self) -> NoiseStaticKey:
        """This identity's Noise static key, created and signed on first use."""
        if self._noise_static is None:
            x_private = X25519PrivateKey.generate()
            public = x_private.public_key().public_bytes(_RAW, _RAW_PUBLIC)
            self._noise_static = NoiseStaticKey(
                private=x_private.private_bytes(_RAW, _RAW_PRIVATE, _NO_ENCRYPTION),
                public=public,
                signature=self.sign(NOISE_STATIC_KEY_PREFIX + public),
            )
        return self._noise_static

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IdentityKey):
            return self.to_bytes() == other.to_bytes()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._public)

    def __repr__(self) -> str:
        # Never print the secret.
        return f"IdentityKey(peer_id={self._peer_id})"
