"""Fan-out of engine ``AppEvent`` steps to control-socket subscribers.

Each subscriber gets its own bounded trio channel. The driver publishes with
``send_nowait`` and never waits: a subscriber that does not keep up loses events (counted
in ``dropped``) rather than stalling the only task that runs the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

__all__ = ["SUBSCRIBER_BUFFER", "Subscription", "SubscriptionHub"]

#: Events buffered per subscriber before new ones are dropped.
SUBSCRIBER_BUFFER = 1024


@dataclass(slots=True)
class Subscription:
    """One subscriber: the topic (``*`` = every topic) and its receive side."""

    topic: str
    receive: trio.MemoryReceiveChannel[dict[str, Any]]
    _send: trio.MemorySendChannel[dict[str, Any]]
    dropped: int = 0


class SubscriptionHub:
    """Topic → subscribers; :meth:`publish` is non-blocking."""

    def __init__(self, buffer: int = SUBSCRIBER_BUFFER) -> None:
        self._buffer = buffer
        self._subs: list[Subscription] = []
        self.dropped = 0

    def open(self, topic: str) -> Subscription:
        """Register a subscriber for ``topic``; pair with :meth:`close`."""
        send, receive = trio.open_memory_channel[dict[str, Any]](self._buffer)
        sub = Subscription(topic, receive, send)
        self._subs.append(sub)
        return sub

    def close(self, sub: Subscription) -> None:
        """Unregister ``sub`` and close its channel (idempotent)."""
        if sub in self._subs:
            self._subs.remove(sub)
        sub._send.close()

    def close_all(self) -> None:
        """Close every subscription (at shutdown, so streaming clients see the end)."""
        for sub in list(self._subs):
            self.close(sub)

    @property
    def count(self) -> int:
        """Live subscribers."""
        return len(self._subs)

    def publish(self, topic: str, module: str, data: bytes) -> int:
        """Offer an event to every matching subscriber; returns how many received it."""
        delivered = 0
        event = {"topic": topic, "module": module, "data": data}
        for sub in self._subs:
            if sub.topic not in (topic, "*"):
                continue
            try:
                sub._send.send_nowait(event)
                delivered += 1
            except trio.WouldBlock:
                sub.dropped += 1
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        return delivered
