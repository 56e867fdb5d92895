"""The `SecureConnection` state machine: its states and the table of allowed moves.

`SecureConnection._set_state` is the only place that changes state, and it checks every
move against `_TRANSITIONS`; an illegal move is a bug in this package, never the peer's.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["_S", "_TRANSITIONS", "ConnectionState"]


class ConnectionState(enum.Enum):
    """Where a connection is; see `_TRANSITIONS` for the allowed moves."""

    AWAITING_HELLO = "awaiting_hello"
    """Responder: waiting for handshake message 1."""
    AWAITING_RESPONSE = "awaiting_response"
    """Initiator: message 1 queued, waiting for message 2."""
    AWAITING_FINISH = "awaiting_finish"
    """Responder: message 2 queued, waiting for message 3."""
    ESTABLISHED = "established"
    """Authenticated; frames flow both ways."""
    CLOSED = "closed"
    """The peer ended the stream cleanly."""
    FAILED = "failed"
    """The peer misbehaved; the error is re-raised by every later `next_event()`."""


_S = ConnectionState
_TRANSITIONS: Final[dict[ConnectionState, frozenset[ConnectionState]]] = {
    _S.AWAITING_HELLO: frozenset({_S.AWAITING_FINISH, _S.FAILED}),
    _S.AWAITING_RESPONSE: frozenset({_S.ESTABLISHED, _S.FAILED}),
    _S.AWAITING_FINISH: frozenset({_S.ESTABLISHED, _S.FAILED}),
    _S.ESTABLISHED: frozenset({_S.CLOSED, _S.FAILED}),
    _S.CLOSED: frozenset(),
    _S.FAILED: frozenset(),
}
