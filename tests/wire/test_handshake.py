"""The Noise XX handshake between two SecureConnections over an in-memory pipe."""

from __future__ import annotations

import pytest

from bbnode.ids import PeerId
from bbnode.wire import (
    PROTOCOL_ID,
    ConnectionState,
    FrameReceived,
    HandshakeComplete,
    IdentityKey,
    LocalProtocolError,
    MalformedHandshake,
    PeerIdMismatch,
    SecureConnection,
    UnexpectedEof,
    UnsupportedProtocol,
)
from bbnode.wire.handshake import _VerifiedSignatures
from bbnode.wire.keys import NOISE_STATIC_KEY_PREFIX
from tests.wire.wire_helpers import drain, pump, split_messages


@pytest.fixture
def keys() -> tuple[IdentityKey, IdentityKey]:
    return IdentityKey.generate(), IdentityKey.generate()


def test_full_handshake_authenticates_both_sides(keys: tuple[IdentityKey, IdentityKey]) -> None:
    a, b = keys
    i = SecureConnection(a, initiator=True, expected_peer=b.peer_id)
    r = SecureConnection(b, initiator=False)
    assert i.state is ConnectionState.AWAITING_RESPONSE
    assert r.state is ConnectionState.AWAITING_HELLO
    events_i, events_r = pump(i, r)
    assert events_i == [HandshakeComplete(remote_peer=b.peer_id)]
    assert events_r == [HandshakeComplete(remote_peer=a.peer_id)]
    assert (i.remote_peer, r.remote_peer) == (b.peer_id, a.peer_id)
    assert (i.state, r.state) == (ConnectionState.ESTABLISHED, ConnectionState.ESTABLISHED)
    assert i.is_established
    assert r.is_established


def test_message_flow_and_sizes(keys: tuple[IdentityKey, IdentityKey]) -> None:
    a, b = keys
    i = SecureConnection(a, initiator=True)
    r = SecureConnection(b, initiator=False)
    msg1 = i.data_to_send()
    assert msg1[:2] == b"\x00\x20"  # 2-byte big-endian length, then the 32-byte ephemeral key
    assert len(msg1) == 34
    assert i.data_to_send() == b""
    r.receive_data(msg1)
    assert r.next_event() is None
    assert r.state is ConnectionState.AWAITING_FINISH
    msg2 = r.data_to_send()
    assert len(split_messages(msg2)) == 1
    i.receive_data(msg2)
    assert i.next_event() == HandshakeComplete(remote_peer=b.peer_id)
    assert i.next_event() is None
    msg3 = i.data_to_send()
    assert len(split_messages(msg3)) == 1
    assert r.remote_peer is None
    r.receive_data(msg3)
    assert drain(r) == [HandshakeComplete(remote_peer=a.peer_id)]


def test_byte_by_byte_delivery(keys: tuple[IdentityKey, IdentityKey]) -> None:
    a, b = keys
    i = SecureConnection(a, initiator=True, expected_peer=b.peer_id)
    r = SecureConnection(b, initiator=False, expected_peer=a.peer_id)
    seen_i: list[object] = []
    seen_r: list[object] = []
    for _ in range(3):
        for byte in i.data_to_send():
            r.receive_data(bytes([byte]))
            seen_r += drain(r)
        for byte in r.data_to_send():
            i.receive_data(bytes([byte]))
            seen_i += drain(i)
    assert seen_i == [HandshakeComplete(b.peer_id)]
    assert seen_r == [HandshakeComplete(a.peer_id)]
    i.send_frame(b"frame one")
    for byte in i.data_to_send():
        r.receive_data(bytes([byte]))
        seen_r += drain(r)
    assert seen_r[-1] == FrameReceived(b"frame one")


