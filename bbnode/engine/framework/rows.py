"""Per-peer snapshot rows, and the all-at-once checks that let a restore trust them.

The address book, the governor's health table and the backoff table keep their per-peer state
*as these rows* (keyed by the peer's multihash bytes), so capturing a snapshot hands the rows
over as they are and restoring one adopts the decoded rows without building an object per
peer. `bbnode.engine.snapshot` re-exports the row types under the same names (they are the
seed's `AddressBookEntrySnapshot`, health tuple and `BackoffEntry`, encoded as arrays).

The `*_column_ok` checks look at one field of every row at once with C-level builtins (`map`,
`set`, `min`, `max` over `zip(*rows)` columns): about 100x cheaper per row than a Python loop.
They answer only "all good" or "something is off"; on "off" the caller runs its per-row path,
which finds the first bad row and names it (`address_book[41].peer: ...`), so error messages
are exactly those of the per-row code.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import itemgetter, sub
from typing import Any, Final, NamedTuple

__all__ = [
    "AddressBookEntrySnapshot",
    "BackoffEntry",
    "BlockEntrySnapshot",
    "HealthEntry",
    "bool_column_ok",
    "columns",
    "int_column_ok",
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


# A PeerId is a multihash of at most this many bytes (bbnode.ids._MAX_PEER_ID_BYTES).
_MAX_PEER_ID_BYTES: Final = 128
_ROW_TYPES: Final = frozenset({list, tuple, AddressBookEntrySnapshot, HealthEntry, BackoffEntry})
# `/ip4/<4>/tcp/<2>` is 8 bytes with codes at 0 and 5; `/ip6/<16>/tcp/<2>` 20 with 0 and 17.
_IP_TCP_SHAPES: Final = {8: (0x04, 5), 20: (0x29, 17)}
_first: Final = itemgetter(0)
_second: Final = itemgetter(1)


def columns(rows: Sequence[Any], width: int) -> list[tuple[Any, ...]] | None:
    """The `width` columns of `rows` (lists/tuples of exactly `width` items), else None."""
    if not rows:
        return [() for _ in range(width)]
    if not set(map(type, rows)) <= _ROW_TYPES or set(map(len, rows)) != {width}:
        return None
    return list(zip(*rows, strict=True))


def peer_column_ok(peers: tuple[Any, ...]) -> bool:
    """True when every item is bytes `PeerId.from_bytes` accepts with one-byte varints.

    That is every identity and sha2-256 peer id: a code below 0x80 and a digest-length byte
    equal to the remaining length (so at most 127 digest bytes, within the 128-byte cap).
    Peers of one length (the usual case) are checked on their concatenation with two strided
    slices; mixed lengths fall back to a per-item scan (still no Python call per item).
    """
    if not peers:
        return True
    if set(map(type, peers)) != {bytes}:
        return False
    lengths = set(map(len, peers))
    if len(lengths) == 1:
        (size,) = lengths
        if not 2 <= size <= _MAX_PEER_ID_BYTES:
            return False
        joined = b"".join(peers)
        return joined[0::size].isascii() and joined[1::size] == bytes((size - 2,)) * len(peers)
    if min(lengths) < 2 or max(lengths) > _MAX_PEER_ID_BYTES:
        return False
    if not bytes(map(_first, peers)).isascii():
        return False
    return set(map(sub, map(len, peers), map(_second, peers))) == {2}


def int_column_ok(values: tuple[Any, ...], minimum: int = 0) -> bool:
    """True when every item is an int (not a bool) >= `minimum`."""
    return not values or (set(map(type, values)) == {int} and min(values) >= minimum)


def bool_column_ok(values: tuple[Any, ...]) -> bool:
    """True when every item is a bool."""
    return not values or set(map(type, values)) == {bool}


def ip_tcp_addresses_ok(lists: tuple[Any, ...], max_per_peer: int) -> bool:
    """True when every item is a list of at most `max_per_peer` distinct addresses, all of one
    `/ip4/../tcp/..` or `/ip6/../tcp/..` shape (valid whatever their bytes; see
    `address_book._check_address`).
    """
    if not lists:
        return True
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
    shape = _IP_TCP_SHAPES.get(size)
    if shape is None:
        return False
    code, tcp_at = shape
    joined = b"".join(flat)
    n = len(flat)
    if joined[0::size] != bytes((code,)) * n or joined[tcp_at::size] != b"\x06" * n:
        return False
    # No duplicates inside a row (the per-row path would drop them): compare set sizes,
    # unless every row holds at most one address (the common case).
    return max(counts) <= 1 or sum(map(len, map(frozenset, lists))) == n
