"""Redial backoff for peers that hang up on us right after the handshake.

In Noise XX the dialer finishes first: it sends the last handshake message and is done,
while the listener only then learns who is calling. A listener that refuses the dialer
(blocklist, allowlist, its own limits) can only hang up, and to the dialer that looks like
a connection that opened and closed cleanly, a success followed by a disconnect. Without
this table the engine's next send would redial at once, forever: a reconnect storm against
a node that has said no.

So an outbound connection the remote closes before sending a single frame counts as a
refusal here: further dials to that peer fail fast, without a socket, for an exponentially
growing delay (``base_s`` doubling up to ``max_s``). The streak ends when a connection to
the peer delivers a frame, or the peer dials us.
"""

from __future__ import annotations

from collections import OrderedDict

from bbnode.ids import PeerId

__all__ = ["RefusalBackoff"]


class RefusalBackoff:
    """Per-peer refusal streaks and retry times (trio time, seconds); bounded in size."""

    def __init__(self, base_s: float = 1.0, max_s: float = 300.0, max_peers: int = 4096) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.max_peers = max_peers
        #: peer -> (streak, retry_at), least recently refused first.
        self._entries: OrderedDict[PeerId, tuple[int, float]] = OrderedDict()

    def refused(self, peer: PeerId, now: float) -> float:
        """Record a refusal by ``peer`` at ``now``; returns the delay before the next dial."""
        streak = self._entries.pop(peer, (0, 0.0))[0] + 1
        delay: float = min(self.base_s * 2.0 ** min(streak - 1, 32), self.max_s)
        self._entries[peer] = (streak, now + delay)
        while len(self._entries) > self.max_peers:
            self._entries.popitem(last=False)
        return delay

    def retry_in(self, peer: PeerId, now: float) -> float | None:
        """Seconds until ``peer`` may be dialed again, or None when it may be now."""
        entry = self._entries.get(peer)
        if entry is None or entry[1] <= now:
            return None
        return entry[1] - now

    def clear(self, peer: PeerId) -> None:
        """``peer`` talked to us: forget its streak."""
        self._entries.pop(peer, None)

    def __len__(self) -> int:
        return len(self._entries)
