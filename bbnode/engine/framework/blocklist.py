"""The governor's blocklist: per-peer bans with an optional expiry and a source.

Beyond upstream (the seed keeps a bare `HashSet<PeerId>`): each ban records

- `until_ns`: the clock value from which it no longer applies (`None` = until unblocked);
- `source`: `"config"` (from the config file; replaced wholesale on reload) or `"runtime"`
  (an operator or component ban; survives reloads).

The two sources live in separate layers, so a config reload that lists a peer the operator has
also banned at runtime neither shortens nor loses the runtime ban; a peer is blocked while any
of its entries is in force.

Cost model (the engine consults this for every inbound envelope): `is_blocked` is one or two
dict lookups and compares the one entry's `until_ns`; it never scans the table. Expired entries
stay harmless until `expire(now_ns)` — a periodic sweep driven by a min-heap of expiries —
removes them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from bbnode.engine.framework._check import usage_int
from bbnode.engine.framework.errors import FrameworkUsageError
from bbnode.ids import PeerId

__all__ = ["BLOCK_SOURCES", "BlockEntry", "BlockSource", "BlockTable"]

BlockSource = Literal["config", "runtime"]
BLOCK_SOURCES: Final[tuple[BlockSource, ...]] = ("config", "runtime")

# Superseded heap items are skipped lazily; rebuild once they outnumber live timed entries by
# this much, so block/unblock churn cannot grow the heap without bound.
_HEAP_SLACK: Final = 64


@dataclass(frozen=True, slots=True)
class BlockEntry:
    """One ban."""

    peer: PeerId
    """The banned peer."""
    until_ns: int | None
    """Clock value (ns) from which the ban stops applying; None = until explicitly lifted."""
    source: BlockSource
    """"config" (replaced on config reload) or "runtime" (kept across reloads)."""

    def in_force(self, now_ns: int | None) -> bool:
        """True if the ban applies at `now_ns` (without a clock, a timed ban still applies)."""
        return self.until_ns is None or now_ns is None or now_ns < self.until_ns


def check_source(source: object) -> BlockSource:
    """Validate a block source string."""
    if source == "config":
        return "config"
    if source == "runtime":
        return "runtime"
    raise FrameworkUsageError(f"block source must be 'config' or 'runtime', got {source!r}")


class BlockTable:
    """Bans in two layers (config, runtime) plus a heap of expiries for the periodic sweep."""

    __slots__ = ("_config", "_heap", "_runtime", "_seq", "_timed")

    def __init__(self) -> None:
        """An empty table."""
        self._config: dict[PeerId, BlockEntry] = {}
        self._runtime: dict[PeerId, BlockEntry] = {}
        # (until_ns, seq, entry): seq keeps heap order total without comparing entries.
        self._heap: list[tuple[int, int, BlockEntry]] = []
        self._seq = 0
        self._timed = 0  # live entries with an until_ns (heap items beyond this are stale)

    def _layer(self, source: BlockSource) -> dict[PeerId, BlockEntry]:
        return self._config if source == "config" else self._runtime

    # hot path -------------------------------------------------------------------------------
    def is_blocked(self, peer: PeerId, now_ns: int | None) -> bool:
        """True while any of `peer`'s entries is in force at `now_ns`."""
        # An empty layer is skipped without hashing `peer` (a Python-level __hash__ call).
        if self._config:
            entry = self._config.get(peer)
            if entry is not None and (
                entry.until_ns is None or now_ns is None or now_ns < entry.until_ns
            ):
                return True
        if not self._runtime:
            return False
        entry = self._runtime.get(peer)
        return entry is not None and (
            entry.until_ns is None or now_ns is None or now_ns < entry.until_ns
        )

    # mutation -------------------------------------------------------------------------------
    def add(self, peer: PeerId, until_ns: int | None, source: object) -> BlockEntry:
        """Add or replace `peer`'s entry in `source`'s layer (the latest ban of a source wins)."""
        if not isinstance(peer, PeerId):
            raise FrameworkUsageError(f"block: peer must be a PeerId, got {type(peer).__name__}")
        checked_source = check_source(source)
        if until_ns is not None:
            usage_int("block: until_ns", until_ns)
        entry = BlockEntry(peer, until_ns, checked_source)
        layer = self._layer(checked_source)
        old = layer.get(peer)
        if old is not None and old.until_ns is not None:
            self._timed -= 1
        layer[peer] = entry
        if until_ns is not None:
            self._timed += 1
            self._seq += 1
            heapq.heappush(self._heap, (until_ns, self._seq, entry))
            self._maybe_compact()
        return entry

    def _drop(self, layer: dict[PeerId, BlockEntry], peer: PeerId) -> bool:
        old = layer.pop(peer, None)
        if old is None:
            return False
        if old.until_ns is not None:
            self._timed -= 1
        return True

    def remove(self, peer: PeerId, source: BlockSource | None = None) -> bool:
        """Remove `peer`'s entries (of one source, or both); True if anything was removed."""
        if source is not None:
            return self._drop(self._layer(check_source(source)), peer)
        removed_config = self._drop(self._config, peer)
        removed_runtime = self._drop(self._runtime, peer)
        return removed_config or removed_runtime

    def replace_source(self, source: BlockSource, peers: Iterable[PeerId]) -> None:
        """Drop every entry of `source` and add a permanent one for each of `peers`."""
        new_peers = list(peers)
        for peer in new_peers:
            if not isinstance(peer, PeerId):
                raise FrameworkUsageError(
                    f"replace blocks: every peer must be a PeerId, got {type(peer).__name__}"
                )
        layer = self._layer(check_source(source))
        for peer in list(layer):
            self._drop(layer, peer)
        for peer in new_peers:
            self.add(peer, None, source)

    def due(self, now_ns: int) -> bool:
        """True when `expire(now_ns)` may have work (an expiry, perhaps of a ban lifted or
        superseded since, at or before `now_ns`)."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= now_ns

    def expire(self, now_ns: int) -> list[PeerId]:
        """Remove entries whose `until_ns <= now_ns`; return the peers no longer blocked at all.

        Peers come back in expiry order (ties in the order the bans were made). A peer whose
        other layer still holds a ban in force is not returned (it is still blocked).
        """
        heap = self._heap
        freed: list[PeerId] = []
        while heap and heap[0][0] <= now_ns:
            _, _, entry = heapq.heappop(heap)
            layer = self._layer(entry.source)
            if layer.get(entry.peer) is not entry:
                continue  # superseded or removed since it was scheduled
            del layer[entry.peer]
            self._timed -= 1
            if not self.is_blocked(entry.peer, now_ns):
                freed.append(entry.peer)
        return freed

    def _maybe_compact(self) -> None:
        if len(self._heap) > 2 * self._timed + _HEAP_SLACK:
            live = [
                item
                for item in self._heap
                if self._layer(item[2].source).get(item[2].peer) is item[2]
            ]
            heapq.heapify(live)
            self._heap = live

    # reading --------------------------------------------------------------------------------
    def entry(self, peer: PeerId) -> BlockEntry | None:
        """The entry that governs `peer`: a permanent one first, else the longest-lasting."""
        config = self._config.get(peer)
        runtime = self._runtime.get(peer)
        if config is None or runtime is None:
            return config if runtime is None else runtime
        if config.until_ns is None:
            return config
        if runtime.until_ns is None or runtime.until_ns >= config.until_ns:
            return runtime
        return config

    def entries(self) -> list[BlockEntry]:
        """Every entry, sorted by (peer bytes, source) so exports are deterministic."""
        every = [*self._config.values(), *self._runtime.values()]
        every.sort(key=lambda e: (e.peer.to_bytes(), e.source))
        return every

    def peers(self) -> list[PeerId]:
        """Peers with at least one entry (expired-but-unswept included), sorted."""
        return sorted(self._config.keys() | self._runtime.keys())

    def next_expiry_ns(self) -> int | None:
        """Earliest `until_ns` among live entries (when the next `expire` sweep has work)."""
        heap = self._heap
        while heap and self._layer(heap[0][2].source).get(heap[0][2].peer) is not heap[0][2]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return len(self._config) + len(self._runtime)
