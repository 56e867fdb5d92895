"""Per-peer snapshot rows, and the all-at-once checks that let a restore trust them.

The address book, the governor's health table and the backoff table keep their per-peer state
*as these rows* (keyed by the peer's multihash bytes), so capturing a snapshot hands the rows
over as they are and restoring one adopts the decoded rows without building an object per
peer. `bbnode.engine.snapshot` re-exports the row types under the same names (they are the
seed's `AddressBookEntrySnapshot`, health tuple and `BackoffEntry`; encoded by column).

The `*_column_ok` checks look at one field of every row at once with C-level builtins (`map`,
`set`, `min`, `max` over `zip(*rows)` columns): about 100x cheaper per row than a Python loop.
They answer only "all good" or "something is off"; on "off" the caller runs its per-row path,
which finds the first bad row and names it (`address_book[41].peer: ...`), so error messages
are exactly those of the per-row code.

`ColumnRows` is what the snapshot decoder returns for a table stored in columnar form: the rows
plus the columns they were built from, so `columns` hands those back instead of re-reading
every row; a peer or address column whose bytes lie at a fixed stride in the decoded buffer
(`PackedBytes`, `PackedLists` with a `Strided` layout, see `_columnar`) is checked with a few
strided slices of that buffer instead of one visit per object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from operator import itemgetter, sub
from typing import Any, Final, NamedTuple, TypeVar

from bbnode.engine.framework._columnar import (
    ColumnRows,
    PackedBytes,
    PackedLists,
    Strided,
    adopt_rows,
)
from bbnode.ids import MAX_PEER_ID_BYTES

__all__ = [
    "AddressBookEntrySnapshot",
    "BackoffEntry",
    "BlockEntrySnapshot",
    "ColumnRows",
    "HealthEntry",
    "PackedBytes",
    "PackedLists",
    "Strided",
    "adopt_checked",
    "adopt_rows",
    "bool_column_ok",
    "columns",
    "int_column_ok",
    "ip_tcp_address_ok",
    "ip_tcp_addresses_ok",
    "peer_column_ok",
]


class AddressBookEntrySnapshot(NamedTuple):
    """One peer's address-book entry (seed field names)."""

    peer_id: bytes
    addresses: list[bytes]
    ref_count: int


class HealthEntry(NamedTuple):
    """`(peer, consecutive_failures, last_event_ns, down)` as in the seed's health tuples."""

    peer: bytes
    consecutive_failures: int
    last_event_ns: int
    down: bool


class BlockEntrySnapshot(NamedTuple):
    """bbnode: one ban with its expiry (None = permanent) and source (config|runtime)."""

    peer: bytes
    until_ns: int | None
    source: str


class BackoffEntry(NamedTuple):
    """One peer's backoff state (seed field names)."""

    peer: bytes
    attempts: int
    last_attempt_ns: int
    next_retry_ns: int


_ROW_TYPES: Final = frozenset({list, tuple, AddressBookEntrySnapshot, HealthEntry, BackoffEntry})
# Multicodec codes of the segments in the common `/ip4|ip6/<a>/tcp/<port>` address.
_IP4: Final = 0x04
_IP6: Final = 0x29
_TCP: Final = 0x06
# By length: the ip code (at 0) and where the tcp code sits. `/ip4/<4>/tcp/<2>` is 8 bytes
# with tcp at 5, `/ip6/<16>/tcp/<2>` 20 with tcp at 17.
_IP_TCP_SHAPES: Final = {8: (_IP4, 5), 20: (_IP6, 17)}
_first: Final = itemgetter(0)
_second: Final = itemgetter(1)

_Row = TypeVar("_Row", bound=tuple[Any, ...])


def columns(rows: Sequence[Any], width: int) -> list[Sequence[Any]] | None:
    """The `width` columns of `rows` (lists/tuples of exactly `width` items), else None."""
    if type(rows) is ColumnRows and rows.columns is not None and len(rows.columns) == width:
        return list(rows.columns)
    if not rows:
        return [() for _ in range(width)]
    if not set(map(type, rows)) <= _ROW_TYPES or set(map(len, rows)) != {width}:
        return None
    return list(zip(*rows, strict=True))


