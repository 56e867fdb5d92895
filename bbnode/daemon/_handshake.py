"""The Noise handshake over a trio stream, and the exception that ends a connection."""

from __future__ import annotations

import trio

from bbnode.ids import PeerId
from bbnode.wire import HandshakeComplete, RemoteProtocolError, SecureConnection

__all__ = ["ConnectionClosed", "handshake", "reason_of"]

#: Bytes asked of the socket per read.
RECEIVE_BYTES = 65536


class ConnectionClosed(Exception):
    """Raised inside a connection's tasks to end it with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
                data = await stream.receive_some(RECEIVE_BYTES)
                secure.receive_data(bytes(data))
                if not data:
                    raise ConnectionClosed("eof_in_handshake")
        except RemoteProtocolError as exc:
            raise ConnectionClosed(f"handshake_failed: {reason_of(exc)}") from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed("eof_in_handshake") from exc
    raise ConnectionClosed("handshake_timeout")


def reason_of(exc: RemoteProtocolError) -> str:
    """The short reason a remote error carries (for logs and counters)."""
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else type(exc).__name__
