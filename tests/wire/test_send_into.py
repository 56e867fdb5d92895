"""`data_to_send_into`: a connection's output written into a buffer the caller reuses."""

from __future__ import annotations

import pytest

from bbnode.wire import HandshakeComplete, IdentityKey, SecureConnection
from bbnode.wire.transport import MAX_PLAINTEXT
from tests.wire.wire_helpers import connected_pair, drain


def _burst(kind: str) -> list[bytes]:
    if kind == "equal":
        return [bytes([n % 256]) * 100 for n in range(1500)]
    return [bytes([n % 256]) * (n % 900) for n in range(400)]  # crosses message boundaries


@pytest.mark.parametrize("kind", ["equal", "mixed"])
def test_frames_written_into_a_reused_buffer_arrive_whole_and_in_order(kind: str) -> None:
    i, r = connected_pair()
    buffer = bytearray(b"stale bytes that must not be sent" * 10_000)  # longer than needed
    for round_ in range(3):
        frames = [bytes([round_]) + frame for frame in _burst(kind)]
        i.send_frames(frames)
        end = i.data_to_send_into(buffer)
        assert 0 < end <= len(buffer)
        with memoryview(buffer) as view:
            r.receive_data(view[:end])  # read in place
            assert r.next_frames() == frames


def test_the_buffer_grows_when_too_short_and_matches_data_to_send_in_size() -> None:
    i, r = connected_pair()
    frames = [b"x" * 70_000, b"y" * 10]  # the first spans two messages
    i.send_frames(frames)
    buffer = bytearray(5)
    end = i.data_to_send_into(buffer)
    assert len(buffer) == end  # grown to exactly what was written
    r.receive_data(bytes(buffer))
    assert r.next_frames() == frames
    # The same frames by data_to_send take the same number of bytes (fresh nonces aside).
    i.send_frames(frames)
    assert len(i.data_to_send()) == end
    # Two messages (the stream is longer than one message's plaintext), each with its
    # 2-byte length and 16-byte tag, around the frames and their 4-byte headers.
    assert MAX_PLAINTEXT < 4 + 70_000 + 4 + 10 <= 2 * MAX_PLAINTEXT
    assert end == 2 * (2 + 16) + 4 + 70_000 + 4 + 10


def test_nothing_pending_writes_nothing() -> None:
    i, _ = connected_pair()
    buffer = bytearray(b"keep")
    assert i.data_to_send_into(buffer) == 0
    assert buffer == b"keep"


def test_handshake_messages_go_through_the_buffer_too() -> None:
    a, b = IdentityKey.generate(), IdentityKey.generate()
    i = SecureConnection(a, initiator=True, expected_peer=b.peer_id)
    r = SecureConnection(b, initiator=False)
    buffer = bytearray()
    events: list[object] = []
    for _ in range(4):
        for sender, receiver in ((i, r), (r, i)):
            end = sender.data_to_send_into(buffer)
            if end:
                receiver.receive_data(bytes(buffer[:end]))
            events += drain(receiver)
    assert HandshakeComplete(a.peer_id) in events
    assert HandshakeComplete(b.peer_id) in events
    i.send_frame(b"after the handshake")
    r.receive_data(bytes(buffer[: i.data_to_send_into(buffer)]))
    assert r.next_frames() == [b"after the handshake"]


def test_a_memoryview_of_wider_items_is_read_as_bytes() -> None:
    i, r = connected_pair()
    i.send_frames([b"ab" * 10, b"cd" * 10])
    data = bytes(i.data_to_send())
    assert len(data) == 2 + 16 + 4 + 20 + 4 + 20  # one message: whole 2-byte items
    with memoryview(data) as view, view.cast("H") as wide:
        r.receive_data(wide)
        assert r.next_frames() == [b"ab" * 10, b"cd" * 10]
