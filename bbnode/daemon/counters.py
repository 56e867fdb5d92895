"""A small named-counter registry for daemon events (connections, steps, snapshots...).

The metrics endpoint (:mod:`.metrics`) exports them; ``ctl status`` shows them too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

__all__ = ["Counters"]


class Counters:
    """Monotonic named counters; names are dotted lowercase like ``conn.refused.cidr``.

    A hot path may count in a structure of its own and register a *folder* that adds what
    it counted (:meth:`add_folder`): every read folds first, so readers always see exact
    values, and counting costs the hot path a dict update instead of a call per event.
    """

    def __init__(self) -> None:
        self._values: Counter[str] = Counter()
        self._folders: list[Callable[[Counters], None]] = []

    def add_folder(self, fold: Callable[[Counters], None]) -> None:
        """Call ``fold(self)`` before every read; it must ``incr`` what it has counted since
        its last call (and forget it)."""
        self._folders.append(fold)

    def _fold(self) -> None:
        for fold in self._folders:
            fold(self)

    def incr(self, name: str, delta: int = 1) -> None:
        """Add ``delta`` (≥ 0) to ``name``."""
        if delta < 0:
            raise ValueError(f"counter {name!r}: negative delta {delta}")
        self._values[name] += delta

    def get(self, name: str) -> int:
        """Current value (0 when never incremented)."""
        self._fold()
        return self._values[name]

    def as_dict(self) -> dict[str, int]:
        """A sorted copy of every counter."""
        self._fold()
        return dict(sorted(self._values.items()))
