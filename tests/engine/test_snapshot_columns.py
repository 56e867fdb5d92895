"""Per-peer snapshot tables encoded by column: round trips, layouts, and exact errors.

The columnar form must decode and restore to exactly what the row form (what earlier builds
wrote, still accepted) gives: the same rows, and for bad values the same error naming the row.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import msgpack
import pytest

from bbnode.engine import Node, NodeConfig, NodeSnapshot, RestoreError, SnapshotDecodeError
from bbnode.engine._codec import pack, unpack
from bbnode.engine.framework.rows import (
    AddressBookEntrySnapshot,
    ColumnRows,
    PackedBytes,
    PackedLists,
    peer_column_ok,
)
from bbnode.ids import Address, PeerId

ME = PeerId.from_u64(1000)
SHA = PeerId.from_bytes(b"\x12\x20" + bytes(32))


def _node(peers: int = 40, addresses: int = 1) -> Node:
    node = Node(ME, config=NodeConfig(rng_seed=3))
    for i in range(1, peers + 1):
        port = 7000 + i
        node.add_peer(
            PeerId.from_u64(i), [Address.tcp("10.0.0.1", port + k) for k in range(addresses)]
        )
        if i % 3 == 0:
            node.dial_failed(PeerId.from_u64(i), None, "refused")
        if i % 7 == 0:
            node.block_peer(PeerId.from_u64(i), until_ns=10**12 if i % 2 else None)
    node.poll()
    return node


def _raw(snap: NodeSnapshot) -> dict[str, Any]:
    raw: dict[str, Any] = unpack(snap.encode())
    return raw


def _tables(raw: dict[str, Any]) -> dict[str, Any]:
    fw = raw["transient"]["framework"]
    gov = fw["peer_governor"]
    return {
        "address_book": fw["address_book"],
        "backoff_table": fw["backoff_table"],
        "health": gov["health"],
        "block_entries": gov["block_entries"],
    }


def _as_rows(table: dict[str, Any], fields: tuple[str, ...]) -> list[list[Any]]:
    cols = [unpack(table[name]) for name in fields]
    return [list(row) for row in zip(*cols, strict=True)]


_FIELDS = {
    "address_book": ("peer_id", "addresses", "ref_count"),
    "backoff_table": ("peer", "attempts", "last_attempt_ns", "next_retry_ns"),
    "health": ("peer", "consecutive_failures", "last_event_ns", "down"),
    "block_entries": ("peer", "until_ns", "source"),
}


def _with_table(raw: dict[str, Any], name: str, value: Any) -> bytes:
    fw = raw["transient"]["framework"]
    (fw["peer_governor"] if name in ("health", "block_entries") else fw)[name] = value
    return pack(raw)


def _restore_error(data: bytes) -> str:
    with pytest.raises(RestoreError) as info:
        Node.from_snapshot(NodeSnapshot.decode(data), NodeConfig(rng_seed=3))
    return str(info.value)


@pytest.mark.parametrize(
    ("peers", "addresses", "empty"),
    [
        (40, 1, set()),
        (40, 0, set()),
        (40, 3, set()),
        (3, 1, {"block_entries"}),  # no peer number is a multiple of 7: no bans
        (20, 2, set()),
    ],
)
def test_tables_are_columns_and_round_trip(peers: int, addresses: int, empty: set[str]) -> None:
    node = _node(peers, addresses)
    snap = node.snapshot()
    tables = _tables(_raw(snap))
    assert {name for name, table in tables.items() if table == []} == empty
    for name, table in tables.items():
        if name in empty:  # (an empty table stays an empty array)
            continue
        assert set(table) == {"n", *_FIELDS[name]}, name
        assert all(isinstance(table[f], bytes) for f in _FIELDS[name])
    decoded = NodeSnapshot.decode(snap.encode())
    assert decoded == snap
    book = decoded.transient.framework.address_book
    assert isinstance(book, ColumnRows)
    assert all(type(row) is AddressBookEntrySnapshot for row in book)
    restored = Node.from_snapshot(decoded, NodeConfig(rng_seed=3))
    assert restored.snapshot().transient.framework == node.snapshot().transient.framework


def test_uniform_columns_get_a_strided_layout_and_others_do_not() -> None:
    book = NodeSnapshot.decode(_node(40, 1).snapshot().encode()).transient.framework.address_book
    assert isinstance(book, ColumnRows)
    assert book.columns is not None
    peers, addresses, _refs = book.columns
    assert isinstance(peers, PackedBytes)
    assert peers.layout is not None
    assert isinstance(addresses, PackedLists)
    assert addresses.per_row == 1
    assert addresses.layout is not None
    assert addresses.layout.width == 8
    # One peer id of another length: no layout; the per-item column check still passes.
    node = _node(5, 2)
    node.add_peer(SHA, [])
    book = NodeSnapshot.decode(node.snapshot().encode()).transient.framework.address_book
    assert book.columns is not None
    peers, addresses, _refs = book.columns
    assert isinstance(peers, PackedBytes)
    assert peers.layout is None
    assert peer_column_ok(peers)
    assert isinstance(addresses, PackedLists)
    assert addresses.per_row is None


def test_row_form_still_decodes_and_restores_the_same() -> None:
    node = _node(30, 1)
    snap = node.snapshot()
    raw = _raw(snap)
    for name, table in _tables(raw).items():
        raw = unpack(_with_table(raw, name, _as_rows(table, _FIELDS[name])))
    from_rows = NodeSnapshot.decode(msgpack.packb(raw, use_bin_type=True))
    assert from_rows == snap
    assert not isinstance(from_rows.transient.framework.address_book, ColumnRows)
    restored = Node.from_snapshot(from_rows, NodeConfig(rng_seed=3))
    assert restored.snapshot().transient.framework == snap.transient.framework


@pytest.mark.parametrize(
    ("name", "index", "value", "message"),
    [
        ("address_book", 0, b"\x00", r"address_book\[4\]\.peer: not a peer id"),
        ("address_book", 1, [b"\xff\xff"], r"address_book\[4\]\.addresses\[0\]"),
        # same width as the others (the layout holds), not an address: the shape check fails
        ("address_book", 1, [b"\x05" + bytes(7)], r"address_book\[4\]\.addresses\[0\]"),
        ("address_book", 1, "x", r"address_book\[4\]\.addresses: expected a list"),
        ("address_book", 2, True, r"address_book\[4\]\.ref_count: expected an int"),
        ("address_book", 2, -1, r"address_book\[4\]\.ref_count: must be >= 0"),
        ("backoff_table", 1, 0, r"backoff_table\[4\]\.attempts: must be >= 1"),
        ("backoff_table", 0, b"\x00\x09" + bytes(8), r"backoff_table\[4\]\.peer"),
        ("health", 3, 1, r"health\[4\]\.down: expected a bool"),
        ("health", 2, "x", r"health\[4\]\.last_event_ns: expected an int"),
        ("block_entries", 2, "x", r"block_entries\[4\]\.source"),
        ("block_entries", 1, -4, r"block_entries\[4\]\.until_ns"),
    ],
)
def test_bad_values_in_columns_name_the_row_as_the_row_form_does(
    name: str, index: int, value: Any, message: str
) -> None:
    raw = _raw(_node(40, 1).snapshot())
    table = _tables(raw)[name]
    field = _FIELDS[name][index]
    column = unpack(table[field])
    column[4] = value
    columnar = _with_table(raw, name, {**table, field: pack(column)})
    rows = _as_rows(table, _FIELDS[name])
    rows[4][index] = value
    row_form = _with_table(raw, name, rows)
    error = _restore_error(columnar)
    assert error == _restore_error(row_form)
    assert re.search(message, error), error


def test_duplicate_peer_in_columns_is_named() -> None:
    raw = _raw(_node(40, 1).snapshot())
    table = _tables(raw)["address_book"]
    peers = unpack(table["peer_id"])
    peers[9] = peers[2]
    data = _with_table(raw, "address_book", {**table, "peer_id": pack(peers)})
    assert "address_book[9].peer: duplicate peer" in _restore_error(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.pop("ref_count"), r"address_book\.ref_count: missing column"),
        (lambda t: t.update(n="3"), r"address_book\.n: expected a row count"),
        (lambda t: t.update(n=-1), r"address_book\.n: expected a row count"),
        (lambda t: t.update(n=41), r"address_book\.peer_id: expected an array of 41 items"),
        (lambda t: t.update(ref_count=[0] * 40), r"ref_count: expected a packed column \(bin\)"),
        (lambda t: t.update(ref_count=b"\xc1"), r"ref_count: not valid msgpack"),
        (lambda t: t.update(ref_count=pack({"a": 1})), r"ref_count: expected an array of 40"),
        (lambda t: t.update(ref_count=pack([0] * 40) + b"\x00"), r"ref_count: not valid msgpack"),
    ],
)
def test_malformed_columns_are_decode_errors_naming_the_column(change: Any, message: str) -> None:
    raw = _raw(_node(40, 1).snapshot())
    table = dict(_tables(raw)["address_book"])
    change(table)
    with pytest.raises(SnapshotDecodeError, match=message):
        NodeSnapshot.decode(_with_table(raw, "address_book", table))


def test_non_canonical_packing_takes_the_per_item_checks() -> None:
    raw = _raw(_node(20, 1).snapshot())
    table = _tables(raw)["address_book"]
    peers = unpack(table["peer_id"])
    # An array32 header for 20 items: valid msgpack (so it decodes), but not where the
    # layout expects the items to start, so no layout is trusted.
    long_header = b"\xdd" + (20).to_bytes(4, "big") + table["peer_id"][3:]
    assert unpack(long_header) == peers
    data = _with_table(raw, "address_book", {**table, "peer_id": long_header})
    book = NodeSnapshot.decode(data).transient.framework.address_book
    assert isinstance(book, ColumnRows)
    assert book.columns is not None
    packed = book.columns[0]
    assert isinstance(packed, PackedBytes)
    assert packed.layout is None
    assert list(packed) == peers
    restored = Node.from_snapshot(NodeSnapshot.decode(data), NodeConfig(rng_seed=3))
    assert len(restored.snapshot().transient.framework.address_book) == 20


def test_a_changed_decoded_table_is_checked_row_by_row() -> None:
    decoded = NodeSnapshot.decode(_node(10, 1).snapshot().encode())
    book = decoded.transient.framework.address_book
    assert isinstance(book, ColumnRows)
    assert book.columns is not None
    book[3] = AddressBookEntrySnapshot(b"\x00", [], 0)
    assert book.columns is None
    with pytest.raises(RestoreError, match=r"address_book\[3\]\.peer: not a peer id"):
        Node.from_snapshot(decoded, NodeConfig(rng_seed=3))
    book.columns = ()  # (any list method forgets the columns)
    book.append(book[0])
    assert book.columns is None


def test_rows_that_do_not_fit_the_columns_stay_rows() -> None:
    snap = _node(3, 1).snapshot()
    fw = snap.transient.framework
    bad = [*fw.address_book, AddressBookEntrySnapshot(b"x", [], 0)[:2]]
    wrong = dataclasses.replace(
        snap,
        transient=dataclasses.replace(
            snap.transient, framework=dataclasses.replace(fw, address_book=bad)
        ),
    )
    raw = _raw(wrong)
    assert isinstance(raw["transient"]["framework"]["address_book"], list)
    with pytest.raises(SnapshotDecodeError, match="address_book: malformed row"):
        NodeSnapshot.decode(wrong.encode())


def test_an_addresses_column_whose_items_only_look_strided_is_checked_item_by_item() -> None:
    raw = _raw(_node(2, 1).snapshot())
    table = dict(_tables(raw)["address_book"])
    a = Address.tcp("10.0.0.1", 7001).to_bytes()
    b = Address.tcp("10.0.0.1", 7002).to_bytes()
    # [[a, 1], b]: 1 + 11 + 11 bytes, bins where one address per row would put them.
    table["addresses"] = b"\x92" + b"\x92\xc4\x08" + a + b"\x01\xc4\x08" + b
    assert msgpack.unpackb(table["addresses"]) == [[a, 1], b]
    data = _with_table(raw, "address_book", table)
    with pytest.raises((RestoreError, SnapshotDecodeError)):
        Node.from_snapshot(NodeSnapshot.decode(data), NodeConfig(rng_seed=3))


def test_peer_bins_of_differing_lengths_that_sum_to_a_stride_get_no_layout() -> None:
    raw = _raw(_node(3, 1).snapshot())
    table = dict(_tables(raw)["address_book"])
    ids = [b"\x00" * 10, b"\x00" * 9, b"\x00" * 11]  # 12 + 11 + 13 bytes: three strides of 12
    table["peer_id"] = msgpack.packb(ids)
    decoded = NodeSnapshot.decode(_with_table(raw, "address_book", table))
    book = decoded.transient.framework.address_book
    assert isinstance(book, ColumnRows)
    assert book.columns is not None
    peers = book.columns[0]
    assert isinstance(peers, PackedBytes)
    assert list(peers) == ids
    assert peers.layout is None
