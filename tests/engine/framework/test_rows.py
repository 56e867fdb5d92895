"""The all-at-once column checks agree with the per-row restore paths."""

from __future__ import annotations

import pytest

from bbnode.engine.framework import AddressBook, BackoffTable, FrameworkStateError, PeerGovernor
from bbnode.engine.framework.rows import (
    AddressBookEntrySnapshot,
    BackoffEntry,
    HealthEntry,
    adopt_checked,
    bool_column_ok,
    columns,
    int_column_ok,
    ip_tcp_address_ok,
    ip_tcp_addresses_ok,
    peer_column_ok,
)
from bbnode.ids import Address, PeerId

P1 = PeerId.from_u64(1).to_bytes()
P2 = PeerId.from_u64(2).to_bytes()
SHA = PeerId.from_bytes(b"\x12\x20" + bytes(32)).to_bytes()
IP4 = Address.from_string("/ip4/10.0.0.1/tcp/7400").to_bytes()
IP6 = Address.from_string("/ip6/::1/tcp/7400").to_bytes()


def test_columns_need_uniform_width() -> None:
    assert columns([[1, 2], (3, 4)], 2) == [(1, 3), (2, 4)]
    assert columns([], 3) == [(), (), ()]
    assert columns([[1, 2], [3]], 2) is None
    assert columns(["ab"], 2) is None


@pytest.mark.parametrize(
    ("peers", "ok"),
    [
        ((P1, P1), True),
        ((P1, SHA), True),  # mixed lengths take the per-item scan
        ((b"\x00",), False),
        ((b"\x00\x09" + bytes(8),), False),  # declared length does not match
        ((b"\x80\x01\x00",), False),  # two-byte varint code: left to the per-row path
        ((bytearray(P1),), False),
        ((P1, b"\x00\x08" + bytes(7)), False),
    ],
)
def test_peer_column(peers: tuple[object, ...], ok: bool) -> None:
    assert peer_column_ok(peers) is ok


def test_int_and_address_columns() -> None:
    assert int_column_ok((0, 5))
    assert not int_column_ok((True,))
    assert not int_column_ok((-1,))
    assert int_column_ok((1, 2), minimum=1)
    assert ip_tcp_addresses_ok(([IP4], [], [IP4]), 32)
    assert ip_tcp_addresses_ok(([IP6, IP6[:-1] + b"\x02"],), 32)
    assert not ip_tcp_addresses_ok(([IP4, IP6],), 32)  # mixed shapes: per-row path
    assert not ip_tcp_addresses_ok(([IP4, IP4],), 32)  # duplicate: per-row path drops it
    assert not ip_tcp_addresses_ok(([IP4, IP4[:-1] + b"\x02"],), 1)  # over the cap
    assert not ip_tcp_addresses_ok(((IP4,),), 32)


def test_ip_tcp_address_shape() -> None:
    assert ip_tcp_address_ok(IP4)
    assert ip_tcp_address_ok(IP6)
    assert ip_tcp_address_ok(b"\x04" + bytes(4) + b"\x06" + bytes(2))  # any ip and port
    dns = Address.from_string("/dns/abcdef").to_bytes()
    assert len(dns) == len(IP4)
    assert not ip_tcp_address_ok(dns)  # valid, but left to Address.from_bytes
    assert not ip_tcp_address_ok(IP4[:-1])
    assert not ip_tcp_address_ok(b"\x29" + IP4[1:])  # ip6 code on an ip4-sized address


def test_book_adopts_checked_rows_and_normalises_the_rest() -> None:
    fast = [AddressBookEntrySnapshot(P1, [IP4], 1)]
    book = AddressBook.from_state(fast)
    assert book.export_rows()[0] is fast[0]  # adopted, not copied
    slow = [[P1, [IP4, IP4, IP6], 0]]
    book = AddressBook.from_state(slow)
    assert book.export_rows() == [AddressBookEntrySnapshot(P1, [IP4, IP6], 0)]


def test_backoff_rows_fast_and_slow_agree() -> None:
    table = BackoffTable()
    table.restore_state([BackoffEntry(P1, 2, 5, 9)])
    assert table.export_state() == [[P1, 2, 5, 9]]
    with pytest.raises(FrameworkStateError, match=r"backoff_table\[0\]\.attempts: must be >= 1"):
        table.restore_state([[P1, 0, 5, 9]])
    assert table.export_state() == [[P1, 2, 5, 9]]


HEALTH_CHECKS = (int_column_ok, int_column_ok, bool_column_ok)


def test_adopt_checked_keys_checked_rows_by_peer() -> None:
    rows = [[P2, 1, 5, True], (P1, 0, 6, False)]
    adopted = adopt_checked(rows, HealthEntry, HEALTH_CHECKS)
    assert adopted is not None
    peers, by_peer = adopted
    assert list(peers) == [P2, P1]
    assert list(by_peer) == [P2, P1]  # row order kept
    assert by_peer == {P2: HealthEntry(P2, 1, 5, True), P1: HealthEntry(P1, 0, 6, False)}
    assert all(type(row) is HealthEntry for row in by_peer.values())
    assert adopt_checked([], HealthEntry, HEALTH_CHECKS) == ((), {})


@pytest.mark.parametrize(
    "rows",
    [
        [[P1, 1, 5, True], [P1, 0, 6, False]],  # duplicate peer
        [[P1, 1, 5, 1]],  # a field fails its column check
        [[b"\x00", 1, 5, True]],  # not a peer id
        [[P1, 1, 5]],  # a field short
        [[P1, 1, 5, True, 0]],  # a field over
        [b"abcd"],  # not a row
    ],
)
def test_adopt_checked_leaves_anything_off_to_the_row_by_row_path(rows: list[object]) -> None:
    assert adopt_checked(rows, HealthEntry, HEALTH_CHECKS) is None


def test_every_row_table_takes_a_list_or_a_tuple_of_rows() -> None:
    book = AddressBook.from_state(([P1, [IP4], 1],))
    assert book.export_rows() == [AddressBookEntrySnapshot(P1, [IP4], 1)]
    table = BackoffTable()
    table.restore_state(((P1, 2, 5, 9),))
    assert table.export_rows() == [BackoffEntry(P1, 2, 5, 9)]
    state = PeerGovernor().export_state()
    state["health"] = ((P1, 1, 5, False),)
    assert PeerGovernor.from_state(state).health_rows() == [HealthEntry(P1, 1, 5, False)]
    for bad in ("x", {P1: 1}, None):
        with pytest.raises(FrameworkStateError, match="address_book: expected a list"):
            AddressBook.from_state(bad)  # type: ignore[arg-type]
        with pytest.raises(FrameworkStateError, match="backoff_table: expected a list"):
            table.restore_state(bad)  # type: ignore[arg-type]
        state["health"] = bad
        with pytest.raises(FrameworkStateError, match=r"health: expected a list"):
            PeerGovernor.from_state(state)
