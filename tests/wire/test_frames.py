"""Frames after the handshake: coalescing, splitting, limits, tampering, replay, EOF."""

from __future__ import annotations

import math
import struct

import pytest

from bbnode.wire import (
    ConnectionClosed,
    ConnectionState,
    DecryptFailed,
    FrameReceived,
    FrameTooLarge,
    LocalProtocolError,
    MalformedFrame,
    UnexpectedEof,
)
from bbnode.wire.transport import MAX_NOISE_MESSAGE, MAX_PLAINTEXT, FrameDecoder
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
