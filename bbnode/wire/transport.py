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

import functools
import struct
from collections.abc import Iterator
from itertools import chain
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from bbnode.wire.errors import DecryptFailed, FrameTooLarge, LocalProtocolError

__all__ = [
    "FRAME_HEADER_BYTES",
    "MAX_NOISE_MESSAGE",
    "MAX_PLAINTEXT",
    "NONCE",
    "TAG_BYTES",
    "U16",
    "FrameDecoder",
    "FrameEncoder",
    "TransportCipher",
    "encode_frames",
]

# Noise spec §3: a Noise message, ciphertext and tag included, is at most 65535 bytes.
MAX_NOISE_MESSAGE: Final = 65535
# The ChaCha20-Poly1305 tag on every Noise ciphertext (RFC 8439), handshake ones included.
TAG_BYTES: Final = 16
MAX_PLAINTEXT: Final = MAX_NOISE_MESSAGE - TAG_BYTES
FRAME_HEADER_BYTES: Final = 4
# Noise spec §12.3: ChaChaPoly's nonce is 32 zero bits then the 64-bit counter, little-endian
# (the handshake's CipherState uses it too).
NONCE: Final = struct.Struct("<4xQ")
# The u16 big-endian length in front of every Noise message (libp2p Noise).
U16: Final = struct.Struct(">H")
# Noise spec §5.1: nonce 2^64-1 is reserved; a connection must stop before using it.
_MAX_NONCE: Final = 2**64 - 1
_U32 = struct.Struct(">I")
# The decoder looks for a run of equal-sized frames before every burst of this many frames
# cut one by one; a run shorter than `_MIN_RUN` is not worth the `struct` call.
_PROBE_EVERY: Final = 16
_MAX_BURST: Final = 1024
_MIN_RUN: Final = 4
# Records per cached run `Struct` (each ~256 format codes; 64 of them cached).
_RUN_CHUNK: Final = 256


class TransportCipher:
    """One direction's Noise CipherState: a key and a counting nonce."""

    __slots__ = ("_aead", "_nonce")

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._nonce = 0

    def encrypt(self, plaintext: bytes | memoryview) -> bytes:
        if self._nonce >= _MAX_NONCE:
            raise LocalProtocolError("transport nonce exhausted; open a new connection")
        nonce = NONCE.pack(self._nonce)
        self._nonce += 1
        return self._aead.encrypt(nonce, plaintext, None)

    def encrypt_into(self, plaintext: bytes | memoryview, out: memoryview) -> None:
        """`encrypt`, writing the ciphertext into `out` (exactly `len(plaintext) + 16` bytes)."""
        if self._nonce >= _MAX_NONCE:
            raise LocalProtocolError("transport nonce exhausted; open a new connection")
        nonce = NONCE.pack(self._nonce)
        self._nonce += 1
        self._aead.encrypt_into(nonce, plaintext, None, out)

    def decrypt(self, ciphertext: bytes | memoryview) -> bytes:
        if self._nonce >= _MAX_NONCE:
            raise DecryptFailed("transport nonce exhausted")
        try:
            plaintext = self._aead.decrypt(NONCE.pack(self._nonce), ciphertext, None)
        except InvalidTag:
            raise DecryptFailed(
                f"transport message {self._nonce} failed authentication "
                "(tampered, reordered, replayed or not from this session)"
            ) from None
        self._nonce += 1
        return plaintext


