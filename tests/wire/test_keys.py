"""Identity keys against the libp2p peer-id spec's published test vectors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bbnode.ids import PeerId
from bbnode.wire import IdentityKey, KeyFormatError, KeyTypeNotSupported
from bbnode.wire.keys import (
    NOISE_STATIC_KEY_PREFIX,
    decode_public_key,
    encode_public_key,
    verify_signature,
)

# libp2p/specs peer-ids/peer-ids.md, "Test vectors": Ed25519 private and public key protobufs.
SPEC_PRIVATE = bytes.fromhex(
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
SPEC_PUBLIC = bytes.fromhex(
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
# The PeerId go-libp2p derives from that key (go-libp2p http auth tests use the same key).
SPEC_PEER_ID = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"


def test_spec_private_key_gives_spec_public_key_and_peer_id() -> None:
    key = IdentityKey.from_bytes(SPEC_PRIVATE)
    assert key.public_key_proto == SPEC_PUBLIC
    assert key.public_bytes == SPEC_PUBLIC[4:]
    assert str(key.peer_id) == SPEC_PEER_ID
    assert key.peer_id == PeerId.from_public_key(decode_public_key(SPEC_PUBLIC))
    assert key.to_bytes() == SPEC_PRIVATE


def test_legacy_96_byte_private_key_is_accepted() -> None:
    legacy = b"\x08\x01\x12\x60" + SPEC_PRIVATE[4:] + SPEC_PRIVATE[-32:]
    assert str(IdentityKey.from_bytes(legacy).peer_id) == SPEC_PEER_ID


def test_generated_key_round_trips() -> None:
    key = IdentityKey.generate()
    again = IdentityKey.from_bytes(key.to_bytes())
    assert again == key
    assert again.peer_id == key.peer_id
    assert str(key.peer_id).startswith("12D3KooW")
    assert len(key.to_bytes()) == 68


def test_signatures_verify_with_the_public_key() -> None:
    key = IdentityKey.from_bytes(SPEC_PRIVATE)
    sig = key.sign(b"hello")
    Ed25519PublicKey.from_public_bytes(key.public_bytes).verify(sig, b"hello")
    assert verify_signature(key.public_bytes, b"hello", sig)
    assert not verify_signature(key.public_bytes, b"hellO", sig)
    assert not verify_signature(key.public_bytes, b"hello", sig[:-1])
    assert not verify_signature(b"\x00" * 31, b"hello", sig)


def test_noise_static_key_is_signed_once_and_cached() -> None:
    key = IdentityKey.generate()
    static = key.noise_static()
    assert static is key.noise_static()
    assert len(static.public) == len(static.private) == 32
    assert verify_signature(
        key.public_bytes, NOISE_STATIC_KEY_PREFIX + static.public, static.signature
    )
    assert static.private.hex() not in repr(static)


def test_repr_never_shows_the_secret() -> None:
    key = IdentityKey.from_bytes(SPEC_PRIVATE)
    assert repr(key) == f"IdentityKey(peer_id={SPEC_PEER_ID})"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Type is missing"),
        (b"\x08\x01", "Data is missing"),
        (SPEC_PRIVATE[:-1], "declares 64 bytes"),
        (b"\x08\x01\x12\x20" + b"\x01" * 32, "must be 64 bytes"),
        (b"\x08\x01\x12\x40" + SPEC_PRIVATE[4:36] + b"\x00" * 32, "does not match the seed"),
        (b"\x08\x01\x12\x60" + SPEC_PRIVATE[4:] + b"\x00" * 32, "two different public keys"),
        (SPEC_PRIVATE + b"\x1a\x00", "unexpected or repeated field 3"),
        (SPEC_PRIVATE + b"\x08\x01", "unexpected or repeated field 1"),
        (b"\x0b", "unsupported wire type 3"),
        (b"\xff" * 11, "longer than 10 bytes"),
    ],
)
def test_malformed_private_keys_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        IdentityKey.from_bytes(data)


@pytest.mark.parametrize(
    ("code", "name"), [(0, "RSA"), (2, "Secp256k1"), (3, "ECDSA"), (9, "unknown")]
)
def test_other_key_types_are_refused_by_name(code: int, name: str) -> None:
    with pytest.raises(KeyTypeNotSupported, match=f"key type {name}"):
        IdentityKey.from_bytes(bytes([0x08, code, 0x12, 0x01, 0x00]))


def test_public_key_codec_is_strict() -> None:
    assert encode_public_key(SPEC_PUBLIC[4:]) == SPEC_PUBLIC
    with pytest.raises(KeyFormatError, match="32 bytes, got 31"):
        decode_public_key(SPEC_PUBLIC[:2] + b"\x12\x1f" + SPEC_PUBLIC[4:-1])
    with pytest.raises(KeyFormatError, match="32 bytes, got 3"):
        encode_public_key(b"abc")
    with pytest.raises(KeyFormatError, match="seed must be 32 bytes"):
        IdentityKey.from_seed(b"short")
