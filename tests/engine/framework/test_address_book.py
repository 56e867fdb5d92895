"""AddressBook: ordered merge, ref counts, cap/eviction, snapshot round trips."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.engine.framework import (
    DEFAULT_ADDRESS_BOOK_MAX_PEERS,
    AddressBook,
    AddressBookEntry,
    FrameworkStateError,
    FrameworkUsageError,
)
from bbnode.ids import Address, IdError, PeerId


def p(n: int) -> PeerId:
    return PeerId.from_u64(n)


def a(port: int) -> Address:
    return Address.tcp("127.0.0.1", port)


def test_default_cap_is_upstream() -> None:
    assert DEFAULT_ADDRESS_BOOK_MAX_PEERS == 16_384
    assert AddressBook().max_peers == 16_384


def test_insert_merges_in_order_without_duplicates() -> None:
    book = AddressBook()
    assert book.insert(p(1), [a(1), a(2)])
    assert book.insert(p(1), [a(3), a(1), a(3)])
    assert book.lookup(p(1)) == (a(1), a(2), a(3))
    assert book.entry(p(1)) == AddressBookEntry(p(1), (a(1), a(2), a(3)), 2)


def test_unknown_peer() -> None:
    book = AddressBook()
    assert book.lookup(p(1)) == ()
    assert book.entry(p(1)) is None
    assert p(1) not in book
    assert book.remove(p(1)) is False
    book.release(p(1))  # no-op
    assert len(book) == 0


def test_ref_false_does_not_inflate() -> None:
    book = AddressBook()
    book.insert(p(1), [a(1)], ref=False)
    book.insert(p(1), [a(2)], ref=False)
    entry = book.entry(p(1))
    assert entry is not None
    assert entry.ref_count == 0
    book.insert(p(1), [], ref=True)
    book.insert(p(1), [a(3)], ref=False)
    entry = book.entry(p(1))
    assert entry is not None
    assert (entry.ref_count, entry.addresses) == (1, (a(1), a(2), a(3)))


def test_release_floors_at_zero() -> None:
    book = AddressBook()
    book.insert(p(1), [a(1)])
    book.release(p(1))
    book.release(p(1))
    entry = book.entry(p(1))
    assert entry is not None
    assert entry.ref_count == 0
    assert p(1) in book  # release never removes


def test_remove_ignores_ref_count() -> None:
    book = AddressBook()
    book.insert(p(1), [a(1)])
    book.insert(p(1), [a(1)])
    assert book.remove(p(1)) is True
    assert p(1) not in book


def test_cap_evicts_least_recently_inserted_unreferenced() -> None:
    book = AddressBook(max_peers=3)
    book.insert(p(1), [a(1)], ref=False)
    book.insert(p(2), [a(2)], ref=False)
    book.insert(p(3), [a(3)], ref=False)
    book.insert(p(1), [a(11)], ref=False)  # refresh p1: p2 is now least recent
    assert book.insert(p(4), [a(4)])
    assert book.peers() == [p(3), p(1), p(4)]
    assert p(2) not in book


def test_cap_skips_referenced_peers() -> None:
    book = AddressBook(max_peers=3)
    book.insert(p(1), [a(1)])  # referenced, oldest
    book.insert(p(2), [a(2)], ref=False)
    book.insert(p(3), [a(3)])
    assert book.insert(p(4), [a(4)], ref=False)
    assert set(book.peers()) == {p(1), p(3), p(4)}


def test_cap_refuses_when_all_referenced() -> None:
    book = AddressBook(max_peers=2)
    book.insert(p(1), [a(1)])
    book.insert(p(2), [a(2)])
    assert book.insert(p(3), [a(3)]) is False
    assert p(3) not in book
    assert book.insert(p(1), [a(5)]) is True  # existing peers can still be updated
    book.release(p(2))
    assert book.insert(p(3), [a(3)]) is True
    assert set(book.peers()) == {p(1), p(3)}


def test_released_peer_evicted_by_its_insertion_order() -> None:
    book = AddressBook(max_peers=3)
    book.insert(p(1), [a(1)])
    book.insert(p(2), [a(2)], ref=False)
    book.insert(p(3), [a(3)])
    book.release(p(1))  # p1 inserted before p2: evicted first
    assert book.insert(p(4), [])
    assert p(1) not in book
    assert book.insert(p(5), [])
    assert p(2) not in book
    assert book.insert(p(6), []) is False  # p3, p4, p5 referenced


def test_addresses_per_peer_bounded_keeping_newest() -> None:
    book = AddressBook(max_addresses_per_peer=3)
    book.insert(p(1), [a(i) for i in range(5)])
    assert book.lookup(p(1)) == (a(2), a(3), a(4))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_peers": 0}, "max_peers must be >= 1"), ({"max_addresses_per_peer": 0}, ">= 1")],
)
def test_rejects_bad_config(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(FrameworkUsageError, match=match):
        AddressBook(**kwargs)


def test_insert_rejects_bad_arguments() -> None:
    book = AddressBook()
    with pytest.raises(FrameworkUsageError, match="peer must be a PeerId"):
        book.insert("peer", [])  # type: ignore[arg-type]
    with pytest.raises(FrameworkUsageError, match="addresses must be Address"):
        book.insert(p(1), ["/ip4/1.2.3.4"])  # type: ignore[list-item]
    assert len(book) == 0


def test_export_restore_round_trip_keeps_eviction_order() -> None:
    book = AddressBook(max_peers=3)
    book.insert(p(1), [a(1), a(2)], ref=False)
    book.insert(p(2), [a(3)])
    book.insert(p(3), [], ref=False)
    exported = book.export_state()
    assert exported == [
        [p(1).to_bytes(), [a(1).to_bytes(), a(2).to_bytes()], 0],
        [p(2).to_bytes(), [a(3).to_bytes()], 1],
        [p(3).to_bytes(), [], 0],
    ]
    restored = AddressBook.from_state(msgpack.unpackb(msgpack.packb(exported)), max_peers=3)
    assert restored.export_state() == exported
    assert restored.insert(p(4), [])
    assert p(1) not in restored  # same victim as the original would pick
    assert book.insert(p(4), [])
    assert book.export_state() == restored.export_state()


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([[b"\x00", [], 0]], r"address_book\[0\]\.peer"),
        ([[PeerId.from_u64(1).to_bytes(), [b"\xff\xff"], 0]], r"address_book\[0\]\.addresses\[0\]"),
        ([[PeerId.from_u64(1).to_bytes(), [], -1]], r"\.ref_count: must be >= 0"),
        ([[PeerId.from_u64(1).to_bytes(), []]], "expected 3 items"),
        ([[PeerId.from_u64(1).to_bytes(), [], 0]] * 2, "duplicate peer"),
        ([[PeerId.from_u64(n).to_bytes(), [], 0] for n in range(3)], "exceed max_peers 2"),
    ],
)
def test_restore_rejects_bad_rows(rows: object, match: str) -> None:
    book = AddressBook(max_peers=2)
    book.insert(p(9), [a(9)])
    with pytest.raises(FrameworkStateError, match=match):
        book.restore_state(rows)  # type: ignore[arg-type]
    assert book.peers() == [p(9)]


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["ins", "ref", "rel", "rm"]), st.integers(0, 7)), max_size=60
    )
)
def test_cap_never_exceeded_and_referenced_never_evicted(ops: list[tuple[str, int]]) -> None:
    book = AddressBook(max_peers=4)
    for op, n in ops:
        peer = p(n)
        before = {x for x in book.peers() if (e := book.entry(x)) is not None and e.ref_count > 0}
        if op == "ins":
            book.insert(peer, [a(n)], ref=False)
        elif op == "ref":
            book.insert(peer, [a(n)])
        elif op == "rel":
            book.release(peer)
        else:
            book.remove(peer)
            before.discard(peer)
        assert len(book) <= 4
        assert before <= set(book.peers())
    restored = AddressBook.from_state(book.export_state(), max_peers=4)
    assert restored.export_state() == book.export_state()


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=24), head=st.sampled_from([None, (8, 4, 5), (20, 0x29, 17)])
)
def test_restore_accepts_exactly_the_addresses_that_parse(
    data: bytes, head: tuple[int, int, int] | None
) -> None:
    # Restore recognises /ip4|ip6/../tcp/.. by shape and parses the rest only when looked up:
    # it must accept exactly what Address.from_bytes accepts, and look up the same addresses.
    if head is not None:
        size, code, tcp_at = head
        raw = bytearray(data.ljust(size, b"\x00")[:size])
        raw[0], raw[tcp_at] = code, 6
        data = bytes(raw)
    try:
        expected: Address | None = Address.from_bytes(data)
    except IdError:
        expected = None
    book = AddressBook()
    rows = [[p(1).to_bytes(), [data], 0]]
    if expected is None:
        with pytest.raises(FrameworkStateError, match=r"address_book\[0\]\.addresses\[0\]"):
            book.restore_state(rows)
    else:
        book.restore_state(rows)
        assert book.lookup(p(1)) == (expected,)
        assert book.lookup_bytes(p(1)) == (data,)


def test_lookup_after_restore_and_insert_keeps_order_and_cap() -> None:
    book = AddressBook(max_addresses_per_peer=3)
    book.restore_state([[p(1).to_bytes(), [a(1).to_bytes(), a(2).to_bytes()], 1]])
    assert book.lookup(p(1)) == (a(1), a(2))
    book.insert(p(1), [a(2), a(3), a(4)], ref=False)
    assert book.lookup(p(1)) == (a(2), a(3), a(4))
    assert book.lookup_bytes(p(1)) == tuple(x.to_bytes() for x in (a(2), a(3), a(4)))
    assert book.export_state() == [[p(1).to_bytes(), [a(n).to_bytes() for n in (2, 3, 4)], 1]]


def test_peers_and_export_follow_insertion_order_after_reinsert() -> None:
    book = AddressBook()
    for n in (1, 2, 3):
        book.insert(p(n), [a(n)])
    book.insert(p(1), [a(9)])
    assert book.peers() == [p(2), p(3), p(1)]
    assert [row[0] for row in book.export_state()] == [p(n).to_bytes() for n in (2, 3, 1)]
    restored = AddressBook.from_state(book.export_state())
    assert restored.peers() == book.peers()
    assert restored.lookup(p(1)) == (a(1), a(9))
