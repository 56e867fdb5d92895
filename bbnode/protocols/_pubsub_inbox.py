"""Per-publisher ordering and exactly-once delivery for pubsub (pure; used by `pubsub`).

Flood paths race, so messages of one publisher can arrive out of order or more than once.
The `Inbox` delivers each (origin, epoch, seq) at most once and in `seq` order, holding a
message that arrives ahead of a gap for at most one reorder window. Its state goes into the
component snapshot so a restarted node never delivers a message twice. No clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from bbnode.ids import IdError, PeerId
from bbnode.protocols._pubsub_wire import (
    PubsubLocalError,
    PubsubMessage,
    PubsubRemoteError,
    decode_message,
    encode_message,
)

__all__ = [
    "DEFAULT_REORDER_WINDOW_NS",
    "MAX_BUFFERED_PER_STREAM",
    "MAX_STREAMS",
    "Inbox",
    "Verdict",
]

# How long an out-of-order message waits for the gap before it: well above the spread of
# flood-path latencies on one cluster, well below what a reader would notice.
DEFAULT_REORDER_WINDOW_NS: Final = 500_000_000
MAX_BUFFERED_PER_STREAM: Final = 256
# Publisher streams remembered; the least recently active is forgotten past this.
MAX_STREAMS: Final = 4096

Verdict = Literal["new", "duplicate"]


@dataclass(slots=True)
class _Stream:
    next_seq: int = 1
    last_active_ns: int = 0
    # seq -> (message, arrival_ns); only messages ahead of next_seq wait here.
    waiting: dict[int, tuple[PubsubMessage, int]] | None = None


class Inbox:
    """Per-publisher ordering and exactly-once delivery.

    `accept(message, now_ns)` returns `(verdict, deliver)`: `"duplicate"` for a message
    delivered, skipped or waiting already (drop it, do not forward), `"new"` otherwise
    (forward it); `deliver` lists the messages now deliverable, in `seq` order. A message
    ahead of a gap waits until `next_deadline_ns()`; `expire(now_ns)` then gives up on the
    gap and delivers what waited. A stream seen for the first time starts at seq 1, so its
    first message may wait one window if it is not seq 1 (a node joining mid-stream).
    """

    def __init__(
        self,
        reorder_window_ns: int = DEFAULT_REORDER_WINDOW_NS,
        max_buffered: int = MAX_BUFFERED_PER_STREAM,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        if reorder_window_ns < 0 or max_buffered < 1 or max_streams < 1:
            raise PubsubLocalError("Inbox: window must be >= 0, buffer and stream caps >= 1")
        self.reorder_window_ns = reorder_window_ns
        self.max_buffered = max_buffered
        self.max_streams = max_streams
        self._streams: dict[tuple[PeerId, int], _Stream] = {}

    def next_seq(self, origin: PeerId, epoch: int) -> int:
        """The next seq that will be delivered in order for this stream (1 when unknown)."""
        stream = self._streams.get((origin, epoch))
        return 1 if stream is None else stream.next_seq

    def accept(self, message: PubsubMessage, now_ns: int) -> tuple[Verdict, list[PubsubMessage]]:
        """Take one message (ours or a peer's); see the class docstring."""
        stream = self._stream(message.stream, now_ns)
        waiting = stream.waiting or {}
        if message.seq < stream.next_seq or message.seq in waiting:
            return "duplicate", []
        stream.last_active_ns = now_ns
        if message.seq > stream.next_seq:
            waiting[message.seq] = (message, now_ns)
            stream.waiting = waiting
            if len(waiting) <= self.max_buffered:
                return "new", []
            # Buffer full: give up on the gap now rather than grow without bound.
            return "new", self._skip_gap(stream)
        stream.next_seq += 1
        return "new", [message, *self._flush(stream)]

    def expire(self, now_ns: int) -> list[PubsubMessage]:
        """Deliver messages whose gap has waited a full window, in order per stream."""
        out: list[PubsubMessage] = []
        for stream in self._streams.values():
            while stream.waiting and self._oldest(stream) + self.reorder_window_ns <= now_ns:
                out.extend(self._skip_gap(stream))
        return out

    def next_deadline_ns(self) -> int | None:
        """When `expire()` next has something to do, or None."""
        deadlines = [
            self._oldest(s) + self.reorder_window_ns for s in self._streams.values() if s.waiting
        ]
        return min(deadlines, default=None)

    def _stream(self, key: tuple[PeerId, int], now_ns: int) -> _Stream:
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= self.max_streams:
                idle = min(self._streams, key=lambda k: self._streams[k].last_active_ns)
                del self._streams[idle]
            stream = self._streams[key] = _Stream(last_active_ns=now_ns)
        return stream

    @staticmethod
    def _oldest(stream: _Stream) -> int:
        assert stream.waiting
        return min(arrival for _, arrival in stream.waiting.values())

    def _skip_gap(self, stream: _Stream) -> list[PubsubMessage]:
        assert stream.waiting
        stream.next_seq = min(stream.waiting)
        return self._flush(stream)

    @staticmethod
    def _flush(stream: _Stream) -> list[PubsubMessage]:
        out: list[PubsubMessage] = []
        while stream.waiting and stream.next_seq in stream.waiting:
            out.append(stream.waiting.pop(stream.next_seq)[0])
            stream.next_seq += 1
        if not stream.waiting:
            stream.waiting = None
        return out

    def serialize(self) -> list[Any]:
        """msgpack-able state (delivery positions and waiting messages)."""
        return [
            [
                origin.to_bytes(),
                epoch,
                s.next_seq,
                s.last_active_ns,
                [[encode_message(m), at] for m, at in (s.waiting or {}).values()],
            ]
            for (origin, epoch), s in self._streams.items()
        ]

    def restore(self, state: list[Any]) -> None:
        """Replace the state with a `serialize()`d one; `PubsubLocalError` if it is damaged."""
        streams: dict[tuple[PeerId, int], _Stream] = {}
        try:
            for raw_origin, epoch, next_seq, last_active_ns, waiting in state:
                stream = _Stream(int(next_seq), int(last_active_ns))
                for raw_message, arrival_ns in waiting:
                    message = decode_message(raw_message)
                    stream.waiting = stream.waiting or {}
                    stream.waiting[message.seq] = (message, int(arrival_ns))
                streams[(PeerId.from_bytes(raw_origin), int(epoch))] = stream
        except (PubsubRemoteError, IdError, TypeError, ValueError) as exc:
            raise PubsubLocalError(f"pubsub: bad saved inbox state: {exc}") from exc
        self._streams = streams
