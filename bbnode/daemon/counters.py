"""A small named-counter registry for daemon events (connections, steps, snapshots...).

The metrics endpoint (:mod:`.metrics`) exports them; ``ctl status`` shows them too.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["Counters"]


class Counters:
    """Monotonic named counters; names are dotted lowercase like ``conn.refused.cidr``."""

    def __init__(self) -> None:
        self._values: Counter[str] = Counter()

    def incr(self, name: str, delta: int = 1) -> None:
        """Add ``delta`` (≥ 0) to ``name``."""
        if delta < 0:
            raise ValueError(f"counter {name!r}: negative delta {delta}")
        self._values[name] += delta

    def get(self, name: str) -> int:
        """Current value (0 when never incremented)."""
        return self._values[name]

    def as_dict(self) -> dict[str, int]:
        """A sorted copy of every counter."""
        return dict(sorted(self._values.items()))
