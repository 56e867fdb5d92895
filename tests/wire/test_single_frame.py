"""The one-frame shortcuts (a request or its response) give exactly the general paths' result.

`FrameEncoder.flush` and `FrameDecoder.feed` skip their batching set-up for a lone frame;
the bytes on the wire and the frames handed out must not change because of it.
"""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from bbnode.wire import FrameTooLarge
from bbnode.wire.transport import (
    MAX_PLAINTEXT,
    FrameDecoder,
    FrameEncoder,
    TransportCipher,
    encode_frames,
)

KEY = bytes(range(32))


def _noise_message(counter: int, plaintext: bytes) -> bytes:
    """One transport message computed independently: u16be length || ChaCha20-Poly1305."""
    nonce = struct.pack("<4xQ", counter)
    ciphertext = ChaCha20Poly1305(KEY).encrypt(nonce, plaintext, None)
    return struct.pack(">H", len(ciphertext)) + ciphertext


@pytest.mark.parametrize("size", [0, 1, 150, MAX_PLAINTEXT - 4])
def test_a_lone_frame_is_one_message_with_its_header(size: int) -> None:
    encoder = FrameEncoder(TransportCipher(KEY))
    frame = bytes([size % 251]) * size
    for counter in range(2):  # the nonce advances across flushes
        encoder.add(frame)
        assert encoder.flush() == _noise_message(counter, struct.pack(">I", size) + frame)
    assert encoder.flush() == b""


def test_a_lone_frame_too_large_for_one_message_is_cut_as_a_stream() -> None:
    encoder = FrameEncoder(TransportCipher(KEY))
    frame = b"z" * (MAX_PLAINTEXT - 3)
    encoder.add(frame)
    stream = encode_frames([frame])
    assert encoder.flush() == _noise_message(0, stream[:MAX_PLAINTEXT]) + _noise_message(
        1, stream[MAX_PLAINTEXT:]
    )


def test_a_plaintext_holding_one_whole_frame_gives_that_frame() -> None:
    decoder = FrameDecoder(1000)
    assert decoder.feed(encode_frames([b"request"])) == [b"request"]
    assert decoder.feed(encode_frames([b""])) == [b""]
    assert decoder.idle


def test_a_lone_frame_over_the_limit_is_refused() -> None:
    decoder = FrameDecoder(10)
    assert decoder.feed(encode_frames([b"x" * 10])) == [b"x" * 10]
    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_frames([b"x" * 11]))


def test_a_message_that_completes_a_split_frame_is_not_taken_for_a_lone_frame() -> None:
    # The second message is exactly 4 + n bytes with n in its first 4 bytes: it must still
    # be read as the rest of the pending frame.
    tail = struct.pack(">I", 4) + b"abcd"
    stream = struct.pack(">I", 2 + len(tail)) + b"hi" + tail
    decoder = FrameDecoder(1000)
    assert decoder.feed(stream[:6]) == []
    assert decoder.feed(stream[6:]) == [b"hi" + tail]
    assert decoder.idle
