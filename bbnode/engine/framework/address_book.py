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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from bbnode.engine.framework._check import (
    state_bytes,
    state_int,
    state_list,
    state_peer,
    state_row,
    state_rows,
    usage_int,
)
from bbnode.engine.framework.errors import FrameworkStateError, FrameworkUsageError
from bbnode.engine.framework.rows import (
    AddressBookEntrySnapshot,
    adopt_checked,
    int_column_ok,
    ip_tcp_address_ok,
    ip_tcp_addresses_ok,
)
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


def _check_address(data: bytes) -> None:
    """Raise IdError unless `Address.from_bytes(data)` would succeed (restore validation):
    the common ip/tcp shapes are known valid, anything else is fully parsed now."""
    if not ip_tcp_address_ok(data):
        Address.from_bytes(data)


class AddressBook:
    """Ref-counted peer -> addresses map with a peer cap and LRI eviction of unreferenced peers.

    State is keyed by the peer's multihash bytes: `_rows` holds each peer's
    `AddressBookEntrySnapshot` row (exactly what a snapshot stores, so capture and restore
    adopt rows instead of converting them; a row's address list is never mutated in place,
    a change builds a new row, so a row shared with a snapshot stays as captured); its
    insertion sequence number (eviction order; `_rows` is kept in that order too) is in
    `_inserted` for peers inserted since the last restore, and is its 1-based position in
    `_restored` for the others (that index is built only if an eviction or release needs
    it); `_parsed` holds the `Address` objects of peers looked up since their addresses last
    changed (parsed on first lookup, so a restored book of 100 000 peers parses nothing).

    Eviction uses a heap of `(inserted, peer bytes)` for unreferenced peers, validated lazily,
    so an insert at the cap costs O(log n) however many referenced peers there are. After a
    restore the heap is built on the first eviction, from `_rows` (already in heap order).
    """

    __slots__ = (
        "_evictable",
        "_inserted",
        "_max_addresses",
        "_max_peers",
        "_parsed",
        "_restored",
        "_restored_index",
        "_rows",
        "_seq",
    )

    def __init__(
        self,
        max_peers: int = DEFAULT_ADDRESS_BOOK_MAX_PEERS,
        max_addresses_per_peer: int = DEFAULT_MAX_ADDRESSES_PER_PEER,
    ) -> None:
        """An empty book holding at most `max_peers` peers."""
        self._max_peers = usage_int("max_peers", max_peers, minimum=1)
        self._max_addresses = usage_int("max_addresses_per_peer", max_addresses_per_peer, 1)
        self._rows: dict[bytes, AddressBookEntrySnapshot] = {}
        self._inserted: dict[bytes, int] = {}
        self._restored: Sequence[bytes] = ()
        self._restored_index: dict[bytes, int] | None = None
        self._parsed: dict[bytes, tuple[Address, ...]] = {}
        self._evictable: list[tuple[int, bytes]] | None = []
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
        key = peer.to_bytes()
        rows = self._rows
        row = rows.pop(key, None)
        if row is None:
            if len(rows) >= self._max_peers and not self._evict_one():
                return False
            row = AddressBookEntrySnapshot(key, [], 0)
        self._seq += 1
        self._inserted[key] = self._seq
        known = row.addresses
        added: list[bytes] = []
        added_parsed: list[Address] = []
        for address in new_addresses:
            data = address.to_bytes()
            if data not in known and data not in added:
                added.append(data)
                added_parsed.append(address)
        ref_count = row.ref_count + 1 if ref else row.ref_count
        if added:
            merged = known + added
            drop = max(0, len(merged) - self._max_addresses)
            parsed = self._parsed.get(key)
            if parsed is not None:
                self._parsed[key] = (*parsed, *added_parsed)[drop:]
            row = AddressBookEntrySnapshot(key, merged[drop:], ref_count)
        elif ref:
            row = AddressBookEntrySnapshot(key, known, ref_count)
        rows[key] = row  # (re)inserted last: the dict stays in eviction order
        if ref_count == 0:
            self._push_evictable(self._seq, key)
        return True

    def release(self, peer: PeerId) -> None:
        """Drop one reference on `peer` (floor 0; unknown peers are ignored)."""
        key = peer.to_bytes()
        row = self._rows.get(key)
        if row is None or row.ref_count == 0:
            return
        self._rows[key] = row = AddressBookEntrySnapshot(key, row.addresses, row.ref_count - 1)
        if row.ref_count == 0:
            self._push_evictable(self._seq_of(key), key)

    def remove(self, peer: PeerId) -> bool:
        """Forget `peer` whatever its ref count; True if it was known."""
        return self._forget(peer.to_bytes())

    def _forget(self, key: bytes) -> bool:
        if self._rows.pop(key, None) is None:
            return False
        self._inserted.pop(key, None)  # (a restored peer may have no entry: see `_seq_of`)
        self._parsed.pop(key, None)
        return True

    def _push_evictable(self, inserted: int, key: bytes) -> None:
        heap = self._evictable
        if heap is None:
            return  # not built yet: the build will find this peer in `_rows`
        heapq.heappush(heap, (inserted, key))
        if len(heap) > 2 * len(self._rows) + _HEAP_SLACK:
            heap = [item for item in heap if self._is_current(*item)]
            heapq.heapify(heap)
            self._evictable = heap

    def _is_current(self, inserted: int, key: bytes) -> bool:
        row = self._rows.get(key)
        return row is not None and row.ref_count == 0 and self._seq_of(key) == inserted

    def _seq_of(self, key: bytes) -> int:
        """The insertion sequence number of `key` (a peer in `_rows`)."""
        seq = self._inserted.get(key)
        if seq is not None:
            return seq
        index = self._restored_index
        if index is None:
            index = self._restored_index = dict(
                zip(self._restored, range(1, len(self._restored) + 1), strict=True)
            )
        return index[key]

    def _evict_one(self) -> bool:
        heap = self._evictable
        if heap is None:
            seq_of = self._seq_of
            # `_rows` is in insertion order, so this list is sorted: already a heap.
            heap = self._evictable = [
                (seq_of(key), key) for key, row in self._rows.items() if row.ref_count == 0
            ]
        while heap:
            inserted_at, key = heapq.heappop(heap)
            if self._is_current(inserted_at, key):
                self._forget(key)
                return True
        return False

    # reading --------------------------------------------------------------------------------
    def lookup(self, peer: PeerId) -> tuple[Address, ...]:
        """`peer`'s addresses, first-learned first; empty if unknown."""
        key = peer.to_bytes()
        parsed = self._parsed.get(key)
        if parsed is not None:
            return parsed
        row = self._rows.get(key)
        if row is None:
            return ()
        # Only bytes that `_check_address` (or an Address) vouched for are in a row.
        parsed = self._parsed[key] = tuple([Address.from_bytes(b) for b in row.addresses])
        return parsed

    def lookup_bytes(self, peer: PeerId) -> tuple[bytes, ...]:
        """`lookup` in binary form (what an envelope carries), without parsing anything."""
        row = self._rows.get(peer.to_bytes())
        return () if row is None else tuple(row.addresses)

    def entry(self, peer: PeerId) -> AddressBookEntry | None:
        """A frozen view of `peer`'s entry, or None."""
        row = self._rows.get(peer.to_bytes())
        if row is None:
            return None
        return AddressBookEntry(peer, self.lookup(peer), row.ref_count)

    def peers(self) -> list[PeerId]:
        """Known peers, least-recently-inserted first."""
        return [PeerId(key) for key in self._rows]  # kept in insertion order by `insert`

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, peer: object) -> bool:
        return isinstance(peer, PeerId) and peer.to_bytes() in self._rows

    # snapshot -------------------------------------------------------------------------------
    def export_rows(self) -> list[AddressBookEntrySnapshot]:
        """The rows themselves, least-recently-inserted first (what a snapshot stores).

        Shared, not copied: the book never mutates a row or its address list in place.
        """
        return list(self._rows.values())

    def export_state(self) -> list[list[Any]]:
        """`[[peer_bytes, [address_bytes, ...], ref_count], ...]`, least-recently-inserted first.

        The row order is the eviction order, so a restored book evicts the same peers next.
        """
        return [[key, list(addresses), ref] for key, addresses, ref in self._rows.values()]

    def restore_state(self, rows: Sequence[Any]) -> None:
        """Replace everything with `rows` (as exported, or `export_rows()` rows); nothing
        changes if a row is bad. Rows beyond `max_peers` are refused rather than dropped.
        """
        where = "address_book"
        rows = state_rows(where, rows)
        if len(rows) > self._max_peers:
            raise FrameworkStateError(
                f"{where}: {len(rows)} peers exceed max_peers {self._max_peers}"
            )
        checks = (partial(ip_tcp_addresses_ok, max_per_peer=self._max_addresses), int_column_ok)
        adopted = adopt_checked(rows, AddressBookEntrySnapshot, checks)
        by_peer = self._checked_one_by_one(where, rows) if adopted is None else adopted[1]
        # The rows' own keys, in order: not the decoded peer column, which would keep its
        # whole buffer alive as long as the book.
        keys = tuple(by_peer)
        self._rows = by_peer
        self._inserted = {}
        self._restored = keys
        self._restored_index = None
        self._parsed = {}
        self._seq = len(keys)
        self._evictable = None

    def _checked_one_by_one(
        self, where: str, rows: Sequence[Any]
    ) -> dict[bytes, AddressBookEntrySnapshot]:
        """`rows` by peer, each row checked on its own, naming the first bad one; duplicate
        and surplus addresses dropped."""
        out: dict[bytes, AddressBookEntrySnapshot] = {}
        max_addresses = self._max_addresses
        for i, raw in enumerate(rows):
            peer_raw, addresses_raw, ref_raw = state_row(f"{where}[{i}]", raw, 3)
            key = state_peer(f"{where}[{i}].peer", peer_raw).to_bytes()
            if key in out:
                raise FrameworkStateError(f"{where}[{i}].peer: duplicate peer {PeerId(key)}")
            known: list[bytes] = []
            for j, item in enumerate(state_list(f"{where}[{i}].addresses", addresses_raw)):
                data = state_bytes(f"{where}[{i}].addresses[{j}]", item)
                try:
                    _check_address(data)
                except IdError as exc:
                    raise FrameworkStateError(f"{where}[{i}].addresses[{j}]: {exc}") from exc
                if data not in known:
                    known.append(data)
            del known[: max(0, len(known) - max_addresses)]
            ref_count = state_int(f"{where}[{i}].ref_count", ref_raw)
            out[key] = AddressBookEntrySnapshot(key, known, ref_count)
        return out

    @classmethod
    def from_state(
        cls,
        rows: Sequence[Any],
        max_peers: int = DEFAULT_ADDRESS_BOOK_MAX_PEERS,
        max_addresses_per_peer: int = DEFAULT_MAX_ADDRESSES_PER_PEER,
    ) -> AddressBook:
        """A new book rebuilt from `export_state()` (or `export_rows()`) rows."""
        book = cls(max_peers, max_addresses_per_peer)
        book.restore_state(rows)
        return book
