"""Frames after the handshake: coalescing, splitting, limits, tampering, replay, EOF."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

import pytest

from bbnode.wire import (
    ConnectionClosed,
    ConnectionState,
    DecryptFailed,
    FrameReceived,
    FrameTooLarge,
    HandshakeComplete,
    IdentityKey,
    LocalProtocolError,
    MalformedFrame,
    SecureConnection,
    UnexpectedEof,
)
from bbnode.wire.transport import MAX_NOISE_MESSAGE, MAX_PLAINTEXT, FrameDecoder, _run_length
from tests.wire.wire_helpers import connected_pair, drain, split_messages


@pytest.mark.parametrize(
    "sizes",
    [
        [0],
        [1],
        [100],
        [MAX_PLAINTEXT - 4],
        [MAX_PLAINTEXT - 3],
        [MAX_PLAINTEXT + 10],
        [200_000],
        [5, 70_000, 3, 0, 65_515, 1],
    ],
)
def test_frames_arrive_whole_and_in_order_both_ways(sizes: list[int]) -> None:
    i, r = connected_pair()
    frames = [bytes([n % 251]) * n for n in sizes]
    for frame in frames:
        i.send_frame(frame)
        r.send_frame(frame[::-1])
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())
    assert drain(r) == [FrameReceived(f) for f in frames]
    assert drain(i) == [FrameReceived(f[::-1]) for f in frames]


def test_small_frames_are_coalesced_into_one_transport_message() -> None:
    i, r = connected_pair()
    for n in range(100):
        i.send_frame(bytes([n]) * 100)
    data = i.data_to_send()
    assert len(split_messages(data)) == 1
    assert len(data) == 2 + 100 * (4 + 100) + 16
    r.receive_data(data)
    assert drain(r) == [FrameReceived(bytes([n]) * 100) for n in range(100)]


def test_large_frame_is_split_into_max_size_messages() -> None:
    i, r = connected_pair()
    frame = bytes(range(256)) * 4096  # 1 MiB
    i.send_frame(frame)
    messages = split_messages(i.data_to_send())
    assert len(messages) == math.ceil((len(frame) + 4) / MAX_PLAINTEXT)
    assert all(len(m) - 2 <= MAX_NOISE_MESSAGE for m in messages)
    assert len(messages[0]) - 2 == MAX_NOISE_MESSAGE
    for message in messages[:-1]:
        r.receive_data(message)
        assert r.next_event() is None  # nothing is delivered until the frame is whole
    r.receive_data(messages[-1])
    assert drain(r) == [FrameReceived(frame)]


def test_local_oversize_frame_is_refused() -> None:
    i, _ = connected_pair(max_frame_bytes=1000)
    i.send_frame(b"x" * 1000)
    with pytest.raises(LocalProtocolError, match="frame of 1001 bytes exceeds max_frame_bytes"):
        i.send_frame(b"x" * 1001)
    with pytest.raises(LocalProtocolError, match="frame must be bytes, got str"):
        i.send_frame("text")  # type: ignore[arg-type]


def test_remote_oversize_frame_is_refused_at_its_header() -> None:
    i, r = connected_pair(responder_max_frame_bytes=1000)  # the receiver's limit is lower
    i.send_frame(b"y" * 500_000)
    first = split_messages(i.data_to_send())[0]
    r.receive_data(first)  # only the first of eight messages: refused before buffering more
    with pytest.raises(FrameTooLarge) as info:
        r.next_event()
    assert info.value.reason == "frame_too_large"
    assert str(info.value) == "peer announced a 500000-byte frame; the limit is 1000 bytes"
    assert r.state is ConnectionState.FAILED


def test_failed_connection_refuses_to_send() -> None:
    _, r = connected_pair()
    r.receive_data(b"\x00\x10" + bytes(16))
    with pytest.raises(DecryptFailed):
        r.next_event()
    with pytest.raises(LocalProtocolError, match="cannot send a frame in state failed"):
        r.send_frame(b"x")
    assert r.data_to_send() == b""


def test_bytearray_and_memoryview_frames_are_accepted() -> None:
    i, r = connected_pair()
    i.send_frame(bytearray(b"abc"))
    i.send_frame(memoryview(b"defg")[1:])
    r.receive_data(i.data_to_send())
    assert drain(r) == [FrameReceived(b"abc"), FrameReceived(b"efg")]


def test_tampered_transport_message_fails_authentication() -> None:
    i, r = connected_pair()
    i.send_frame(b"payload")
    data = bytearray(i.data_to_send())
    data[5] ^= 0x04
    r.receive_data(bytes(data))
    with pytest.raises(DecryptFailed) as info:
        r.next_event()
    assert info.value.reason == "decrypt_failed"
    assert "transport message 0 failed authentication" in str(info.value)


def test_replayed_transport_message_fails() -> None:
    i, r = connected_pair()
    i.send_frame(b"pay me once")
    message = i.data_to_send()
    r.receive_data(message)
    assert drain(r) == [FrameReceived(b"pay me once")]
    r.receive_data(message)
    with pytest.raises(DecryptFailed, match="transport message 1 failed"):
        r.next_event()


def test_reordered_transport_messages_fail() -> None:
    i, r = connected_pair()
    i.send_frame(b"first")
    first = i.data_to_send()
    i.send_frame(b"second")
    second = i.data_to_send()
    r.receive_data(second + first)
    with pytest.raises(DecryptFailed):
        r.next_event()


def test_dropped_transport_message_fails() -> None:
    i, r = connected_pair()
    i.send_frame(b"lost")
    i.data_to_send()
    i.send_frame(b"next")
    r.receive_data(i.data_to_send())
    with pytest.raises(DecryptFailed):
        r.next_event()


def test_message_shorter_than_a_tag_is_malformed() -> None:
    _, r = connected_pair()
    r.receive_data(b"\x00\x05hello")
    with pytest.raises(MalformedFrame, match="shorter than its 16-byte tag") as info:
        r.next_event()
    assert info.value.reason == "malformed_frame"


def test_clean_eof_after_frames() -> None:
    i, r = connected_pair()
    i.send_frame(b"last words")
    r.receive_data(i.data_to_send())
    r.receive_data(b"")
    assert drain(r) == [FrameReceived(b"last words"), ConnectionClosed()]
    assert r.next_event() is None
    assert r.state is ConnectionState.CLOSED
    assert r.is_established
    with pytest.raises(LocalProtocolError, match="cannot send a frame in state closed"):
        r.send_frame(b"too late")


def test_eof_inside_a_transport_message() -> None:
    i, r = connected_pair()
    i.send_frame(b"cut short")
    r.receive_data(i.data_to_send()[:-3])
    r.receive_data(b"")
    with pytest.raises(UnexpectedEof, match="inside a message"):
        r.next_event()


def test_eof_inside_a_frame_spanning_messages() -> None:
    i, r = connected_pair()
    i.send_frame(b"z" * 100_000)
    r.receive_data(split_messages(i.data_to_send())[0])
    r.receive_data(b"")
    with pytest.raises(UnexpectedEof, match="in the middle of a frame"):
        r.next_event()


def test_byte_by_byte_frames() -> None:
    i, r = connected_pair()
    frames = [b"a" * n for n in (0, 1, 99, 70_000)]
    for frame in frames:
        i.send_frame(frame)
    got = []
    for byte in i.data_to_send():
        r.receive_data(bytes([byte]))
        got += drain(r)
    assert got == [FrameReceived(f) for f in frames]


# -- the decoder alone: headers and frames split at every possible point ----------------------
def _stream(frames: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(f)) + f for f in frames)


def test_decoder_handles_every_split_point() -> None:
    frames = [b"", b"abc", b"", b"0123456789"]
    stream = _stream(frames)
    for a in range(len(stream) + 1):
        for b in range(a, len(stream) + 1):
            decoder = FrameDecoder(100)
            got = decoder.feed(stream[:a]) + decoder.feed(stream[a:b]) + decoder.feed(stream[b:])
            assert got == frames, (a, b)
            assert decoder.idle


def test_decoder_checks_a_split_header_before_buffering() -> None:
    decoder = FrameDecoder(10)
    assert decoder.feed(b"\x00\x00") == []
    assert not decoder.idle
    with pytest.raises(FrameTooLarge, match="11-byte frame; the limit is 10"):
        decoder.feed(b"\x00\x0b" + b"x" * 5)


# -- bulk API: send_frames / next_frames -------------------------------------------------------
def test_next_frames_gives_what_next_event_would() -> None:
    i, r = connected_pair()
    frames = [bytes([n % 256]) * (n % 300) for n in range(3000)]
    i.send_frames(frames)
    r.receive_data(i.data_to_send())
    first = r.next_event()
    assert first == FrameReceived(frames[0])
    assert r.next_frames() == frames[1:]
    assert r.next_frames() == []
    assert r.next_event() is None
    r.receive_data(b"")
    assert r.next_frames() == []
    assert r.next_event() == ConnectionClosed()
    assert r.next_event() is None


def test_next_frames_leaves_the_handshake_to_next_event() -> None:
    a, b = IdentityKey.generate(), IdentityKey.generate()
    i = SecureConnection(a, initiator=True)
    r = SecureConnection(b, initiator=False)
    assert i.next_frames() == []
    r.receive_data(i.data_to_send())
    assert r.next_frames() == []  # message 1 is not consumed by next_frames
    assert r.next_event() is None
    i.receive_data(r.data_to_send())
    assert i.next_frames() == []
    assert i.next_event() == HandshakeComplete(b.peer_id)
    r.receive_data(i.data_to_send())
    i.send_frame(b"early")
    r.receive_data(i.data_to_send())
    assert r.next_frames() == []  # HandshakeComplete comes first
    assert r.next_event() == HandshakeComplete(a.peer_id)
    assert r.next_frames() == [b"early"]


def test_send_frames_equals_send_frame_in_a_loop() -> None:
    frames = [b"", b"a", b"bb" * 40_000, *(bytes([n % 256]) * 100 for n in range(1500)), b"tail"]
    i1, r1 = connected_pair()
    i2, r2 = connected_pair()
    for frame in frames:
        i1.send_frame(frame)
    i2.send_frames(iter(frames))
    r1.receive_data(i1.data_to_send())
    r2.receive_data(i2.data_to_send())
    assert drain(r1) == drain(r2) == [FrameReceived(f) for f in frames]


def test_send_frames_copies_mutable_buffers_and_is_all_or_nothing() -> None:
    i, r = connected_pair(max_frame_bytes=100)
    buffer = bytearray(b"x" * 10)
    i.send_frames([b"one", buffer, memoryview(b"two")])
    buffer[:] = b"y" * 10
    with pytest.raises(LocalProtocolError, match="frame of 101 bytes exceeds max_frame_bytes"):
        i.send_frames([b"ok", b"z" * 101])
    with pytest.raises(LocalProtocolError, match="frame must be bytes, got int"):
        i.send_frames([b"ok", 5])  # type: ignore[list-item]
    r.receive_data(i.data_to_send())
    assert r.next_frames() == [b"one", b"x" * 10, b"two"]
    assert r.next_frames() == []


def test_send_frames_before_the_handshake_is_refused() -> None:
    conn = SecureConnection(IdentityKey.generate(), initiator=True)
    with pytest.raises(LocalProtocolError, match="cannot send a frame in state awaiting_response"):
        conn.send_frames([b"x"])


@pytest.mark.parametrize("size", [0, 1, 100, 1000, MAX_PLAINTEXT - 4])
def test_equal_sized_frames_are_packed_whole_into_full_messages(size: int) -> None:
    i, r = connected_pair()
    count = 3 * (MAX_PLAINTEXT // (size + 4)) + 1
    frames = [bytes([n % 256]) * size for n in range(count)]
    i.send_frames(frames)
    messages = split_messages(i.data_to_send())
    per_message = MAX_PLAINTEXT // (size + 4)
    assert len(messages) == 4
    for message in messages[:3]:
        assert len(message) == 2 + per_message * (size + 4) + 16
    for message in messages:  # every message holds whole frames: each decodes on its own
        r.receive_data(message)
        assert len(r.next_frames()) == (1 if message is messages[-1] else per_message)


def test_next_frames_returns_good_frames_before_raising() -> None:
    i, r = connected_pair()
    i.send_frames([b"a" * 100] * 1000)  # two transport messages
    first, second = split_messages(i.data_to_send())
    r.receive_data(first + second[:-1] + bytes([second[-1] ^ 1]))
    assert r.next_frames() == [b"a" * 100] * (MAX_PLAINTEXT // 104)
    with pytest.raises(DecryptFailed):
        r.next_frames()
    with pytest.raises(DecryptFailed):
        r.next_event()
    assert r.state is ConnectionState.FAILED


@pytest.mark.parametrize("chunk", [1, 7, 1000, 65_537, 65_538, 200_000])
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_input_in_any_chunking_and_buffer_type(chunk: int, kind: type) -> None:
    i, r = connected_pair()
    frames = [bytes([n % 256]) * (n % 700) for n in range(600)]
    i.send_frames(frames)
    data = bytearray(i.data_to_send())  # so that a memoryview of a piece is writable
    got: list[bytes] = []
    for start in range(0, len(data), chunk):
        piece = kind(data[start : start + chunk])
        r.receive_data(piece)
        got += r.next_frames()
        # Waiting for more: only the incomplete message is held, not the caller's chunk...
        assert r._buffered() <= MAX_NOISE_MESSAGE + 2
        if kind is not bytes:  # ...which the caller may now overwrite
            piece[:] = bytes(len(piece))
    assert got == frames


def test_callers_bytearrays_are_read_in_place_and_never_modified() -> None:
    i, r = connected_pair()
    frames = [bytes([n]) * 300 for n in range(200)]
    i.send_frames(frames)
    data = bytes(i.data_to_send())
    # Cut inside a message, so the second chunk must be joined to the first one's tail.
    chunks = [bytearray(data[:1000]), bytearray(data[1000:70_000]), bytearray(data[70_000:])]
    copies = [bytes(chunk) for chunk in chunks]
    got: list[bytes] = []
    for chunk in chunks:
        r.receive_data(chunk)
        got += r.next_frames()
    assert got == frames
    assert [bytes(chunk) for chunk in chunks] == copies


def _writable_view(data: bytes) -> memoryview:
    return memoryview(bytearray(data))


# The caller may modify a bytearray or memoryview it gave to `receive_data` once the next
# `next_event()`/`next_frames()` call has returned; each test scribbles over its chunk then.
_MUTABLE_KINDS = pytest.mark.parametrize(
    "kind", [bytearray, _writable_view], ids=["bytearray", "memoryview"]
)


@_MUTABLE_KINDS
def test_callers_chunk_with_part_of_a_message_may_be_modified_after_next_frames(
    kind: Callable[[bytes], bytearray | memoryview],
) -> None:
    i, r = connected_pair()
    i.send_frame(b"x" * 100)
    data = bytes(i.data_to_send())
    head = kind(data[:10])  # nothing of it can be consumed yet
    r.receive_data(head)
    assert r.next_frames() == []
    head[:] = bytes(10)
    r.receive_data(data[10:])
    assert r.next_frames() == [b"x" * 100]


@_MUTABLE_KINDS
def test_callers_chunk_may_be_modified_after_next_event_returns_inside_it(
    kind: Callable[[bytes], bytearray | memoryview],
) -> None:
    i, r = connected_pair()
    messages = []
    for n in range(4):
        i.send_frames([bytes([n + 1]) * 50] * 2)  # one transport message of two frames
        messages.append(bytes(i.data_to_send()))
    frames = [FrameReceived(bytes([n + 1]) * 50) for n in range(4) for _ in range(2)]
    # next_event() returns with the rest of the chunk unread.
    chunk = kind(messages[0] + messages[1])
    r.receive_data(chunk)
    assert r.next_event() == frames[0]
    chunk[:] = bytes(len(chunk))
    # A chunk received while a decoded frame is pending: next_event() returns that frame.
    later = kind(messages[2] + messages[3])
    r.receive_data(later)
    assert r.next_event() == frames[1]
    later[:] = bytes(len(later))
    assert drain(r) == frames[2:]


@_MUTABLE_KINDS
def test_callers_chunk_may_be_modified_after_a_call_during_the_handshake(
    kind: Callable[[bytes], bytearray | memoryview],
) -> None:
    for bulk in (True, False):
        a, b = IdentityKey.generate(), IdentityKey.generate()
        i = SecureConnection(a, initiator=True, expected_peer=b.peer_id)
        r = SecureConnection(b, initiator=False)
        r.receive_data(i.data_to_send())
        assert drain(r) == []
        i.receive_data(r.data_to_send())
        assert drain(i) == [HandshakeComplete(remote_peer=b.peer_id)]
        i.send_frame(b"early")
        chunk = kind(bytes(i.data_to_send()))  # the last handshake message, then a frame
        r.receive_data(chunk)
        if bulk:
            assert r.next_frames() == []  # the handshake is next_event()'s to finish
        else:
            assert r.next_event() == HandshakeComplete(remote_peer=a.peer_id)
        chunk[:] = bytes(len(chunk))
        if bulk:
            assert r.next_event() == HandshakeComplete(remote_peer=a.peer_id)
        assert r.next_frames() == [b"early"]


def test_data_to_send_returns_a_new_buffer_each_call() -> None:
    i, r = connected_pair()
    i.send_frames([b"a" * 10, b"b" * 10])
    first = i.data_to_send()
    assert isinstance(first, bytearray)  # a burst comes back as the buffer it was sealed in
    kept = bytes(first)
    i.send_frames([b"c" * 10, b"d" * 20])
    second = i.data_to_send()
    assert second is not first
    assert bytes(first) == kept  # the second call did not write into the first buffer
    first[:] = bytes(len(first))  # the caller owns it: this must not reach any output
    i.send_frames([b"e" * 10, b"f" * 10])
    third = i.data_to_send()
    r.receive_data(kept)
    r.receive_data(second)
    r.receive_data(third)
    assert r.next_frames() == [b"a" * 10, b"b" * 10, b"c" * 10, b"d" * 20, b"e" * 10, b"f" * 10]


def test_decoder_runs_of_equal_frames_stop_at_the_first_different_frame() -> None:
    for size in (0, 5, 300):
        for at in (1, 3, 4, 9, 40):
            for odd in (size + 1, max(size - 1, 0) if size else 7, 256 + size):
                frames = [bytes([n]) * size for n in range(at)] + [b"o" * odd]
                frames += [bytes([n]) * size for n in range(50)]
                decoder = FrameDecoder(4000)
                assert decoder.feed(_stream(frames)) == frames, (size, at, odd)
                assert decoder.idle


def test_run_length_checks_every_header_byte() -> None:
    stride = 8  # 4-byte header + 4 bytes of frame; only the headers matter here
    for byte in range(4):
        for at in (1, 2, 5, 19):
            records = [b"\x01\x02\x03\x04" + b"...." for _ in range(20)]
            header = bytearray(records[at][:4])
            header[byte] ^= 0x80
            records[at] = bytes(header) + b"...."
            assert _run_length(b"".join(records), 0, stride, 20) == at, (byte, at)
    assert _run_length(b"\x00\x00\x00\x04abcd" * 6, 0, stride, 6) == 6
