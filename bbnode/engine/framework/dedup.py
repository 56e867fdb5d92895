"""`InboundDedup`: drop envelopes already seen, over a sliding window of the last N keys.

Upstream: window 8192, FIFO eviction (a key's position is fixed when it is first recorded;
seeing it again does not refresh it). The engine calls `seen` once per inbound envelope, so it
is one set lookup plus, for a new key, one append and at most one eviction: O(1), no scans.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from bbnode.engine.framework._check import state_bytes, state_list, usage_int
from bbnode.engine.framework.errors import FrameworkStateError

__all__ = ["DEFAULT_DEDUP_WINDOW", "InboundDedup"]

DEFAULT_DEDUP_WINDOW: Final = 8192
"""Keys remembered (upstream `InboundDedup` window)."""


class InboundDedup:
    """A FIFO window of recently seen keys (bytes)."""

    __slots__ = ("_keys", "_order", "_window")

    def __init__(self, window: int = DEFAULT_DEDUP_WINDOW) -> None:
        """Remember at most `window` keys (>= 1)."""
        self._window = usage_int("window", window, minimum=1)
        self._keys: set[bytes] = set()
        self._order: deque[bytes] = deque()

    @property
    def window(self) -> int:
        """How many keys are remembered."""
        return self._window

    def seen(self, key: bytes) -> bool:
        """Record `key`; True if it was already in the window (a duplicate)."""
        keys = self._keys
        if key in keys:
            return True
        keys.add(key)
        order = self._order
        order.append(key)
        if len(order) > self._window:
            keys.discard(order.popleft())
        return False

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._order)

    def clear(self) -> None:
        """Forget every key."""
        self._keys.clear()
        self._order.clear()

    def export_state(self) -> list[bytes]:
        """The remembered keys, oldest first."""
        return list(self._order)

    def restore_state(self, keys: list[bytes]) -> None:
        """Replace the window with `keys` (oldest first); only the newest `window` are kept."""
        where = "dedup"
        fresh = [state_bytes(f"{where}[{i}]", k) for i, k in enumerate(state_list(where, keys))]
        if len(set(fresh)) != len(fresh):
            raise FrameworkStateError(f"{where}: duplicate keys")
        fresh = fresh[max(0, len(fresh) - self._window) :]
        self._order = deque(fresh)
        self._keys = set(fresh)
