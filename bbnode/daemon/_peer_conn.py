"""One authenticated connection (after :mod:`._handshake`): a reader and a writer task.

The reader feeds the sans-IO ``SecureConnection`` and forwards *every* frame decrypted from
one socket read as a single :class:`~.events.FramesIn` item on the driver's bounded ingress
channel (a full channel stops us reading, which pushes back on the peer through TCP instead
of growing memory; one item per read, not per frame, keeps the driver's wakeups per read),
then waits for the end of the driver's turn before it reads on (:mod:`._reader_gate`).

Sending: the driver appends to the outbound queue, a plain deque, and after its turn's first
poll flushes every queue it touched (:class:`~._send_queue.SendScheduler`; again at the end of
the turn if later polls sent more): *every* frame queued (up to
``COALESCE_MAX_BYTES``) is encrypted with one ``send_frames`` and written with one
non-blocking write straight from the driver, so a request costs no task switch on the way
out. Only what the socket does not take at once goes to the writer task (``send_all``),
and while the writer is busy it takes the queue itself.

Backpressure: a queue above ``high_water_frames`` puts the connection in ``sends.over``;
the driver stops taking input while such a connection is still writing (see
:meth:`~._send_queue.SendScheduler.blocking`), so a local burst waits for the socket instead of
overflowing the queue. The hard bound ``queue_frames`` only refuses frames for a peer that
stopped reading.

Idle = nothing received *and* nothing written for ``idle_timeout_s``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import trio

from bbnode.daemon._handshake import RECEIVE_BYTES, ConnectionClosed, reason_of
from bbnode.daemon._reader_gate import ReaderGate
from bbnode.daemon._send_queue import OutboundFrame, SendScheduler
from bbnode.daemon.events import DriverInput, FramesIn
from bbnode.ids import Address, PeerId
from bbnode.wire import ConnectionClosed as WireClosed
from bbnode.wire import (
    ConnectionState,
    FrameReceived,
    LocalProtocolError,
    RemoteProtocolError,
    SecureConnection,
)

__all__ = ["COALESCE_MAX_BYTES", "PeerConnection"]

#: Stop coalescing once a burst reaches this many plaintext bytes, so one huge burst does
#: not hold a large ciphertext buffer; the rest goes in the next write.
COALESCE_MAX_BYTES = 1 << 20
_ESTABLISHED = ConnectionState.ESTABLISHED
#: Bursts bigger than this (a frame beyond ``COALESCE_MAX_BYTES``) get a buffer of their own,
#: so the shared ``SendScheduler.burst_buffer`` stays small.
_BURST_BUFFER_MAX = COALESCE_MAX_BYTES + (COALESCE_MAX_BYTES >> 2)


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
    sends: SendScheduler = field(default_factory=SendScheduler)
    #: Where the reader waits for the driver's turn after forwarding (None: it never waits).
    readers: ReaderGate | None = None
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    #: Set once the connection is closed and unregistered.
    finished: trio.Event = field(default_factory=trio.Event)
    close_reason: str | None = None
    frames_in: int = 0
    frames_out: int = 0
    #: Encrypted bytes received / sent after the handshake (the metrics' wire totals).
    bytes_in: int = 0
    bytes_out: int = 0
    writes: int = 0

    def __post_init__(self) -> None:
        #: Frames not yet handed to the socket, oldest first.
        self.outbox: deque[OutboundFrame] = deque()
        #: Frames taken by the writer whose ``send_all`` has not completed.
        self.in_flight: list[OutboundFrame] = []
        #: Ciphertext a direct write (:meth:`flush`) left for the writer task.
        self._unsent: bytes | bytearray = b""
        #: Set while the writer task waits for work; ``flush`` may write only then.
        self._writer_idle: trio.Event | None = None
        self._dirty = False
        #: Last read or write (trio time); see ``_reader`` for the idle deadline.
        self._active_at = 0.0
        socket = getattr(self.stream, "socket", None)
        #: The socket's fd for direct non-blocking writes (-1: always use the writer).
        self._fd: int = socket.fileno() if socket is not None else -1
        self._last_read_full = False

    def initiator(self, local: PeerId) -> PeerId:
        """The PeerId of the side that dialed this connection."""
        return self.peer if self.inbound else local

    @property
    def closing(self) -> bool:
        """True once :meth:`close` was called or a task ended."""
        return self.close_reason is not None

    def enqueue(self, item: OutboundFrame) -> bool:
        """Queue a frame without waiting; False when the queue is full or closing.

        The frame goes out at the next ``sends.flush(now)`` (the driver's, after a poll) or
        :meth:`kick`, whichever is first.
        """
        outbox = self.outbox
        if len(outbox) >= self.queue_frames or self.close_reason is not None:
            return False
        outbox.append(item)
        if not self._dirty:
            self._dirty = True
            self.sends.dirty.append(self)
        if len(outbox) >= self.sends.high_water_frames:
            self.sends.note_queued(self)
        return True

    def kick(self) -> None:
        """Wake the writer task for frames queued outside the driver's turn."""
        idle = self._writer_idle
        if idle is not None and self.outbox:
            self._writer_idle = None
            idle.set()

    def flush(self, now: float) -> None:
        """Write the queue now, without waiting: encrypt it and hand the ciphertext to the
        socket's non-blocking ``write``; whatever the socket does not take (or any error)
        is left to the writer task. Only while the writer is idle, so writes never
        interleave; a busy writer takes the queue itself when its write completes.
        ``now`` (trio time) stamps the write."""
        self._dirty = False
        idle = self._writer_idle
        if idle is None or not self.outbox or self.close_reason is not None:
            return
        if self._fd < 0:
            self.kick()
            return
        batch, size = self._queue_batch()
        if len(batch) > 1 and size <= _BURST_BUFFER_MAX:
            buffer = self.sends.burst_buffer
            end = self.secure.data_to_send_into(buffer)
            with memoryview(buffer) as burst:
                data: bytes | bytearray | memoryview = burst[:end]
                written = self._write_now(data)
                if written < end:
                    self._unsent = bytes(burst[written:end])
                del data  # the view must go before the buffer may grow again
        else:
            data = self.secure.data_to_send()
            end = len(data)
            written = self._write_now(data)
            if written < end:
                self._unsent = data[written:]
        if written == end:
            self._wrote(batch, end, now)
            if self.outbox:  # beyond COALESCE_MAX_BYTES: the writer continues
                self.kick()
            return
        self.bytes_out += written  # the writer counts the rest when it has sent it
        self.in_flight = batch
        self._writer_idle = None
        idle.set()

    def _write_now(self, data: bytes | bytearray | memoryview) -> int:
        """Bytes of ``data`` the socket took without blocking (0 on EAGAIN or an error,
        which the writer's ``send_all`` then reports)."""
        try:
            return os.write(self._fd, data)
        except OSError:
            return 0

    def _queue_batch(self) -> tuple[list[OutboundFrame], int]:
        """Move the next batch (up to ``COALESCE_MAX_BYTES``) from the outbox into the
        secure connection; the frames taken and their plaintext bytes."""
        outbox = self.outbox
        if len(outbox) == 1:  # a request or a response: no lists to build
            item = outbox.popleft()
            self.secure.send_frame(item.frame)
            return [item], len(item.frame)
        batch: list[OutboundFrame] = []
        frames: list[bytes] = []
        size = 0
        while outbox and size < COALESCE_MAX_BYTES:
            item = outbox.popleft()
            batch.append(item)
            frames.append(item.frame)
            size += len(item.frame)
        self.secure.send_frames(frames)
        return batch, size

    def _wrote(self, batch: list[OutboundFrame], written: int, now: float) -> None:
        self.in_flight = []
        self.frames_out += len(batch)
        self.bytes_out += written
        self.writes += 1
        self._active_at = now
        self.sends.note_written(self, now)

    def take_queued(self) -> list[OutboundFrame]:
        """Remove and return every frame not yet written (for hand-back or migration)."""
        items = list(self.outbox)
        self.outbox.clear()
        self.sends.forget(self)
        return items

    @property
    def queued(self) -> int:
        """Frames waiting in the outbound queue."""
        return len(self.outbox)

    def close(self, reason: str) -> None:
        """Ask both tasks to stop; the first reason given wins."""
        if self.close_reason is None:
            self.close_reason = reason
        self.cancel_scope.cancel()

    async def run(self, ingress: trio.MemorySendChannel[DriverInput]) -> str:
        """Run reader and writer until either ends; returns the close reason."""
        try:
            with self.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guarded, self._reader(ingress))
                    nursery.start_soon(self._guarded, self._writer())
        finally:
            self.sends.forget(self)
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
        # The idle deadline is armed lazily: reads and writes only stamp ``_active_at``
        # (a deadline change per read costs more than the rest of the read), and when the
        # deadline fires with activity since, it is re-armed and reading resumes (a read
        # cancelled by trio consumed nothing).
        self._active_at = trio.current_time()
        while True:
            held = None  # stays None when the idle scope fires
            with trio.CancelScope(deadline=self._active_at + self.idle_timeout_s):
                held = await self._read_loop(ingress)
            if held is not None:
                # The driver is behind: waiting is backpressure, not idling. Outside the
                # idle scope, which may have fired already (a deadline that passes during a
                # shielded checkpoint cancels the scope for good, whatever its deadline
                # becomes), and would take the item with it.
                try:
                    await ingress.send(held)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    raise ConnectionClosed("reset") from exc
                self._active_at = trio.current_time()
            elif trio.current_time() >= self._active_at + self.idle_timeout_s:
                raise ConnectionClosed("idle_timeout")

    async def _read_loop(self, ingress: trio.MemorySendChannel[DriverInput]) -> FramesIn | None:
        """Read and forward until the idle scope fires, or return the item the driver's
        channel has no room for (the caller waits for room)."""
        secure = self.secure
        peer = self.peer
        receive_some = self._receive_direct if self._fd >= 0 else self.stream.receive_some
        # What ``trio.current_time()`` reads, without its two wrapper calls (once per read).
        clock = trio.lowlevel.current_clock().current_time
        wait_for_turn = None if self.readers is None else self.readers.wait_for_turn
        try:
            while True:
                frames = secure.next_frames()
                if not frames:
                    event = secure.next_event()
                    if isinstance(event, FrameReceived):
                        frames = [event.frame]
                    elif isinstance(event, WireClosed):
                        raise ConnectionClosed("eof")
                if frames:
                    self.frames_in += len(frames)
                    item = FramesIn(peer, frames)
                    try:
                        ingress.send_nowait(item)
                    except trio.WouldBlock:
                        return item
                    if secure.state is not _ESTABLISHED:
                        continue  # an error after those frames: the next call raises it
                    if wait_for_turn is not None:
                        await wait_for_turn()  # see _reader_gate
                data = await receive_some(RECEIVE_BYTES)
                if not data:
                    raise ConnectionClosed("eof")
                self.bytes_in += len(data)
                self._active_at = clock()
                secure.receive_data(data)  # read in place, not kept
        except RemoteProtocolError as exc:
            raise ConnectionClosed(f"protocol_error: {reason_of(exc)}") from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise ConnectionClosed("reset") from exc

    async def _receive_direct(self, max_bytes: int) -> bytes:
        """``receive_some`` on the raw fd: wait for readability *first* unless the last
        read filled the buffer. Trio's ``receive_some`` tries the read first, which in a
        request/response exchange fails every time: one wasted syscall per message."""
        fd = self._fd
        if self._last_read_full:
            # As trio's own socket reads: a cancellation may stop us only *before* the
            # read; after it the checkpoint is shielded, or the bytes read would be lost
            # (the idle deadline fires on busy connections too, see ``_reader``).
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                data = os.read(fd, max_bytes)
            except BlockingIOError:
                pass
            else:
                self._last_read_full = len(data) == max_bytes
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                data = os.read(fd, max_bytes)
            except BlockingIOError:  # a spurious wakeup
                continue
            self._last_read_full = len(data) == max_bytes
            return data

    async def _writer(self) -> None:
        outbox = self.outbox
        try:
            while True:
                if self._unsent:
                    # The rest of a direct write (flush); its frames are in_flight.
                    data, self._unsent = self._unsent, b""
                    batch = self.in_flight
                elif outbox:
                    batch, _ = self._queue_batch()
                    data = self.secure.data_to_send()
                    self.in_flight = batch
                else:
                    self._writer_idle = idle = trio.Event()
                    await idle.wait()
                    continue
                await self.stream.send_all(data)
                self._wrote(batch, len(data), trio.current_time())
        except LocalProtocolError as exc:
            raise ConnectionClosed(f"local_error: {exc}") from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed("reset") from exc
