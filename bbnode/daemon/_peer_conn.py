"""One authenticated connection: the Noise handshake, then a reader and a writer task.

The reader feeds the sans-IO ``SecureConnection`` and forwards each decrypted frame to the
driver's bounded ingress channel (a full channel stops us reading, which pushes back on the
peer through TCP instead of growing memory). The writer drains the bounded outbound queue:
it takes *every* frame already queued, encrypts each with ``send_frame`` and writes the
result with a single ``send_all`` (frame coalescing: one syscall for a burst).
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import trio

from bbnode.daemon.events import DriverInput, FrameIn
from bbnode.ids import Address, PeerId
from bbnode.wire import ConnectionClosed as WireClosed
from bbnode.wire import (
    FrameReceived,
    HandshakeComplete,
    LocalProtocolError,
    RemoteProtocolError,
    SecureConnection,
)

__all__ = ["COALESCE_MAX_BYTES", "OutboundFrame", "PeerConnection", "handshake"]

#: Stop coalescing once a burst reaches this many plaintext bytes, so one huge burst does
#: not hold a large ciphertext buffer; the rest goes in the next write.
COALESCE_MAX_BYTES = 1 << 20
_RECEIVE_BYTES = 65536


class ConnectionClosed(Exception):
    """Raised inside a connection's tasks to end it with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OutboundFrame:
    """An encoded envelope waiting for a socket; ``wire_req_id`` when it is a request."""

    frame: bytes
    wire_req_id: int | None = None
    #: The engine's envelope, kept so an unsent frame can be handed back at shutdown.
    envelope: Any = None


async def handshake(stream: trio.abc.Stream, secure: SecureConnection, timeout_s: float) -> PeerId:
    """Run the Noise handshake to completion; returns the authenticated remote PeerId.

    Raises ``ConnectionClosed`` with ``handshake_timeout``, ``eof_in_handshake`` or the
    remote error's reason.
    """
    with trio.move_on_after(timeout_s):
        try:
            out = secure.data_to_send()
            if out:
                await stream.send_all(out)
            while True:
                event = secure.next_event()
                out = secure.data_to_send()
                if out:
                    await stream.send_all(out)
                if isinstance(event, HandshakeComplete):
                    return event.remote_peer
                if event is not None:
                    raise ConnectionClosed("protocol_violation")
                data = await stream.receive_some(_RECEIVE_BYTES)
                secure.receive_data(bytes(data))
                if not data:
                    raise ConnectionClosed("eof_in_handshake")
        except RemoteProtocolError as exc:
            raise ConnectionClosed(f"handshake_failed: {_reason(exc)}") from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed("eof_in_handshake") from exc
    raise ConnectionClosed("handshake_timeout")


def _reason(exc: RemoteProtocolError) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else type(exc).__name__


@dataclass(eq=False)
class PeerConnection:
    """A live, authenticated connection to ``peer`` and its bounded outbound queue."""

    peer: PeerId
    address: Address
    host: str
    inbound: bool
    stream: trio.abc.Stream
    secure: SecureConnection
    queue_frames: int
    idle_timeout_s: float
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    close_reason: str | None = None
    frames_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    writes: int = 0

    def __post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[OutboundFrame](self.queue_frames)

    def initiator(self, local: PeerId) -> PeerId:
        """The PeerId of the side that dialed this connection."""
        return self.peer if self.inbound else local

    def enqueue(self, item: OutboundFrame) -> bool:
        """Queue a frame without waiting; False when the queue is full or closed."""
        try:
            self._send.send_nowait(item)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def take_queued(self) -> list[OutboundFrame]:
        """Remove and return every frame not yet written (for hand-back or migration)."""
        items: list[OutboundFrame] = []
        while True:
            try:
                items.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return items

    @property
    def queued(self) -> int:
        """Frames waiting in the outbound queue."""
        return self._receive.statistics().current_buffer_used

    def close(self, reason: str) -> None:
        """Ask both tasks to stop; the first reason given wins."""
        if self.close_reason is None:
            self.close_reason = reason
        self.cancel_scope.cancel()

    async def run(self, ingress: trio.MemorySendChannel[DriverInput]) -> str:
        """Run reader and writer until either ends; returns the close reason."""
        with self.cancel_scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._guarded, self._reader(ingress))
                nursery.start_soon(self._guarded, self._writer())
        return self.close_reason or "closed"

    async def _guarded(self, task: Coroutine[Any, Any, None]) -> None:
        # Either task ending (normally or with a reason) ends the connection; catching here
        # keeps ConnectionClosed out of the nursery's exception group.
        try:
            await task
        except ConnectionClosed as exc:
            self.close(exc.reason)
        else:
            self.close("closed")

    async def _reader(self, ingress: trio.MemorySendChannel[DriverInput]) -> None:
        try:
            while True:
                event = self.secure.next_event()
                if isinstance(event, FrameReceived):
                    self.frames_in += 1
                    await ingress.send(FrameIn(self.peer, event.frame))
                    continue
                if isinstance(event, WireClosed):
                    raise ConnectionClosed("eof")
                # Idle = nothing received for idle_timeout_s; heartbeats keep live peers busy.
                with trio.move_on_after(self.idle_timeout_s) as idle:
                    data = await self.stream.receive_some(_RECEIVE_BYTES)
                if idle.cancelled_caught:
                    raise ConnectionClosed("idle_timeout")
                self.secure.receive_data(bytes(data))
                if not data:
                    raise ConnectionClosed("eof")
        except RemoteProtocolError as exc:
            raise ConnectionClosed(f"protocol_error: {_reason(exc)}") from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed("reset") from exc

    async def _writer(self) -> None:
        try:
            async for first in self._receive:
                batch = [first]
                size = len(first.frame)
                while size < COALESCE_MAX_BYTES:
                    try:
                        item = self._receive.receive_nowait()
                    except trio.WouldBlock:
                        break
                    batch.append(item)
                    size += len(item.frame)
                for item in batch:
                    self.secure.send_frame(item.frame)
                data = self.secure.data_to_send()
                await self.stream.send_all(data)
                self.frames_out += len(batch)
                self.bytes_out += len(data)
                self.writes += 1
        except LocalProtocolError as exc:
            raise ConnectionClosed(f"local_error: {exc}") from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed("reset") from exc
