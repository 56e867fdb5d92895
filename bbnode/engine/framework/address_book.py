"""`AddressBook`: peer -> ordered addresses plus a reference count, capped at 16 384 peers.

Upstream semantics: overlay protocols, the transport and the application take references on
the peers they care about (`insert(..., ref=True)` / `release`); the count survives snapshots.
At the cap, inserting a *new* peer evicts the least-recently-inserted unreferenced peer
(`ref_count == 0`); if every peer is referenced the insert is refused.

Address order: first-learned addresses stay first and new ones are appended (no duplicates),
so a peer's dial order is stable and an inbound envelope cannot reorder it. A peer keeps at
most `max_addresses_per_peer` addresses; past that the oldest are dropped, which bounds what a
chatty or hostile sender can make us store.

Inbound envelopes merge their sender addresses with `ref=False`, which neither creates a
reference nor inflates one, but does count as an insertion for eviction order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from bbnode.engine.framework._check import (
    state_bytes,
    state_int,
    state_list,
    state_peer,
    state_peer_fast,
    state_row,
    usage_int,
)
from bbnode.engine.framework.errors import FrameworkStateError, FrameworkUsageError
from bbnode.ids import Address, IdError, PeerId

__all__ = [
    "DEFAULT_ADDRESS_BOOK_MAX_PEERS",
    "DEFAULT_MAX_ADDRESSES_PER_PEER",
    "AddressBook",
    "AddressBookEntry",
]

DEFAULT_ADDRESS_BOOK_MAX_PEERS: Final = 16_384
"""Peer cap (upstream `AddressBook` capacity)."""
DEFAULT_MAX_ADDRESSES_PER_PEER: Final = 32
"""bbnode's bound on addresses kept per peer (upstream has none)."""
_HEAP_SLACK: Final = 64


@dataclass(frozen=True, slots=True)
class AddressBookEntry:
    """A read-only view of one peer's entry."""

    peer: PeerId
    """The peer."""
    addresses: tuple[Address, ...]
    """Known addresses, first-learned first."""
    ref_count: int
    """References held by protocols / transport / application."""


class _Entry:
    """Mutable per-peer record (private; exposed as `AddressBookEntry`).

    `raw` holds the addresses' binary forms (what dedup, eviction and snapshots work on);
    `parsed` the matching `Address` objects, built on first lookup and kept until `raw`
    changes, so a restored book of 100 000 peers does not parse 100 000 addresses up front.
    """

    __slots__ = ("inserted", "parsed", "raw", "ref_count")

    def __init__(self, inserted: int) -> None:
        self.raw: list[bytes] = []
        self.parsed: tuple[Address, ...] | None = ()
        self.ref_count = 0
        self.inserted = inserted  # insertion sequence number: eviction order

    def addresses(self) -> tuple[Address, ...]:
        parsed = self.parsed
        if parsed is None:
            # Only bytes that `_check_address` (or an Address) vouched for get here.
            parsed = self.parsed = tuple([Address.from_bytes(b) for b in self.raw])
        return parsed


# Multicodec codes of the segments in the common `/ip4|ip6/<a>/tcp/<port>` address.
_IP4: Final = 0x04
_IP6: Final = 0x29
_TCP: Final = 0x06


def _check_address(data: bytes) -> None:
    """Raise IdError unless `Address.from_bytes(data)` would succeed (restore validation).

    `/ip4/<4 bytes>/tcp/<2 bytes>` and `/ip6/<16 bytes>/tcp/<2 bytes>` are always valid (any
    4 or 16 bytes is an IP address, any 2 bytes a port; single-byte codes are minimal varints),
    so those are recognised by shape; anything else is fully parsed now.
    """
    n = len(data)
    if n == 8 and data[0] == _IP4 and data[5] == _TCP:
        return
    if n == 20 and data[0] == _IP6 and data[17] == _TCP:
        return
    Address.from_bytes(data)