def test_initiator_can_send_frames_right_behind_message_3(
    keys: tuple[IdentityKey, IdentityKey],
) -> None:
    a, b = keys
    i = SecureConnection(a, initiator=True)
    r = SecureConnection(b, initiator=False)
    r.receive_data(i.data_to_send())
    drain(r)
    i.receive_data(r.data_to_send())
    assert drain(i) == [HandshakeComplete(b.peer_id)]
    i.send_frame(b"early")
    r.receive_data(i.data_to_send())  # message 3 and a transport message in one write
    assert drain(r) == [HandshakeComplete(a.peer_id), FrameReceived(b"early")]


def test_wrong_expected_peer_is_refused_by_the_initiator(
    keys: tuple[IdentityKey, IdentityKey],
) -> None:
    a, b = keys
    someone_else = IdentityKey.generate().peer_id
    i = SecureConnection(a, initiator=True, expected_peer=someone_else)
    r = SecureConnection(b, initiator=False)
    r.receive_data(i.data_to_send())
    drain(r)
    i.receive_data(r.data_to_send())
    with pytest.raises(PeerIdMismatch) as info:
        i.next_event()
    assert info.value.reason == "peer_id_mismatch"
    assert str(info.value) == f"expected peer {someone_else} but the remote is {b.peer_id}"
    assert i.state is ConnectionState.FAILED
    assert i.data_to_send() == b""  # message 3 is never sent to an impostor
    with pytest.raises(PeerIdMismatch):  # the error is sticky
        i.next_event()


def test_wrong_expected_peer_is_refused_by_the_responder(
    keys: tuple[IdentityKey, IdentityKey],
) -> None:
    a, b = keys
    i = SecureConnection(a, initiator=True)
    r = SecureConnection(b, initiator=False, expected_peer=PeerId.from_u64(7))
    with pytest.raises(PeerIdMismatch, match="expected peer"):
        pump(i, r)


def test_unsupported_protocol_is_refused(keys: tuple[IdentityKey, IdentityKey]) -> None:
    a, b = keys
    i = SecureConnection(a, initiator=True, protocol="/other/2")
    r = SecureConnection(b, initiator=False)
    r.receive_data(i.data_to_send())
    drain(r)
    i.receive_data(r.data_to_send())
    with pytest.raises(UnsupportedProtocol) as info:
        i.next_event()
    assert info.value.reason == "unsupported_protocol"
    assert str(info.value) == (
        f"peer {b.peer_id} does not speak /other/2 (it offers {PROTOCOL_ID})"
    )


@pytest.mark.parametrize("index", [0, 1, 2, 40, -1])
def test_tampered_message_2_fails(keys: tuple[IdentityKey, IdentityKey], index: int) -> None:
    a, b = keys
    i = SecureConnection(a, initiator=True)
    r = SecureConnection(b, initiator=False)
    r.receive_data(i.data_to_send())
    drain(r)
    msg2 = bytearray(r.data_to_send())
    msg2[index] ^= 0x01
    i.receive_data(bytes(msg2))
    if index in (0, 1):  # a corrupted length: a shorter message fails, a longer one waits
        i.receive_data(b"")
        with pytest.raises((MalformedHandshake, UnexpectedEof)):
            drain(i)
    else:
        with pytest.raises(MalformedHandshake, match="handshake message 2") as info:
            i.next_event()
        assert info.value.reason == "malformed_handshake"


def test_tampered_message_3_fails(keys: tuple[IdentityKey, IdentityKey]) -> None:
    a, b = keys
    i = SecureConnection(a, initiator=True)
    r = SecureConnection(b, initiator=False)
    r.receive_data(i.data_to_send())
    drain(r)
    i.receive_data(r.data_to_send())
    drain(i)
    msg3 = bytearray(i.data_to_send())
    msg3[-5] ^= 0x80
    r.receive_data(bytes(msg3))
    with pytest.raises(MalformedHandshake, match="handshake message 3 failed"):
        r.next_event()


