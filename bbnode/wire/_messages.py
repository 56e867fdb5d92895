"""Inbound buffering of the 2-byte length-prefixed Noise messages a connection receives.

Every handshake and transport message on the wire is a u16 big-endian length, then that many
bytes (libp2p Noise). `MessageBuffer` stores what `receive_data` is given and hands out whole
messages, copying as little as it can: a caller's chunk that holds whole messages is read in
place through memoryviews; only a message split across chunks is assembled in a bytearray of
our own.

A caller's `bytearray` or `memoryview` is only borrowed until the next `next_event()` or
`next_frames()` call returns, since the caller may then modify it: what is still unread of it
then is copied (`_stop_borrowing`, `_keep_only_the_rest`). A `bytes` chunk is immutable and may
be kept.
"""

from __future__ import annotations

from typing import Final

from bbnode.wire.errors import LocalProtocolError
from bbnode.wire.transport import MAX_NOISE_MESSAGE, U16

__all__ = ["LENGTH_PREFIX", "MessageBuffer"]

#: Bytes of the length prefix in front of every Noise message.
LENGTH_PREFIX: Final = U16.size
# Compact the inbound buffer once this much of it has been consumed (amortised O(n)).
_COMPACT_AFTER: Final = MAX_NOISE_MESSAGE


class MessageBuffer:
    """The inbound half of `SecureConnection`: bytes in, whole messages out (no decryption)."""

    __slots__ = ("_borrowed", "_eof", "_inbound", "_owned", "_pos")

    def __init__(self) -> None:
        # Unconsumed input from `_pos` on. While the caller's chunks hold whole messages it is
        # their own object (no copy; messages are read through memoryviews); only a message
        # split across chunks is assembled in a bytearray of our own (`_owned`).
        self._inbound: bytes | bytearray | memoryview = b""
        self._owned = False
        # `_inbound` is the caller's mutable chunk (not `bytes`, not ours): it must be let go
        # of before `next_event()`/`next_frames()` returns. The connection only reads this
        # flag (one test on its per-event hot path) and calls `_stop_borrowing()`.
        self._borrowed = False
        self._pos = 0
        self._eof = False

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes from the peer; `b""` signals EOF. Does no other work.

        `data` is read in place, not copied: a `bytearray` (or what a `memoryview` shows)
        must not be modified until the next `next_event()` or `next_frames()` call has
        returned.
        """
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data after EOF")
            return
        if not data:
            self._eof = True
            return
        inbound = self._inbound
        if self._pos == len(inbound):  # everything buffered was consumed
            if isinstance(data, memoryview) and (data.ndim != 1 or data.itemsize != 1):
                data = data.cast("B")  # count bytes, not items
            self._inbound = data
            self._owned = False
            self._borrowed = not isinstance(data, bytes)
            self._pos = 0
        elif not self._owned:
            self._inbound = bytearray(memoryview(inbound)[self._pos :])
            self._inbound += data
            self._owned = True
            self._borrowed = False
            self._pos = 0
        else:
            assert isinstance(inbound, bytearray)  # `_owned`: our assembly buffer
            inbound += data

    def _buffered(self) -> int:
        """Bytes received and not yet handed out as messages (part of one, at end of input)."""
        return len(self._inbound) - self._pos

    def _discard(self) -> None:
        """Drop everything buffered (the connection failed); EOF, if seen, stays seen."""
        self._inbound = b""
        self._owned = False
        self._borrowed = False
        self._pos = 0

    def _take_message(self) -> bytes | memoryview | None:
        """The next whole length-prefixed message from the inbound buffer, or None."""
        buf, pos = self._inbound, self._pos
        available = len(buf) - pos
        if available < LENGTH_PREFIX:
            self._keep_only_the_rest()
            return None
        (length,) = U16.unpack_from(buf, pos)
        if available < LENGTH_PREFIX + length:
            self._keep_only_the_rest()
            return None
        start = pos + LENGTH_PREFIX
        end = start + length
        if not self._owned:  # the caller's chunk: a view saves a copy
            self._pos = end
            return memoryview(buf)[start:end]
        assert isinstance(buf, bytearray)
        with memoryview(buf) as view:
            message = bytes(view[start:end])
        if end == len(buf):
            buf.clear()
            end = 0
        elif end >= _COMPACT_AFTER and end * 2 >= len(buf):
            # Drop consumed bytes only once they are most of the buffer: amortised O(n).
            del buf[:end]
            end = 0
        self._pos = end
        return message

    def _keep_only_the_rest(self) -> None:
        """Waiting for more input: hold only the incomplete message, not the caller's chunk.

        A caller's bytearray or memoryview is copied even when nothing of it was consumed, so
        that the caller may modify it once this call returns; only a `bytes` chunk holding
        nothing but the incomplete message is kept as it is.
        """
        if self._owned:
            return
        pos = self._pos
        rest = len(self._inbound) - pos
        if not rest:  # all consumed (the usual case): nothing to hold, no empty copy to make
            self._inbound = b""
        elif pos or self._borrowed:
            # More input will be appended to the rest: assemble it in a buffer of our own.
            self._inbound = bytearray(memoryview(self._inbound)[pos:])
            self._owned = True
        else:
            return
        self._borrowed = False
        self._pos = 0

    def _stop_borrowing(self) -> None:
        """Copy what is unread of the caller's chunk (whole messages, usually) to `bytes` of
        our own, which are read in place as the chunk was, before a call returns with some of
        the chunk unread."""
        self._inbound = bytes(memoryview(self._inbound)[self._pos :])
        self._borrowed = False
        self._pos = 0
