"""Events a `SecureConnection` hands to its caller from `next_event()`.

All are frozen, slotted dataclasses on one base, h11 style; `None` from `next_event()` means
"feed me more bytes".
"""

from __future__ import annotations

from dataclasses import dataclass

from bbnode.ids import PeerId

__all__ = ["ConnectionClosed", "Event", "FrameReceived", "HandshakeComplete"]


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