def test_replayed_handshake_from_another_session_fails(
    keys: tuple[IdentityKey, IdentityKey],
) -> None:
    a, b = keys
    i1 = SecureConnection(a, initiator=True)
    r1 = SecureConnection(b, initiator=False)
    r1.receive_data(i1.data_to_send())
    drain(r1)
    i1.receive_data(r1.data_to_send())
    drain(i1)
    recorded_msg3 = i1.data_to_send()
    # A new responder session: the attacker replays the old message 1 and message 3.
    r2 = SecureConnection(b, initiator=False)
    r2.receive_data(SecureConnection(a, initiator=True).data_to_send())
    drain(r2)
    r2.receive_data(recorded_msg3)
    with pytest.raises(MalformedHandshake):
        r2.next_event()


@pytest.mark.parametrize("cut", [0, 1, 20, 33])
def test_eof_during_handshake(keys: tuple[IdentityKey, IdentityKey], cut: int) -> None:
    a, b = keys
    r = SecureConnection(b, initiator=False)
    r.receive_data(SecureConnection(a, initiator=True).data_to_send()[:cut])
    r.receive_data(b"")
    with pytest.raises(UnexpectedEof) as info:
        r.next_event()
    assert info.value.reason == "unexpected_eof"


def test_message_1_with_payload_is_refused(keys: tuple[IdentityKey, IdentityKey]) -> None:
    r = SecureConnection(keys[1], initiator=False)
    r.receive_data(b"\x00\x21" + b"\x01" * 33)
    with pytest.raises(MalformedHandshake, match="must be 32 bytes"):
        r.next_event()


def test_local_misuse(keys: tuple[IdentityKey, IdentityKey]) -> None:
    a, _ = keys
    conn = SecureConnection(a, initiator=True)
    with pytest.raises(LocalProtocolError, match="cannot send a frame in state awaiting_response"):
        conn.send_frame(b"too early")
    conn.receive_data(b"")
    conn.receive_data(b"")  # repeated EOF is harmless
    with pytest.raises(LocalProtocolError, match="receive_data after EOF"):
        conn.receive_data(b"more")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_frame_bytes": 0}, "max_frame_bytes must be an int in 1..4294967295, got 0"),
        ({"max_frame_bytes": 2**32}, "max_frame_bytes must be an int"),
        ({"max_frame_bytes": True}, "max_frame_bytes must be an int"),
        ({"protocol": ""}, "protocol must be a non-empty string"),
        ({"protocol": "x" * 300}, "at most 256 bytes"),
        ({"expected_peer": "12D3KooW"}, "expected_peer must be a PeerId or None, got str"),
    ],
)
def test_bad_construction_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        SecureConnection(IdentityKey.generate(), initiator=True, **kwargs)  # type: ignore[arg-type]


def test_key_must_be_an_identity_key() -> None:
    with pytest.raises(LocalProtocolError, match="key must be an IdentityKey, got bytes"):
        SecureConnection(b"key", initiator=True)  # type: ignore[arg-type]


def test_verified_signature_memo_is_exact_and_bounded() -> None:
    key = IdentityKey.generate()
    memo = _VerifiedSignatures(limit=2)
    statics = [bytes([n]) * 32 for n in range(3)]
    sigs = [key.sign(NOISE_STATIC_KEY_PREFIX + s) for s in statics]
    assert memo.verify(key.public_bytes, statics[0], sigs[0])
    assert not memo.verify(key.public_bytes, statics[0], sigs[1])  # a hit needs all three bytes
    assert not memo.verify(key.public_bytes, statics[1], sigs[0])
    assert memo.verify(key.public_bytes, statics[1], sigs[1])
    assert memo.verify(key.public_bytes, statics[2], sigs[2])
    assert len(memo._entries) == 2  # the oldest was evicted
    assert (key.public_bytes, statics[0], sigs[0]) not in memo._entries
    assert memo.verify(key.public_bytes, statics[0], sigs[0])  # re-verified, not remembered


def test_reconnecting_known_peers_still_checks_the_expected_peer(
    keys: tuple[IdentityKey, IdentityKey],
) -> None:
    a, b = keys
    pump(SecureConnection(a, initiator=True), SecureConnection(b, initiator=False))
    i = SecureConnection(a, initiator=True, expected_peer=a.peer_id)
    with pytest.raises(PeerIdMismatch):
        pump(i, SecureConnection(b, initiator=False))
