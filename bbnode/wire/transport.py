"""Post-handshake transport: Noise transport messages and the frame codec inside them.

Wire format (after the handshake), per the libp2p noise spec::

    message   = u16be length || ChaCha20-Poly1305(k, nonce=n++, ad="", plaintext)   (≤ 65535 B)

and bbnode's frame codec, over the concatenated plaintexts of one direction::

    frame     = u32be frame_length || frame bytes

Frames are packed back to back, so many small frames share one transport message (one AEAD
call and one length prefix for hundreds of envelopes, which is where the throughput comes
from) and a large frame continues across as many messages as it needs; the length header says
how much, and therefore how many chunks, form the frame. A reader needs nothing beyond the
header to know where the frame ends, so it rejects an oversized frame before buffering any of it.

The cipher is `cryptography`'s ChaCha20Poly1305 keyed with the `Split()` keys of the Noise
handshake and the Noise nonce layout (4 zero bytes || u64 little-endian counter), so the bytes
are exactly what `noiseprotocol`'s `encrypt`/`decrypt` produce (a test checks this against an
independent peer) without its per-call Python overhead. Counters make a replayed, reordered or
dropped message fail authentication.
"""

from __future__ import annotations

import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from bbnode.wire.errors import DecryptFailed, FrameTooLarge, LocalProtocolError

__all__ = [
    "FRAME_HEADER_BYTES",
    "MAX_NOISE_MESSAGE",
    "MAX_PLAINTEXT",
    "FrameDecoder",
    "FrameEncoder",
    "TransportCipher",
]

# Noise spec §3: a Noise message, ciphertext and tag included, is at most 65535 bytes.
MAX_NOISE_MESSAGE: Final = 65535
TAG_BYTES: Final = 16
MAX_PLAINTEXT: Final = MAX_NOISE_MESSAGE - TAG_BYTES
FRAME_HEADER_BYTES: Final = 4
# Noise spec §5.1: nonce 2^64-1 is reserved; a connection must stop before using it.
_MAX_NONCE: Final = 2**64 - 1
_NONCE = struct.Struct("<4xQ")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class TransportCipher:
    """One direction's Noise CipherState: a key and a counting nonce."""

    __slots__ = ("_aead", "_nonce")

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._nonce = 0

    def encrypt(self, plaintext: bytes | memoryview) -> bytes:
        if self._nonce >= _MAX_NONCE:
            raise LocalProtocolError("transport nonce exhausted; open a new connection")
        nonce = _NONCE.pack(self._nonce)
        self._nonce += 1
        return self._aead.encrypt(nonce, plaintext, None)

    def decrypt(self, ciphertext: bytes | memoryview) -> bytes:
        if self._nonce >= _MAX_NONCE:
            raise DecryptFailed("transport nonce exhausted")
        try:
            plaintext = self._aead.decrypt(_NONCE.pack(self._nonce), ciphertext, None)
        except InvalidTag:
            raise DecryptFailed(
                f"transport message {self._nonce} failed authentication "
                "(tampered, reordered, replayed or not from this session)"
            ) from None
        self._nonce += 1
        return plaintext


class FrameEncoder:
    """Queues frames and emits them as framed, encrypted transport messages.

    `add()` is cheap (no copy beyond the header); `flush()` packs everything queued into as
    few transport messages as possible and returns the bytes for the socket.
    """

    __slots__ = ("_cipher", "pending")

    def __init__(self, cipher: TransportCipher) -> None:
        self._cipher = cipher
        self.pending: list[bytes] = []
        """Queued plaintext pieces; `SecureConnection.send_frame` appends here directly."""

    def add(self, frame: bytes) -> None:
        self.pending.append(_U32.pack(len(frame)))
        self.pending.append(frame)

    def flush(self) -> bytes:
        if not self.pending:
            return b""
        stream = memoryview(b"".join(self.pending))
        self.pending.clear()
        encrypt = self._cipher.encrypt
        pack = _U16.pack
        out: list[bytes] = []
        for start in range(0, len(stream), MAX_PLAINTEXT):
            ciphertext = encrypt(stream[start : start + MAX_PLAINTEXT])
            out.append(pack(len(ciphertext)))
            out.append(ciphertext)
        return b"".join(out)


class FrameDecoder:
    """Splits decrypted plaintext back into frames, enforcing `max_frame_bytes`.

    Holds at most one partial header (< 4 bytes) and one partial frame (≤ `max_frame_bytes`):
    the length is checked the moment the header is complete, before any frame byte is kept.
    """

    __slots__ = ("_header", "_max", "_parts", "_wanted")

    def __init__(self, max_frame_bytes: int) -> None:
        self._max = max_frame_bytes
        self._header = b""
        # Pieces of the frame being assembled (views into decrypted messages, joined once).
        self._parts: list[memoryview] = []
        # Bytes still missing from the frame being assembled; -1 = between frames.
        self._wanted = -1

    @property
    def idle(self) -> bool:
        """True between frames (a clean place for the stream to end)."""
        return self._wanted < 0 and not self._header

    @property
    def buffered(self) -> int:
        """Bytes held for the frame being assembled (never more than `max_frame_bytes`)."""
        return sum(len(part) for part in self._parts) + len(self._header)

    def feed(self, plaintext: bytes) -> list[bytes]:
        """Consume one message's plaintext; return the frames it completed, in order."""
        frames: list[bytes] = []
        pos = 0
        end = len(plaintext)
        if self._wanted >= 0 or self._header:
            pos = self._resume(plaintext, frames)
        unpack = _U32.unpack_from
        limit = self._max
        # Fast path: whole frames inside this message need no copying into a buffer.
        while end - pos >= FRAME_HEADER_BYTES:
            (length,) = unpack(plaintext, pos)
            if length > limit:
                raise _too_large(length, limit)
            start = pos + FRAME_HEADER_BYTES
            stop = start + length
            if stop > end:
                self._parts = [memoryview(plaintext)[start:]]
                self._wanted = stop - end
                return frames
            frames.append(plaintext[start:stop])
            pos = stop
        if pos < end:
            self._header = plaintext[pos:]
        return frames

    def _resume(self, plaintext: bytes, frames: list[bytes]) -> int:
        """Continue a header or frame split across messages; return where whole frames start."""
        pos = 0
        if self._header:
            need = FRAME_HEADER_BYTES - len(self._header)
            self._header += plaintext[:need]
            pos = min(need, len(plaintext))
            if len(self._header) < FRAME_HEADER_BYTES:
                return pos
            (length,) = _U32.unpack(self._header)
            self._header = b""
            if length > self._max:
                raise _too_large(length, self._max)
            self._parts = []
            self._wanted = length
        take = min(self._wanted, len(plaintext) - pos)
        if take:
            self._parts.append(memoryview(plaintext)[pos : pos + take])
        self._wanted -= take
        pos += take
        if self._wanted == 0:
            frames.append(b"".join(self._parts))
            self._parts = []
            self._wanted = -1
        return pos


def _too_large(length: int, limit: int) -> FrameTooLarge:
    return FrameTooLarge(f"peer announced a {length}-byte frame; the limit is {limit} bytes")
