"""What connection tasks tell the engine driver, through one bounded trio channel.

These are daemon-internal messages, not engine ingress events: the driver translates each
into the matching ``Node`` entry point (``deliver_inbound``, ``peer_connected``, ...), so the
Node is only ever touched from the driver task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bbnode.ids import Address, PeerId

__all__ = [
    "Connected",
    "DialFailedIn",
    "Disconnected",
    "DriverInput",
    "FramesIn",
    "UnsentIn",
]


# Not frozen: one is built per socket read, and a frozen dataclass's __init__ costs four
# times as much. Treat it as immutable all the same.
@dataclass(slots=True)
class FramesIn:
    """Every decrypted frame (msgpack envelopes) of one socket read from ``peer``, in order.

    Immutable by convention (nothing assigns to a field after construction)."""

    peer: PeerId
    frames: list[bytes]


@dataclass(frozen=True, slots=True)
class Connected:
    """A peer is connected (first live connection after the handshake and policy checks)."""

    peer: PeerId
    address: Address
    inbound: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The last live connection to ``peer`` closed; ``reason`` is a short code."""

    peer: PeerId
    reason: str


@dataclass(frozen=True, slots=True)
class DialFailedIn:
    """Every address tried for ``peer`` failed; ``address`` is the last one tried."""

    peer: PeerId
    address: Address
    reason: str


@dataclass(frozen=True, slots=True)
class UnsentIn:
    """Frames for ``peer`` that will not reach a socket (their connection closed, or the
    dial for them failed); the driver reports each to the engine as ``SendFailed``.

    ``frames`` are :class:`~._peer_conn.OutboundFrame` (typed loosely: no import cycle).
    """

    peer: PeerId
    frames: list[Any]
    reason: str
    #: True when the connection was only replaced (simultaneous-dial tie-break): the
    #: envelopes go back to the engine with ``requeue_outbound``, not as failures.
    requeue: bool = False


DriverInput = FramesIn | UnsentIn | Connected | Disconnected | DialFailedIn