class AddressBook:
    """Ref-counted peer -> addresses map with a peer cap and LRI eviction of unreferenced peers.

    Eviction uses a heap of `(inserted, peer)` for unreferenced peers, validated lazily, so an
    insert at the cap costs O(log n) however many referenced peers there are.
    """

    __slots__ = ("_entries", "_evictable", "_max_addresses", "_max_peers", "_seq")

    def __init__(
        self,
        max_peers: int = DEFAULT_ADDRESS_BOOK_MAX_PEERS,
        max_addresses_per_peer: int = DEFAULT_MAX_ADDRESSES_PER_PEER,
    ) -> None:
        """An empty book holding at most `max_peers` peers."""
        self._max_peers = usage_int("max_peers", max_peers, minimum=1)
        self._max_addresses = usage_int("max_addresses_per_peer", max_addresses_per_peer, 1)
        self._entries: dict[PeerId, _Entry] = {}
        self._evictable: list[tuple[int, PeerId]] = []
        self._seq = 0

    @property
    def max_peers(self) -> int:
        """The peer cap."""
        return self._max_peers

    # mutation -------------------------------------------------------------------------------
    def insert(self, peer: PeerId, addresses: Iterable[Address], ref: bool = True) -> bool:
        """Merge `addresses` into `peer`'s entry; with `ref`, take one reference.

        Returns False (and changes nothing) only when `peer` is new, the book is full, and
        every peer in it is referenced.
        """
        if not isinstance(peer, PeerId):
            raise FrameworkUsageError(f"insert: peer must be a PeerId, got {type(peer).__name__}")
        new_addresses = list(addresses)
        for address in new_addresses:
            if not isinstance(address, Address):
                raise FrameworkUsageError(
                    f"insert: addresses must be Address, got {type(address).__name__}"
                )
        entries = self._entries
        entry = entries.pop(peer, None)
        if entry is None:
            if len(entries) >= self._max_peers and not self._evict_one():
                return False
            entry = _Entry(0)
        entries[peer] = entry  # (re)inserted last: the dict stays in eviction order
        self._seq += 1
        entry.inserted = self._seq
        known = entry.raw
        parsed = entry.parsed
        changed = False
        for address in new_addresses:
            data = address.to_bytes()
            if data not in known:
                known.append(data)
                changed = True
                if parsed is not None:
                    parsed = (*parsed, address)
        if changed:
            if len(known) > self._max_addresses:
                drop = len(known) - self._max_addresses
                del known[:drop]
                if parsed is not None:
                    parsed = parsed[drop:]
            entry.parsed = parsed
        if ref:
            entry.ref_count += 1
        else:
            if entry.ref_count == 0:
                self._push_evictable(entry.inserted, peer)
        return True

    def release(self, peer: PeerId) -> None:
        """Drop one reference on `peer` (floor 0; unknown peers are ignored)."""
        entry = self._entries.get(peer)
        if entry is None or entry.ref_count == 0:
            return
        entry.ref_count -= 1
        if entry.ref_count == 0:
            self._push_evictable(entry.inserted, peer)

    def remove(self, peer: PeerId) -> bool:
        """Forget `peer` whatever its ref count; True if it was known."""
        return self._entries.pop(peer, None) is not None

    def _push_evictable(self, inserted: int, peer: PeerId) -> None:
        heapq.heappush(self._evictable, (inserted, peer))
        if len(self._evictable) > 2 * len(self._entries) + _HEAP_SLACK:
            self._evictable = [item for item in self._evictable if self._is_current(*item)]
            heapq.heapify(self._evictable)

    def _is_current(self, inserted: int, peer: PeerId) -> bool:
        entry = self._entries.get(peer)
        return entry is not None and entry.ref_count == 0 and entry.inserted == inserted

    def _evict_one(self) -> bool:
        heap = self._evictable
        while heap:
            inserted, peer = heapq.heappop(heap)
            if self._is_current(inserted, peer):
                del self._entries[peer]
                return True
        return False

    # reading --------------------------------------------------------------------------------
    def lookup(self, peer: PeerId) -> tuple[Address, ...]:
        """`peer`'s addresses, first-learned first; empty if unknown."""
        entry = self._entries.get(peer)
        return () if entry is None else entry.addresses()

    def lookup_bytes(self, peer: PeerId) -> tuple[bytes, ...]:
        """`lookup` in binary form (what an envelope carries), without parsing anything."""
        entry = self._entries.get(peer)
        return () if entry is None else tuple(entry.raw)

    def entry(self, peer: PeerId) -> AddressBookEntry | None:
        """A frozen view of `peer`'s entry, or None."""
        entry = self._entries.get(peer)
        if entry is None:
            return None
        return AddressBookEntry(peer, entry.addresses(), entry.ref_count)

    def peers(self) -> list[PeerId]:
        """Known peers, least-recently-inserted first."""
        return list(self._entries)  # kept in insertion order by `insert`

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, peer: object) -> bool:
        return peer in self._entries

    # snapshot -------------------------------------------------------------------------------
    def export_state(self) -> list[list[Any]]:
        """`[[peer_bytes, [address_bytes, ...], ref_count], ...]`, least-recently-inserted first.

        The row order is the eviction order, so a restored book evicts the same peers next.
        """
        return [[peer.to_bytes(), list(e.raw), e.ref_count] for peer, e in self._entries.items()]

    def restore_state(self, rows: list[Any]) -> None:
        """Replace everything with `rows` (as exported); nothing changes if a row is bad.

        Rows beyond `max_peers` are refused rather than silently dropped.
        """
        where = "address_book"
        rows = state_list(where, rows)
        if len(rows) > self._max_peers:
            raise FrameworkStateError(
                f"{where}: {len(rows)} peers exceed max_peers {self._max_peers}"
            )
        entries: dict[PeerId, _Entry] = {}
        max_addresses = self._max_addresses
        for i, raw in enumerate(rows):
            if raw.__class__ is list and len(raw) == 3:
                peer_raw, addresses_raw, ref_raw = raw
            else:
                peer_raw, addresses_raw, ref_raw = state_row(f"{where}[{i}]", raw, 3)
            peer = state_peer_fast(peer_raw)
            if peer is None:
                peer = state_peer(f"{where}[{i}].peer", peer_raw)
            if peer in entries:
                raise FrameworkStateError(f"{where}[{i}].peer: duplicate peer {peer}")
            entry = _Entry(i + 1)
            entry.parsed = None
            known = entry.raw
            if addresses_raw.__class__ is not list:
                addresses_raw = state_list(f"{where}[{i}].addresses", addresses_raw)
            for j, data in enumerate(addresses_raw):
                if data.__class__ is not bytes:
                    data = state_bytes(f"{where}[{i}].addresses[{j}]", data)
                try:
                    _check_address(data)
                except IdError as exc:
                    raise FrameworkStateError(f"{where}[{i}].addresses[{j}]: {exc}") from exc
                if data not in known:
                    known.append(data)
            del known[: max(0, len(known) - max_addresses)]
            if ref_raw.__class__ is not int or ref_raw < 0:
                ref_raw = state_int(f"{where}[{i}].ref_count", ref_raw)
            entry.ref_count = ref_raw
            entries[peer] = entry
        self._entries = entries
        self._seq = len(rows)
        self._evictable = [(e.inserted, p) for p, e in entries.items() if e.ref_count == 0]
        heapq.heapify(self._evictable)

    @classmethod
    def from_state(
        cls,
        rows: list[Any],
        max_peers: int = DEFAULT_ADDRESS_BOOK_MAX_PEERS,
        max_addresses_per_peer: int = DEFAULT_MAX_ADDRESSES_PER_PEER,
    ) -> AddressBook:
        """A new book rebuilt from `export_state()` rows."""
        book = cls(max_peers, max_addresses_per_peer)
        book.restore_state(rows)
        return book
