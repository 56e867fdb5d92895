"""Our wire format against an independent libp2p-noise peer built directly on noiseprotocol."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bbnode.wire import (
    BadSignature,
    ConnectionClosed,
    FrameReceived,
    HandshakeComplete,
    IdentityKey,
    MalformedHandshake,
    SecureConnection,
    UnsupportedKeyType,
    UnsupportedProtocol,
)
from tests.wire.wire_helpers import RawPeer, drain, pb_bytes


def _expected_payload(key: IdentityKey) -> bytes:
    """The NoiseHandshakePayload bytes a libp2p peer expects from `key`, built by hand."""
    static = key.noise_static()
    return (
        pb_bytes(1, b"\x08\x01\x12\x20" + key.public_bytes)
        + pb_bytes(2, static.signature)
        + pb_bytes(4, pb_bytes(2, b"/bbnode/1"))
    )


def _check_our_payload(raw: RawPeer, payload: bytes, key: IdentityKey) -> None:
    assert payload == _expected_payload(key)
    assert raw.remote_static == key.noise_static().public
    signature = payload[2 + 36 + 2 : 2 + 36 + 2 + 64]
    Ed25519PublicKey.from_public_bytes(key.public_bytes).verify(
        signature, b"noise-libp2p-static-key:" + raw.remote_static
    )


def test_our_initiator_with_an_independent_responder() -> None:
    key = IdentityKey.generate()
    raw = RawPeer(initiator=False)
    conn = SecureConnection(key, initiator=True, expected_peer=raw.peer_id)
    assert raw.read(conn.data_to_send()) == b""
    conn.receive_data(raw.write(raw.payload()))
    assert drain(conn) == [HandshakeComplete(raw.peer_id)]
    _check_our_payload(raw, raw.read(conn.data_to_send()), key)
    assert raw.noise.handshake_finished

    conn.send_frame(b"hello from bbnode")
    conn.send_frame(b"\x00" * 70_000)
    assert raw.decrypt_frames(conn.data_to_send()) == [b"hello from bbnode", b"\x00" * 70_000]
    conn.receive_data(raw.encrypt_frames([b"hi back", b"", b"\x07" * 100_000]))
    conn.receive_data(b"")
    assert drain(conn) == [
        FrameReceived(b"hi back"),
        FrameReceived(b""),
        FrameReceived(b"\x07" * 100_000),
        ConnectionClosed(),
    ]


def test_independent_initiator_with_our_responder() -> None:
    key = IdentityKey.generate()
    raw = RawPeer(initiator=True)
    conn = SecureConnection(key, initiator=False, expected_peer=raw.peer_id)
    conn.receive_data(raw.write())
    assert drain(conn) == []
    _check_our_payload(raw, raw.read(conn.data_to_send()), key)
    conn.receive_data(raw.write(raw.payload()))
    assert drain(conn) == [HandshakeComplete(raw.peer_id)]

    conn.receive_data(raw.encrypt_frames([b"one", b"two"]))
    assert drain(conn) == [FrameReceived(b"one"), FrameReceived(b"two")]
    conn.send_frame(b"three")
    assert raw.decrypt_frames(conn.data_to_send()) == [b"three"]


def _run_against(raw: RawPeer) -> SecureConnection:
    conn = SecureConnection(IdentityKey.generate(), initiator=True)
    raw.read(conn.data_to_send())
    conn.receive_data(raw.write(raw.payload()))
    return conn


def test_forged_signature_is_refused() -> None:
    raw = RawPeer(initiator=False)
    # A genuine signature by the peer's identity, but over a different static key.
    forged = raw.identity.sign(b"noise-libp2p-static-key:" + b"\x09" * 32)
    raw.payload_hook = lambda body: body[:40] + forged + body[104:]
    conn = _run_against(raw)
    with pytest.raises(BadSignature) as info:
        conn.next_event()
    assert info.value.reason == "bad_signature"
    assert str(info.value) == (
        f"peer {raw.peer_id} did not sign its Noise static key: the handshake signature is invalid"
    )


def test_signature_by_another_identity_is_refused() -> None:
    raw = RawPeer(initiator=False)
    impostor = RawPeer(initiator=False)
    raw.payload_hook = lambda body: body[:40] + impostor.identity.sign(body[40:104]) + body[104:]
    with pytest.raises(BadSignature):
        _run_against(raw).next_event()


def test_peer_without_our_protocol_is_refused() -> None:
    raw = RawPeer(initiator=False, protocols=("/yamux/1.0.0", "/mplex/6.7.0"))
    with pytest.raises(UnsupportedProtocol, match=r"\(it offers /yamux/1.0.0, /mplex/6.7.0\)"):
        _run_against(raw).next_event()
    silent = RawPeer(initiator=False, protocols=())
    with pytest.raises(UnsupportedProtocol, match="it offers nothing"):
        _run_against(silent).next_event()


def test_non_ed25519_identity_is_refused() -> None:
    raw = RawPeer(initiator=False)
    secp_key = b"\x08\x02\x12\x21" + b"\x02" * 33
    raw.payload_hook = lambda body: pb_bytes(1, secp_key) + body[38:]
    with pytest.raises(UnsupportedKeyType, match="key type Secp256k1 is not supported") as info:
        _run_against(raw).next_event()
    assert info.value.reason == "unsupported_key_type"


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (lambda body: b"", "identity_key is missing"),
        (lambda body: body[:38], "identity_sig is missing"),
        (lambda body: body + body[:38], "field 1 appears twice"),
        (lambda body: body[:-3], "declares"),
        (lambda body: b"\x0a\x01\x00" + body[38:], "public key"),
        (lambda body: body + b"\x08\x01", "field 1 must be bytes"),
    ],
)
def test_malformed_payloads_are_refused(hook: object, message: str) -> None:
    raw = RawPeer(initiator=False, payload_hook=hook)  # type: ignore[arg-type]
    with pytest.raises(MalformedHandshake, match=message):
        _run_against(raw).next_event()


def test_unknown_payload_fields_are_skipped() -> None:
    raw = RawPeer(initiator=False)
    raw.payload_hook = lambda body: pb_bytes(3, b"early data") + body + b"\x28\x05"
    assert drain(_run_against(raw)) == [HandshakeComplete(raw.peer_id)]


@pytest.mark.parametrize("we_initiate", [True, False])
def test_handshake_and_bulk_frames_against_noiseprotocol_in_both_roles(we_initiate: bool) -> None:
    """Our hand-written XX against noiseprotocol's, then both frame packings both ways."""
    for _ in range(3):  # fresh ephemeral keys each time; the signature memo hit path too
        key = IdentityKey.generate()
        raw = RawPeer(initiator=not we_initiate)
        conn = SecureConnection(key, initiator=we_initiate, expected_peer=raw.peer_id)
        if we_initiate:
            assert raw.read(conn.data_to_send()) == b""
            conn.receive_data(raw.write(raw.payload()))
            assert drain(conn) == [HandshakeComplete(raw.peer_id)]
            _check_our_payload(raw, raw.read(conn.data_to_send()), key)
        else:
            conn.receive_data(raw.write())
            assert drain(conn) == []
            _check_our_payload(raw, raw.read(conn.data_to_send()), key)
            conn.receive_data(raw.write(raw.payload()))
            assert drain(conn) == [HandshakeComplete(raw.peer_id)]
        assert raw.noise.handshake_finished

        equal = [bytes([n % 256]) * 100 for n in range(1500)]
        mixed = [bytes([n % 256]) * (n * 37 % 900) for n in range(400)] + [b"\x05" * 70_000]
        for frames in (equal, mixed):
            conn.send_frames(frames)
            assert raw.decrypt_frames(conn.data_to_send()) == frames
            conn.receive_data(raw.encrypt_frames(frames))
            assert conn.next_frames() == frames
