"""`OutboundQueue`: bounded FIFO of outbound items that drops the OLDEST on overflow.

Upstream: capacity 10 000; when full, pushing evicts the oldest queued item and counts the
drop, and the engine reports the count as `OutboundDropped(count)`. Dropping the oldest (not
the newest) keeps what is sent fresh when the transport falls behind.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final, Generic, TypeVar

from bbnode.engine.framework._check import (
    state_field,
    state_int,
    state_list,
    state_mapping,
    usage_int,
)
from bbnode.engine.framework.errors import FrameworkStateError

__all__ = ["DEFAULT_OUTBOUND_CAPACITY", "OutboundQueue"]

DEFAULT_OUTBOUND_CAPACITY: Final = 10_000
"""Items queued before the oldest is dropped (upstream constant)."""

T = TypeVar("T")


class OutboundQueue(Generic[T]):
    """Push at the back, drain from the front; overflow drops the front and counts it."""

    __slots__ = ("_capacity", "_dropped", "_items", "_total_dropped")

    def __init__(self, capacity: int = DEFAULT_OUTBOUND_CAPACITY) -> None:
        """An empty queue holding at most `capacity` (>= 1) items."""
        self._capacity = usage_int("capacity", capacity, minimum=1)
        self._items: deque[T] = deque()
        self._dropped = 0
        self._total_dropped = 0

    @property
    def capacity(self) -> int:
        """Maximum queued items."""
        return self._capacity

    def push(self, item: T) -> None:
        """Queue `item`; if full, the oldest item is dropped first and counted."""
        items = self._items
        if len(items) >= self._capacity:
            items.popleft()
            self._dropped += 1
            self._total_dropped += 1
        items.append(item)

    def drain(self) -> list[T]:
        """Remove and return every queued item, oldest first (the drop count is kept)."""
        out = list(self._items)
        self._items.clear()
        return out

    def take_all(self) -> tuple[list[T], int]:
        """`(drain(), take_dropped())`, for a consumer that reports both at once."""
        return self.drain(), self.take_dropped()

    @property
    def dropped_since_drain(self) -> int:
        """Drops not yet reported: what the next `take_dropped()` returns."""
        return self._dropped

    @property
    def total_dropped(self) -> int:
        """Drops over the queue's whole life (never reset; not part of the exported state)."""
        return self._total_dropped

    def take_dropped(self) -> int:
        """Return the drops since the last call and reset that count to 0."""
        dropped, self._dropped = self._dropped, 0
        return dropped

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def export_state(self) -> dict[str, Any]:
        """`{"items": [...oldest first], "dropped": unreported drops}`.

        Items are exported as they are; they must be msgpack-able for the snapshot to encode.
        """
        return {"items": list(self._items), "dropped": self._dropped}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Replace the contents with an exported state (at most `capacity` items)."""
        where = "outbound_queue"
        state_map = state_mapping(where, state)
        items = state_list(f"{where}.items", state_field(where, state_map, "items"))
        dropped = state_int(f"{where}.dropped", state_map.get("dropped", 0))
        if len(items) > self._capacity:
            raise FrameworkStateError(
                f"{where}.items: {len(items)} items exceed capacity {self._capacity}"
            )
        self._items = deque(items)
        self._dropped = dropped
