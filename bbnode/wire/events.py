"""Events a `SecureConnection` hands to its caller from `next_event()`.

All are frozen, slotted dataclasses on one base, h11 style; `None` from `next_event()` means
"feed me more bytes".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from bbnode.ids import PeerId

__all__ = ["ConnectionClosed", "Event", "FrameReceived", "HandshakeComplete", "frames_received"]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every connection event."""


@dataclass(frozen=True, slots=True)
class HandshakeComplete(Event):
    """The peer proved its identity; frames may now flow both ways. Emitted once."""

    remote_peer: PeerId
    """The authenticated PeerId of the other end (matches `expected_peer` when one was given)."""


@dataclass(frozen=True, slots=True)
class FrameReceived(Event):
    """One whole frame (one msgpack envelope), reassembled if it spanned messages."""

    frame: bytes
    """The frame's bytes, exactly as the peer passed them to `send_frame`."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The peer closed its side cleanly (EOF on a frame boundary after the handshake).

    Emitted once, after every frame that preceded the EOF; `next_event()` returns `None` after.
    """


_new: Final = object.__new__
# The slot's own descriptor: setting through it skips the frozen-dataclass __setattr__ guard.
_set_frame: Final[Any] = FrameReceived.__dict__["frame"].__set__


def frames_received(frames: Iterable[bytes]) -> list[FrameReceived]:
    """`[FrameReceived(f) for f in frames]`, about twice as fast.

    The hot receive path builds one event per frame (hundreds per transport message); the
    frozen-dataclass `__init__` costs as much as the rest of the decode, so this fills the slot
    directly. The objects are identical to ones built the normal way.
    """
    events: list[FrameReceived] = []
    append = events.append
    for frame in frames:
        event = _new(FrameReceived)
        _set_frame(event, frame)
        append(event)
    return events
