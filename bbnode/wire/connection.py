"""`SecureConnection`: a sans-IO, authenticated, encrypted frame pipe (SPEC §4).

Bytes in (`receive_data`), events out (`next_event`), bytes out (`data_to_send`); frames in
(`send_frame`). No sockets, no clocks, no logging: the daemon moves the bytes, applies timeouts
and logs the events and errors this returns. The state machine is the table in `_state`;
one `_set_state` enforces it. Inbound bytes are split into Noise messages by `_messages`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final, cast

from bbnode.ids import PeerId
from bbnode.wire._messages import MessageBuffer
from bbnode.wire._state import _S, _TRANSITIONS, ConnectionState
from bbnode.wire.errors import (
    LocalProtocolError,
    MalformedFrame,
    MalformedHandshake,
    RemoteProtocolError,
    UnexpectedEof,
)
from bbnode.wire.events import ConnectionClosed, Event, FrameReceived, HandshakeComplete
from bbnode.wire.handshake import NoiseXX
from bbnode.wire.keys import IdentityKey
from bbnode.wire.transport import (
    MAX_NOISE_MESSAGE,
    TAG_BYTES,
    U16,
    FrameDecoder,
    FrameEncoder,
    TransportCipher,
)

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "PROTOCOL_ID", "ConnectionState", "SecureConnection"]

PROTOCOL_ID: Final = "/bbnode/1"
"""The application protocol announced in the handshake payload (SPEC §4)."""
DEFAULT_MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
"""SPEC §3.6 caps an envelope at 16 MiB; a frame carries one envelope."""
# The frame header is a u32, so no limit above this is expressible on the wire.
_MAX_FRAME_LIMIT: Final = 2**32 - 1
_MAX_PROTOCOL_BYTES: Final = 256
# Building FrameReceived through the slot descriptor skips the frozen-dataclass __init__,
# which costs as much as decoding the frame. The slot's own `__set__` is not guarded by the
# frozen `__setattr__`, and that `__init__` does nothing but set `frame` (no other field, no
# `__post_init__`), so the object equals `FrameReceived(frame)`; if the event ever gains a
# field or validation, build it normally.
_new_event: Final = object.__new__
_set_frame: Final[Any] = FrameReceived.__dict__["frame"].__set__
_BYTES_ONLY: Final = frozenset({bytes})
_Message = bytes | memoryview


class SecureConnection(MessageBuffer):
    """One end of a libp2p-Noise-XX-secured bbnode connection.

    Contract (h11 style):

    * `receive_data(data)` only buffers; `b""` means the peer closed its side (EOF).
    * `next_event()` does the work and returns, in order: `HandshakeComplete(remote_peer)` once,
      then `FrameReceived(frame)` per frame, then `ConnectionClosed()` after a clean EOF;
      `None` means more bytes are needed. It raises a `RemoteProtocolError` subclass (with a
      `.reason` code) when the peer misbehaves, and keeps raising it afterwards.
    * `next_frames()` is the bulk form for established connections: every frame that can be
      decoded now, as `bytes`, in the same order `next_event()` would give them. It returns
      `[]` when the next event is not a frame (or there is none yet); call `next_event()` then.
      The two may be mixed freely.
    * `send_frame(frame)` queues a frame (only once established), `send_frames(frames)` many;
      `data_to_send()` returns every pending byte, coalesced, in a new `bytes` or `bytearray`
      the caller owns (`data_to_send_into(buffer)` writes them into a buffer the caller
      reuses instead) — call it after sending and after
      `next_event`/`next_frames` (which queue handshake replies). The initiator's first
      handshake message is pending from construction.

    Memory is bounded: when `next_event()` returns `None` the connection holds at most one
    incomplete transport message (≤ 65 537 bytes) and one incomplete frame (≤ max_frame_bytes),
    and a frame header announcing more than `max_frame_bytes` is rejected before buffering.
    """

    __slots__ = (
        "_closed_reported",
        "_decoder",
        "_encoder",
        "_error",
        "_frames",
        "_handshake",
        "_max_frame",
        "_outbound",
        "_ready",
        "_receive_cipher",
        "_remote_peer",
        "_send_pending",
        "_send_sizes",
        "_state",
        "initiator",
    )

    def __init__(
        self,
        key: IdentityKey,
        *,
        initiator: bool,
        expected_peer: PeerId | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        protocol: str = PROTOCOL_ID,
    ) -> None:
        """Start a handshake as `initiator` (the dialer) or responder (the listener).

        `expected_peer` (usually the dialer's) makes any other authenticated peer fail with
        `PeerIdMismatch`. `max_frame_bytes` bounds frames both ways. `protocol` is announced
        and required of the peer.
        """
        if not isinstance(key, IdentityKey):
            raise LocalProtocolError(f"key must be an IdentityKey, got {type(key).__name__}")
        if expected_peer is not None and not isinstance(expected_peer, PeerId):
            raise LocalProtocolError(
                f"expected_peer must be a PeerId or None, got {type(expected_peer).__name__}"
            )
        if (
            isinstance(max_frame_bytes, bool)
            or not isinstance(max_frame_bytes, int)
            or not 1 <= max_frame_bytes <= _MAX_FRAME_LIMIT
        ):
            raise LocalProtocolError(
                f"max_frame_bytes must be an int in 1..{_MAX_FRAME_LIMIT}, got {max_frame_bytes!r}"
            )
        if (
            not isinstance(protocol, str)
            or not protocol
            or len(protocol.encode("utf-8")) > _MAX_PROTOCOL_BYTES
        ):
            raise LocalProtocolError(
                f"protocol must be a non-empty string of at most {_MAX_PROTOCOL_BYTES} bytes, "
                f"got {protocol!r}"
            )
        self.initiator = initiator
        self._max_frame = max_frame_bytes
        self._handshake: NoiseXX | None = NoiseXX(
            key, initiator=initiator, protocol=protocol, expected_peer=expected_peer
        )
        super().__init__()  # the inbound message buffer
        self._outbound = bytearray()
        # Non-frame events (HandshakeComplete) and decoded frames not yet handed out. Frames
        # are only decoded once `_ready` is empty, so a queued frame never jumps an event.
        self._ready: deque[Event] = deque()
        self._frames: deque[bytes] = deque()
        self._remote_peer: PeerId | None = None
        self._error: RemoteProtocolError | None = None
        self._closed_reported = False
        self._encoder: FrameEncoder | None = None
        self._send_pending: list[bytes] | None = None
        self._send_sizes: set[int] = set()
        self._decoder = FrameDecoder(max_frame_bytes)
        self._receive_cipher: TransportCipher | None = None
        if initiator:
            self._state = _S.AWAITING_RESPONSE
            self._queue_handshake(self._handshake.start())
        else:
            self._state = _S.AWAITING_HELLO

    # public surface -----------------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def is_established(self) -> bool:
        """True once the handshake has completed (and until the connection fails)."""
        return self._state in (_S.ESTABLISHED, _S.CLOSED)

    @property
    def remote_peer(self) -> PeerId | None:
        """The authenticated peer, once the handshake has completed."""
        return self._remote_peer

    @property
    def max_frame_bytes(self) -> int:
        return self._max_frame

    def next_event(self) -> Event | None:
        """The next event, or `None` when more bytes are needed; see the class docstring."""
        frames = self._frames
        if frames:  # hot path: frames already decoded from the last transport message
            if self._borrowed:  # a chunk received since: the caller may modify it after this
                self._stop_borrowing()
            event = _new_event(FrameReceived)
            _set_frame(event, frames.popleft())
            return event
        if self._error is not None:
            raise self._error
        try:
            result = self._next_event()
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise
        if self._borrowed:  # returning before the end of the caller's chunk
            self._stop_borrowing()
        return result

    def next_frames(self) -> list[bytes]:
        """Every frame decodable now, in order, as `bytes`; `[]` means "ask `next_event()`".

        The bulk form of `next_event()` for the established phase, without an event object per
        frame. It returns `[]` while the handshake runs, while `HandshakeComplete` waits to be
        taken, when no whole frame is buffered and after EOF; `next_event()` then says what is
        next (an event or `None`). A misbehaving peer raises the same errors, except that frames
        decoded from earlier transport messages are returned first and the error is raised by
        the next call.
        """
        if self._error is not None:
            raise self._error
        frames = self._frames
        out = list(frames)
        frames.clear()
        if self._ready or self._state is not _S.ESTABLISHED:
            if self._borrowed:  # the caller may modify its chunk once this returns
                self._stop_borrowing()
            return out
        feed = self._decoder.feed
        try:
            while (message := self._take_message()) is not None:
                out += feed(self._decrypt(message))
        except RemoteProtocolError as exc:
            self._fail(exc)
            if out:
                return out
            raise
        return out

    def send_frame(self, frame: bytes | bytearray | memoryview) -> None:
        """Queue one frame for `data_to_send()`; only once the handshake is complete.

        A `bytes` frame is queued without copying; a bytearray or memoryview is copied first,
        so the caller may reuse its buffer.
        """
        data = frame if type(frame) is bytes else _as_bytes(frame)
        pending = self._send_pending  # set exactly while ESTABLISHED
        if pending is None:
            raise LocalProtocolError(f"cannot send a frame in state {self._state.value}")
        size = len(data)
        if size > self._max_frame:
            raise LocalProtocolError(
                f"frame of {size} bytes exceeds max_frame_bytes ({self._max_frame})"
            )
        # Inlined FrameEncoder.add: this runs once per envelope sent.
        pending.append(data)
        self._send_sizes.add(size)

    def send_frames(self, frames: Iterable[bytes | bytearray | memoryview]) -> None:
        """Queue many frames, in order: `send_frame` for each, checked in bulk.

        All or nothing: if any frame is refused (`LocalProtocolError`), none is queued.
        """
        pending = self._send_pending
        if pending is None:
            raise LocalProtocolError(f"cannot send a frame in state {self._state.value}")
        given = frames if type(frames) is list else list(frames)
        batch: list[bytes]
        if _BYTES_ONLY.issuperset(map(type, given)):
            batch = cast(list[bytes], given)  # checked in C, not per frame in Python
        else:
            batch = [f if type(f) is bytes else _as_bytes(f) for f in given]
        sizes = set(map(len, batch))
        if sizes and (largest := max(sizes)) > self._max_frame:
            raise LocalProtocolError(
                f"frame of {largest} bytes exceeds max_frame_bytes ({self._max_frame})"
            )
        pending += batch
        self._send_sizes |= sizes

    def data_to_send(self) -> bytes | bytearray:
        """Every byte pending for the peer (handshake messages, then frames), coalesced.

        A new object each call, owned by the caller (a burst of frames comes back as the
        `bytearray` its messages were encrypted into, so it is never copied).
        """
        outbound = self._outbound
        if outbound:  # handshake messages (and rarely anything else)
            out = bytes(outbound)
            outbound.clear()
            if self._encoder is not None:
                out += self._encoder.flush()
            return out
        return b"" if self._encoder is None else self._encoder.flush()

    def data_to_send_into(self, buffer: bytearray) -> int:
        """`data_to_send()` written into `buffer` from its start; returns the byte count.

        For a caller that sends from one buffer it reuses: nothing is allocated per call, so
        bursts cost no fresh memory. `buffer` grows when it is too short (it must then not be
        exported: no memoryview of it alive); bytes past the count are left as they were.
        """
        pos = 0
        outbound = self._outbound
        if outbound:  # handshake messages (and rarely anything else)
            pos = len(outbound)
            buffer[:pos] = outbound
            outbound.clear()
        return pos if self._encoder is None else self._encoder.flush_into(buffer, pos)

    # the engine ---------------------------------------------------------------------------------
    def _next_event(self) -> Event | None:
        ready = self._ready
        frames = self._frames
        while True:
            if ready:
                return ready.popleft()
            if frames:
                event = _new_event(FrameReceived)
                _set_frame(event, frames.popleft())
                return event
            if self._state is _S.CLOSED:
                return self._closed_once()
            message = self._take_message()
            if message is None:
                return self._at_end_of_input()
            self._HANDLERS[self._state](self, message)

    def _on_hello(self, message: bytes | memoryview) -> None:
        assert self._handshake is not None
        self._queue_handshake(self._handshake.read_hello(message))
        self._set_state(_S.AWAITING_FINISH)

    def _on_response(self, message: bytes | memoryview) -> None:
        assert self._handshake is not None
        remote, reply = self._handshake.read_response(message)
        self._queue_handshake(reply)
        self._establish(remote)

    def _on_finish(self, message: bytes | memoryview) -> None:
        assert self._handshake is not None
        self._establish(self._handshake.read_finish(message))

    def _on_transport(self, message: bytes | memoryview) -> None:
        self._frames.extend(self._decoder.feed(self._decrypt(message)))

    def _decrypt(self, message: bytes | memoryview) -> bytes:
        assert self._receive_cipher is not None
        if len(message) < TAG_BYTES:
            raise MalformedFrame(
                f"transport message of {len(message)} bytes is shorter than "
                f"its {TAG_BYTES}-byte tag"
            )
        return self._receive_cipher.decrypt(message)

    _HANDLERS: Final[dict[ConnectionState, Callable[[SecureConnection, _Message], None]]] = {
        _S.AWAITING_HELLO: _on_hello,
        _S.AWAITING_RESPONSE: _on_response,
        _S.AWAITING_FINISH: _on_finish,
        _S.ESTABLISHED: _on_transport,
    }

    # helpers ------------------------------------------------------------------------------------
    def _at_end_of_input(self) -> Event | None:
        """No whole message is buffered: wait for more, or judge the EOF."""
        if not self._eof:
            return None
        leftover = self._buffered()
        if self._state is not _S.ESTABLISHED:
            raise UnexpectedEof(
                f"peer closed the connection during the handshake ({self._state.value})"
            )
        if leftover:
            raise UnexpectedEof(f"peer closed the connection inside a message ({leftover} bytes)")
        if not self._decoder.idle:
            raise UnexpectedEof("peer closed the connection in the middle of a frame")
        self._set_state(_S.CLOSED)
        self._send_pending = None  # queued frames still go out with the next data_to_send()
        return self._closed_once()

    def _closed_once(self) -> Event | None:
        if self._closed_reported:
            return None
        self._closed_reported = True
        return ConnectionClosed()

    def _establish(self, remote: PeerId) -> None:
        assert self._handshake is not None
        keys = self._handshake.transport_keys()
        self._handshake = None  # the Noise handshake state is no longer needed
        self._encoder = FrameEncoder(TransportCipher(keys.send_key))
        self._send_pending = self._encoder.pending
        self._send_sizes = self._encoder.sizes
        self._receive_cipher = TransportCipher(keys.receive_key)
        self._remote_peer = remote
        self._set_state(_S.ESTABLISHED)
        self._ready.append(HandshakeComplete(remote_peer=remote))

    def _queue_handshake(self, message: bytes) -> None:
        if len(message) > MAX_NOISE_MESSAGE:
            raise MalformedHandshake(f"handshake message of {len(message)} bytes is too large")
        self._outbound += U16.pack(len(message))
        self._outbound += message

    def _fail(self, error: RemoteProtocolError) -> None:
        self._error = error
        self._ready.clear()
        self._frames.clear()
        self._discard()
        self._handshake = None
        self._encoder = None
        self._send_pending = None
        self._set_state(_S.FAILED)

    def _set_state(self, new: ConnectionState) -> None:
        if new not in _TRANSITIONS[self._state]:
            raise AssertionError(f"bug: illegal transition {self._state.value} -> {new.value}")
        self._state = new


def _as_bytes(frame: object) -> bytes:
    """A frame given as another bytes-like type, copied to `bytes`; anything else is misuse."""
    if not isinstance(frame, bytearray | memoryview):
        raise LocalProtocolError(f"frame must be bytes, got {type(frame).__name__}")
    return bytes(frame)
