"""Outbound frames and the send bookkeeping shared by one manager's connections."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from bbnode.daemon._peer_conn import PeerConnection

__all__ = ["OutboundFrame", "SendScheduler"]


# Not frozen: one is built per envelope sent, and a frozen dataclass's __init__ costs
# four times as much. Treat it as immutable all the same.
@dataclass(slots=True)
class OutboundFrame:
    """An encoded envelope waiting for a socket; ``wire_req_id`` when it is a request.

    Immutable by convention (nothing assigns to a field after construction)."""

    frame: bytes
    wire_req_id: int | None = None
    #: The engine's envelope, kept so an unsent frame can be handed back to the engine.
    envelope: Any = None


class SendScheduler:
    """Outbound bookkeeping shared by the connections of one manager.

    - ``dirty``: connections given frames since the last :meth:`flush`. The driver calls
      :meth:`flush` after a turn's first poll and at its end; it encrypts each dirty queue
      and writes it straight to its socket when the writer task is idle (no task switch
      per burst); what the socket does not take at once goes to the writer task.
    - ``burst_buffer``: where bursts are encrypted for those direct writes.
    - ``over``: connections whose queue reached ``high_water_frames`` (mapped to the time
      of their last write); one leaves once its queue is back to half that.
      :meth:`blocking` tells the driver whether to wait for sockets before taking input.
    """

    def __init__(self, high_water_frames: int = 1024, stall_s: float = 1.0) -> None:
        self.high_water_frames = high_water_frames
        self.low_water_frames = high_water_frames // 2
        #: A member of ``over`` that wrote nothing for this long no longer holds the
        #: driver back (a peer that stopped reading must not stall the node).
        self.stall_s = stall_s
        self.over: dict[PeerConnection, float] = {}
        self.dirty: list[PeerConnection] = []
        #: Set (then replaced) after every write of a member of ``over``.
        self.progress = trio.Event()
        #: The ciphertext of a coalesced burst that a connection's ``flush`` writes straight
        #: to its socket: one buffer, reused by every connection of this manager (``flush``
        #: runs to completion without awaiting). A fresh buffer per burst made the allocator
        #: hand memory back to the kernel and fault it in again on every burst.
        self.burst_buffer = bytearray()

    def flush(self, now: float) -> None:
        """Write every dirty connection's queue (see the class docstring); ``now`` (trio
        time, read during the caller's turn) stamps the writes."""
        dirty = self.dirty
        if dirty:
            self.dirty = []
            for conn in dirty:
                conn.flush(now)

    def blocking(self, now: float) -> float | None:
        """The earliest stall deadline among ``over`` members still writing, or None."""
        deadline = math.inf
        for last_progress_s in self.over.values():
            until = last_progress_s + self.stall_s
            if now < until < deadline:
                deadline = until
        return None if deadline == math.inf else deadline

    async def wait_for_progress(self, deadline: float) -> None:
        """Wait until a member of ``over`` wrote, or ``deadline`` (trio time)."""
        with trio.move_on_at(deadline):
            await self.progress.wait()

    def note_queued(self, conn: PeerConnection) -> None:
        """``conn``'s queue reached the high-water mark."""
        if conn not in self.over:
            self.over[conn] = trio.current_time()

    def note_written(self, conn: PeerConnection, now: float) -> None:
        """``conn`` completed a write at ``now``."""
        if conn in self.over:
            if len(conn.outbox) <= self.low_water_frames:
                del self.over[conn]
            else:
                self.over[conn] = now
            self.progress.set()
            self.progress = trio.Event()

    def forget(self, conn: PeerConnection) -> None:
        """``conn`` closed or was emptied."""
        self.over.pop(conn, None)