class FrameEncoder:
    """Queues frames and emits them as framed, encrypted transport messages.

    `add()` only queues the frame and notes its size; `flush()` writes every header and frame
    in a few C-level calls, packs them into as few transport messages as possible and returns
    the bytes for the socket (`flush_into()` writes them into the caller's buffer instead).

    Equal-sized frames (a burst of one kind of envelope) are packed whole into each message,
    which needs one `join` per message and no stream-sized buffer; the receiver then finds no
    frame split across messages. Otherwise the frames form one stream cut into full messages.
    Either way the bytes follow the same format: any split into ≤ 65 519-byte plaintexts is
    valid, the receiver only concatenates them.
    """

    __slots__ = ("_cipher", "pending", "sizes")

    def __init__(self, cipher: TransportCipher) -> None:
        self._cipher = cipher
        self.pending: list[bytes] = []
        """Queued frames, headers not yet added; `SecureConnection` appends here directly."""
        self.sizes: set[int] = set()
        """The distinct sizes of the queued frames (kept up to date with `pending`)."""

    def add(self, frame: bytes) -> None:
        self.pending.append(frame)
        self.sizes.add(len(frame))

    def flush(self) -> bytes | bytearray:
        """The queued frames as transport messages: a new object the caller owns."""
        frames = self.pending
        if not frames:
            return b""
        if len(frames) == 1 and len(frame := frames[0]) <= MAX_PLAINTEXT - FRAME_HEADER_BYTES:
            # One frame (a request or its response): the bytes the general path makes, with
            # none of its batching set-up, which costs more than the encryption here.
            frames.clear()
            self.sizes.clear()
            ciphertext = self._cipher.encrypt(_U32.pack(len(frame)) + frame)
            return U16.pack(len(ciphertext)) + ciphertext
        plaintexts, size = self._messages()
        # Every message is encrypted straight into its place in one buffer of the exact size:
        # no ciphertext objects to join, and about half the memory at the peak. The peak is
        # what matters: allocating and freeing several times a burst's size per flush made
        # the C allocator hand memory back to the kernel and fault it in again every time,
        # which cost more than the encryption.
        out = bytearray(size)
        self._encrypt_into(plaintexts, out, 0)
        return out

    def flush_into(self, buffer: bytearray, pos: int) -> int:
        """Write the queued frames' messages into `buffer` from `pos` (growing it if it is too
        short, so it must not be exported then); return where they end."""
        if not self.pending:
            return pos
        plaintexts, size = self._messages()
        end = pos + size
        if len(buffer) < end:
            buffer += bytes(end - len(buffer))
        self._encrypt_into(plaintexts, buffer, pos)
        return end

    def _messages(self) -> tuple[Iterator[bytes | memoryview], int]:
        """The plaintexts of the messages for the queued frames, and their size on the wire."""
        frames = self.pending
        sizes = self.sizes
        if len(sizes) == 1 and (size := next(iter(sizes))) <= MAX_PLAINTEXT - FRAME_HEADER_BYTES:
            per_message = MAX_PLAINTEXT // (FRAME_HEADER_BYTES + size)
            stream_bytes = len(frames) * (FRAME_HEADER_BYTES + size)
            messages = -(-len(frames) // per_message)
            plaintexts: Iterator[bytes | memoryview] = _equal_sized_messages(
                frames, size, per_message
            )
        else:
            stream = memoryview(encode_frames(frames))
            stream_bytes = len(stream)
            messages = -(-stream_bytes // MAX_PLAINTEXT)
            plaintexts = (
                stream[start : start + MAX_PLAINTEXT]
                for start in range(0, stream_bytes, MAX_PLAINTEXT)
            )
        return plaintexts, stream_bytes + messages * (U16.size + TAG_BYTES)

    def _encrypt_into(
        self, plaintexts: Iterator[bytes | memoryview], out: bytearray, pos: int
    ) -> None:
        """Write each plaintext's length-prefixed ciphertext into `out` from `pos`, in order;
        then forget the queued frames (which the plaintexts are made from)."""
        encrypt_into = self._cipher.encrypt_into
        pack_into = U16.pack_into
        with memoryview(out) as view:
            for plaintext in plaintexts:
                length = len(plaintext) + TAG_BYTES
                pack_into(out, pos, length)
                pos += U16.size
                encrypt_into(plaintext, view[pos : pos + length])
                pos += length
        self.pending.clear()
        self.sizes.clear()


def _equal_sized_messages(frames: list[bytes], size: int, per_message: int) -> Iterator[bytes]:
    """Plaintexts holding whole frames that all have `size` bytes: one `join` per message.

    A generator, so that only one plaintext exists at a time.
    """
    header = _U32.pack(size)
    for start in range(0, len(frames), per_message):
        batch = frames[start : start + per_message]
        batch.insert(0, b"")  # so that `join` puts the header before every frame
        yield header.join(batch)


def encode_frames(frames: list[bytes]) -> bytes:
    """`b"".join(u32be(len(f)) + f for f in frames)`, without a Python step per frame."""
    return b"".join(chain.from_iterable(zip(map(_U32.pack, map(len, frames)), frames, strict=True)))


class FrameDecoder:
    """Splits decrypted plaintext back into frames, enforcing `max_frame_bytes`.

    Holds at most one partial header (< 4 bytes) and one partial frame (≤ `max_frame_bytes`):
    the length is checked the moment the header is complete, before any frame byte is kept.

    Whole frames are cut one by one, except that between bursts of frames the decoder looks for
    a run of frames with the same header (a burst of equal-sized envelopes, typically) and cuts
    the whole run with one `struct` call; see `_run_length`. A failed probe doubles the next
    burst (up to `_MAX_BURST`), a successful one resets it to `_PROBE_EVERY`.
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
        end = len(plaintext)
        pos = 0
        frames: list[bytes] = []
        if self._wanted >= 0 or self._header:
            pos = self._resume(plaintext, frames)
        elif end >= FRAME_HEADER_BYTES and _U32.unpack_from(plaintext)[0] == end - 4:
            # Exactly one whole frame (a request or its response): skip the run probing.
            if end - FRAME_HEADER_BYTES > self._max:
                raise _too_large(end - FRAME_HEADER_BYTES, self._max)
            return [plaintext[FRAME_HEADER_BYTES:]]
        unpack = _U32.unpack_from
        limit = self._max
        append = frames.append
        burst = _PROBE_EVERY
        # Whole frames inside this message need no copying into a buffer.
        while end - pos >= FRAME_HEADER_BYTES:
            # Probe: a run of equal headers is cut in one call.
            (length,) = unpack(plaintext, pos)
            if length > limit:
                raise _too_large(length, limit)
            stride = FRAME_HEADER_BYTES + length
            count = (end - pos) // stride
            if count >= _MIN_RUN:
                run = _run_length(plaintext, pos, stride, count)
                if run >= _MIN_RUN:
                    frames += _cut_run(plaintext, pos, length, run)
                    pos += run * stride
                    burst = _PROBE_EVERY
                    continue
            # Then frames one at a time until the next probe, which comes later each time one
            # fails, so mixed-size traffic pays for very few probes.
            burst = min(2 * burst, _MAX_BURST)
            for _ in range(burst):
                if end - pos < FRAME_HEADER_BYTES:
                    break
                (length,) = unpack(plaintext, pos)
                if length > limit:
                    raise _too_large(length, limit)
                start = pos + FRAME_HEADER_BYTES
                stop = start + length
                if stop > end:
                    self._parts = [memoryview(plaintext)[start:]]
                    self._wanted = stop - end
                    return frames
                append(plaintext[start:stop])
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


def _run_length(plaintext: bytes, pos: int, stride: int, count: int) -> int:
    """How many of the `count` records of `stride` bytes from `pos` repeat the first header.

    Byte j of every record's header is one strided slice; the number of its leading bytes equal
    to the first record's byte j is how far the run can go, and the run is the minimum over the
    four header bytes. Every record in the run therefore has the first record's length, so the
    run is exactly that many consecutive whole frames. A few C-level calls per message.
    """
    if plaintext[pos : pos + FRAME_HEADER_BYTES] != plaintext[pos + stride : pos + stride + 4]:
        return 1  # the common mixed-size case costs one comparison
    stop = pos + count * stride
    run = count
    for j in range(FRAME_HEADER_BYTES):
        column = plaintext[pos + j : stop : stride]
        run = min(run, count - len(column.lstrip(column[:1])))
    return run


def _cut_run(plaintext: bytes, pos: int, length: int, run: int) -> list[bytes]:
    """The `run` frames of `length` bytes from `pos` (headers already checked), via `struct`."""
    frames: list[bytes] = []
    record = FRAME_HEADER_BYTES + length
    for start in range(pos, pos + run * record, _RUN_CHUNK * record):
        count = min(_RUN_CHUNK, (pos + run * record - start) // record)
        frames += _run_struct(length, count).unpack_from(plaintext, start)
    return frames


@functools.lru_cache(maxsize=64)
def _run_struct(length: int, count: int) -> struct.Struct:
    """`count` times (skip a 4-byte header, take `length` bytes); ≤ 256, so each is small."""
    return struct.Struct(f"{FRAME_HEADER_BYTES}x{length}s" * count)


def _too_large(length: int, limit: int) -> FrameTooLarge:
    return FrameTooLarge(f"peer announced a {length}-byte frame; the limit is {limit} bytes")