def adopt_checked(
    rows: Sequence[Any],
    row_type: type[_Row],
    checks: Sequence[Callable[[Sequence[Any]], bool]],
) -> tuple[Sequence[bytes], dict[bytes, _Row]] | None:
    """`(peer column, rows of row_type by peer)` when every row is a peer id followed by one
    field per check, every column passes its check and no peer repeats; else None.

    None means "something is off" and nothing more: the table then runs its row-by-row
    restore, which finds the first bad row (or the repeated peer) and names it.
    """
    cols = columns(rows, 1 + len(checks))
    if cols is None:
        return None
    peers = cols[0]
    if not peer_column_ok(peers):
        return None
    for check, column in zip(checks, cols[1:], strict=True):
        if not check(column):
            return None
    by_peer = dict(zip(peers, adopt_rows(rows, row_type), strict=True))
    if len(by_peer) != len(peers):
        return None  # a duplicate peer
    return peers, by_peer


def peer_column_ok(peers: Sequence[Any]) -> bool:
    """True when every item is bytes `PeerId.from_bytes` accepts with one-byte varints.

    That is every identity and sha2-256 peer id: a code below 0x80 and a digest-length byte
    equal to the remaining length (so at most 127 digest bytes, within the 128-byte cap).
    Peers of one length (the usual case) are checked on their concatenation with two strided
    slices; mixed lengths fall back to a per-item scan (still no Python call per item).
    """
    if not peers:
        return True
    layout = peers.layout if type(peers) is PackedBytes else None
    if layout is None:
        if set(map(type, peers)) != {bytes}:
            return False
        lengths = set(map(len, peers))
        if len(lengths) != 1:
            return _mixed_peers_ok(peers, lengths)
        (size,) = lengths
        layout = Strided(b"".join(peers), 0, size, size, len(peers))
    size = layout.width
    if not 2 <= size <= MAX_PEER_ID_BYTES:
        return False
    return layout.at(0).isascii() and layout.at(1) == bytes((size - 2,)) * len(peers)


def _mixed_peers_ok(peers: Sequence[bytes], lengths: set[int]) -> bool:
    if min(lengths) < 2 or max(lengths) > MAX_PEER_ID_BYTES:
        return False
    if not bytes(map(_first, peers)).isascii():
        return False
    return set(map(sub, map(len, peers), map(_second, peers))) == {2}


def int_column_ok(values: Sequence[Any], minimum: int = 0) -> bool:
    """True when every item is an int (not a bool) >= `minimum`."""
    return not values or (set(map(type, values)) == {int} and min(values) >= minimum)


def bool_column_ok(values: Sequence[Any]) -> bool:
    """True when every item is a bool."""
    return not values or set(map(type, values)) == {bool}


def ip_tcp_address_ok(data: bytes) -> bool:
    """True when `data` is shaped `/ip4/<4 bytes>/tcp/<2 bytes>` or `/ip6/<16 bytes>/tcp/<2
    bytes>`: such bytes are always a valid address (any 4 or 16 bytes is an IP address, any
    2 bytes a port, and single-byte codes are minimal varints), so `Address.from_bytes` need
    not parse them. False says nothing: the address may still be valid.
    """
    shape = _IP_TCP_SHAPES.get(len(data))
    return shape is not None and data[0] == shape[0] and data[shape[1]] == _TCP


def ip_tcp_addresses_ok(lists: Sequence[Any], max_per_peer: int) -> bool:
    """True when every item is a list of at most `max_per_peer` distinct addresses, all of one
    shape `ip_tcp_address_ok` accepts.
    """
    if not lists:
        return True
    if type(lists) is PackedLists and lists.per_row is not None:
        # Every row holds `per_row` items, laid out at a stride (no per-row scan needed).
        if lists.per_row > max_per_peer:
            return False
        if lists.per_row == 0:
            return True
        if lists.per_row == 1 and lists.layout is not None:
            return _ip_tcp_shaped(lists.layout)
    if set(map(type, lists)) != {list}:
        return False
    counts = set(map(len, lists))
    if max(counts) > max_per_peer:
        return False
    flat = list(chain.from_iterable(lists))
    if not flat:
        return True
    if set(map(type, flat)) != {bytes}:
        return False
    lengths = set(map(len, flat))
    if len(lengths) != 1:
        return False
    (size,) = lengths
    n = len(flat)
    if not _ip_tcp_shaped(Strided(b"".join(flat), 0, size, size, n)):
        return False
    # No duplicates inside a row (the per-row path would drop them): compare set sizes,
    # unless every row holds at most one address (the common case).
    return max(counts) <= 1 or sum(map(len, map(frozenset, lists))) == n


def _ip_tcp_shaped(items: Strided) -> bool:
    """True when every item is an address of one ip/tcp shape."""
    shape = _IP_TCP_SHAPES.get(items.width)
    if shape is None:
        return False
    code, tcp_at = shape
    n = items.count
    return items.at(0) == bytes((code,)) * n and items.at(tcp_at) == bytes((_TCP,)) * n
