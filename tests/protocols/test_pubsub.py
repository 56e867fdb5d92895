"""Pubsub: message schema (fuzzed), topic rules, and the ordering/exactly-once inbox."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.engine import Component, steps
from bbnode.ids import Address, PeerId
from bbnode.protocols.pubsub import (
    DEFAULT_HOPS,
    MAX_DATA_BYTES,
    MAX_TOPIC_BYTES,
    Inbox,
    Pubsub,
    PubsubLocalError,
    PubsubMessage,
    PubsubRemoteError,
    decode_message,
    encode_message,
    forwarded,
    message_id,
    validate_topic,
)
from tests.protocols._mesh import Mesh

ORIGIN = PeerId.from_u64(7)
OTHER = PeerId.from_u64(8)
WINDOW = 1_000


def msg(seq: int, origin: PeerId = ORIGIN, epoch: int = 1, hops: int = 3) -> PubsubMessage:
    return PubsubMessage("news", origin, epoch, seq, hops, f"m{seq}".encode())


def seqs(messages: list[PubsubMessage]) -> list[int]:
    return [m.seq for m in messages]


# --- schema ----------------------------------------------------------------------------------


def test_round_trip_through_msgpack() -> None:
    message = PubsubMessage("t/1", ORIGIN, 2**64 - 1, 5, DEFAULT_HOPS, b"\x00data")
    wire = msgpack.unpackb(msgpack.packb(encode_message(message)), raw=False)
    assert decode_message(wire) == message


def test_message_id_is_stable_and_distinct() -> None:
    assert msg(1).id == message_id(ORIGIN, 1, 1)
    assert msg(1).id == b"pubsub/" + ORIGIN.to_bytes() + (1).to_bytes(8, "big") * 2
    ids = {msg(1).id, msg(2).id, msg(1, epoch=2).id, msg(1, origin=OTHER).id}
    assert len(ids) == 4


@pytest.mark.parametrize(
    ("topic", "needle"),
    [
        (3, "topic must be a string, got int"),
        ("", "topic is empty"),
        ("x" * (MAX_TOPIC_BYTES + 1), f"longer than {MAX_TOPIC_BYTES} bytes"),
        ("bb.peer_exchange.learned", "is reserved"),
        ("a\nb", "control character"),
    ],
)
def test_bad_topics(topic: object, needle: str) -> None:
    with pytest.raises(PubsubLocalError) as info:
        validate_topic(topic)
    assert needle in str(info.value)
    with pytest.raises(PubsubRemoteError):
        validate_topic(topic, PubsubRemoteError)


def test_good_topic() -> None:
    assert validate_topic("chat/room-1 ü") == "chat/room-1 ü"


def _wire(**changes: object) -> dict[str, object]:
    value: dict[str, object] = encode_message(msg(1))
    value.update(changes)
    return value


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ([], "message must be a map, got list"),
        (_wire(v=9), "unsupported schema version 9"),
        (_wire(topic="bb.x"), "reserved"),
        (_wire(origin="peer"), "'origin' must be bytes"),
        (_wire(origin=b"\x00\x09"), "bad origin peer id"),
        (_wire(epoch=-1), "'epoch' must be an integer"),
        (_wire(seq=0), "'seq' must be an integer in [1,"),
        (_wire(seq=True), "'seq' must be an integer"),
        (_wire(hops=0), "'hops' must be an integer in [1, 16]"),
        (_wire(hops=17), "'hops' must be an integer in [1, 16]"),
        (_wire(data="text"), "'data' must be bytes"),
        (_wire(data=b"x" * (MAX_DATA_BYTES + 1)), f"at most {MAX_DATA_BYTES}"),
    ],
)
def test_bad_messages(value: object, needle: str) -> None:
    with pytest.raises(PubsubRemoteError) as info:
        decode_message(value)
    assert needle in str(info.value)


_junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.binary(max_size=12)
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.just(1), _junk),
        "topic": st.one_of(st.text(max_size=10), _junk),
        "origin": st.one_of(st.integers(0, 99).map(lambda n: PeerId.from_u64(n).to_bytes()), _junk),
        "epoch": st.one_of(st.integers(-2, 2**65), _junk),
        "seq": st.one_of(st.integers(-2, 2**65), _junk),
        "hops": st.one_of(st.integers(-2, 20), _junk),
        "data": st.one_of(st.binary(max_size=20), _junk),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_fields, _junk))
def test_fuzz_decode_parses_or_raises_the_remote_error(value: object) -> None:
    try:
        message = decode_message(value)
    except PubsubRemoteError:
        return
    assert decode_message(encode_message(message)) == message
    assert 1 <= message.hops <= 16
    assert message.seq >= 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_arbitrary_msgpack_bytes(data: bytes) -> None:
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        return
    with contextlib.suppress(PubsubRemoteError):
        decode_message(value)


def test_forwarded_uses_one_hop() -> None:
    assert forwarded(msg(1, hops=3)) == msg(1, hops=2)
    assert forwarded(msg(1, hops=1)) is None


# --- inbox -----------------------------------------------------------------------------------


def test_in_order_delivery_and_duplicates() -> None:
    inbox = Inbox(WINDOW)
    assert inbox.accept(msg(1), 0) == ("new", [msg(1)])
    assert inbox.accept(msg(2), 0) == ("new", [msg(2)])
    assert inbox.accept(msg(1, hops=1), 5) == ("duplicate", [])
    assert inbox.next_seq(ORIGIN, 1) == 3
    assert inbox.next_deadline_ns() is None


def test_gap_waits_then_fills_in_order() -> None:
    inbox = Inbox(WINDOW)
    assert inbox.accept(msg(2), 10) == ("new", [])
    assert inbox.accept(msg(3), 20) == ("new", [])
    assert inbox.accept(msg(3), 25) == ("duplicate", [])
    assert inbox.next_deadline_ns() == 10 + WINDOW
    verdict, out = inbox.accept(msg(1), 30)
    assert (verdict, seqs(out)) == ("new", [1, 2, 3])
    assert inbox.next_deadline_ns() is None


def test_gap_given_up_after_the_window() -> None:
    inbox = Inbox(WINDOW)
    inbox.accept(msg(1), 0)
    inbox.accept(msg(3), 100)
    inbox.accept(msg(5), 200)
    assert inbox.expire(100 + WINDOW - 1) == []
    assert seqs(inbox.expire(100 + WINDOW)) == [3]
    assert inbox.next_deadline_ns() == 200 + WINDOW
    assert seqs(inbox.expire(200 + WINDOW)) == [5]
    assert inbox.accept(msg(2), 3000) == ("duplicate", [])
    assert inbox.accept(msg(4), 3000) == ("duplicate", [])
    assert inbox.accept(msg(6), 3000) == ("new", [msg(6)])


def test_full_buffer_skips_the_gap_at_once() -> None:
    inbox = Inbox(WINDOW, max_buffered=2)
    inbox.accept(msg(3), 0)
    inbox.accept(msg(4), 0)
    verdict, out = inbox.accept(msg(6), 0)
    assert (verdict, seqs(out)) == ("new", [3, 4])
    assert inbox.next_seq(ORIGIN, 1) == 5


def test_streams_are_independent_and_capped() -> None:
    inbox = Inbox(WINDOW, max_streams=2)
    inbox.accept(msg(1), 0)
    inbox.accept(msg(1, epoch=2), 1)
    inbox.accept(msg(1, origin=OTHER), 2)  # evicts the least recently active stream
    assert inbox.next_seq(ORIGIN, 1) == 1
    assert inbox.next_seq(ORIGIN, 2) == 2
    assert inbox.next_seq(OTHER, 1) == 2


def test_inbox_serialize_restore_keeps_positions_and_waiting_messages() -> None:
    inbox = Inbox(WINDOW)
    inbox.accept(msg(1), 0)
    inbox.accept(msg(3), 50)
    state = msgpack.unpackb(msgpack.packb(inbox.serialize()), raw=False)
    other = Inbox(WINDOW)
    other.restore(state)
    assert other.accept(msg(1), 60) == ("duplicate", [])
    assert other.accept(msg(3), 60) == ("duplicate", [])
    assert other.next_deadline_ns() == 50 + WINDOW
    assert seqs(other.accept(msg(2), 70)[1]) == [2, 3]
    with pytest.raises(PubsubLocalError, match="bad saved inbox state"):
        other.restore([[b"\x00", 1, 1, 0, []]])


def test_inbox_arguments_are_validated() -> None:
    with pytest.raises(PubsubLocalError, match="window must be >= 0"):
        Inbox(-1)


@settings(max_examples=150, deadline=None)
@given(st.permutations(list(range(1, 13))), st.lists(st.integers(1, 12), max_size=10))
def test_fuzz_any_arrival_order_delivers_each_message_once_in_order(
    order: list[int], repeats: list[int]
) -> None:
    inbox = Inbox(WINDOW)
    delivered: list[int] = []
    for now, seq in enumerate([*order, *repeats]):
        delivered += seqs(inbox.accept(msg(seq), now)[1])
    delivered += seqs(inbox.expire(10**9))
    assert len(delivered) == len(set(delivered))
    assert delivered == sorted(delivered)
    # Nothing waits past the window, and without expiry every message arrives (no loss).
    assert delivered == list(range(1, 13))


# --- the component on a mesh of real Nodes ---------------------------------------------------


def _pubsub_mesh(
    n: int, links: list[tuple[int, int]] | None = None, hops: int = DEFAULT_HOPS
) -> tuple[Mesh, list[PeerId], dict[PeerId, Pubsub]]:
    """`n` nodes; `links` (default: all pairs) says who knows whom (both ways)."""
    components: dict[PeerId, Pubsub] = {}

    def factory(peer: PeerId, address: Address) -> list[Component]:
        components[peer] = Pubsub(hops=hops, reorder_window_ns=WINDOW)
        return [components[peer]]

    mesh = Mesh(factory)
    peers = [mesh.add(i) for i in range(1, n + 1)]
    pairs = (
        links
        if links is not None
        else [(a, b) for a in range(1, n + 1) for b in range(a + 1, n + 1)]
    )
    for a, b in pairs:
        pa, pb = peers[a - 1], peers[b - 1]
        mesh.node(pa).add_peer(pb, [mesh.members[pb].address])
        mesh.node(pb).add_peer(pa, [mesh.members[pa].address])
    return mesh, peers, components


def publish(mesh: Mesh, peer: PeerId, data: bytes, topic: str = "news") -> None:
    mesh.node(peer).invoke("pubsub", "publish", {"topic": topic, "data": data})


def delivered(mesh: Mesh, peer: PeerId, topic: str = "news") -> list[tuple[str, bytes]]:
    return [(e["origin"], e["data"]) for e in mesh.events(peer, topic)]


def test_every_node_gets_every_message_once_in_order_per_publisher() -> None:
    mesh, peers, _ = _pubsub_mesh(5)
    a, c = peers[0], peers[2]
    for i in range(1, 6):
        publish(mesh, a, b"a%d" % i)
        publish(mesh, c, b"c%d" % i)
        mesh.run(1)
    expected_a = [(str(a), b"a%d" % i) for i in range(1, 6)]
    expected_c = [(str(c), b"c%d" % i) for i in range(1, 6)]
    for peer in peers:
        got = delivered(mesh, peer)
        assert [x for x in got if x[0] == str(a)] == expected_a
        assert [x for x in got if x[0] == str(c)] == expected_c
        assert len(got) == 10
    seqs_on_b = [e["seq"] for e in mesh.events(peers[1]) if e["origin"] == str(a)]
    assert seqs_on_b == [1, 2, 3, 4, 5]


def test_flood_crosses_a_chain_within_the_hop_limit() -> None:
    mesh, peers, _ = _pubsub_mesh(5, links=[(1, 2), (2, 3), (3, 4), (4, 5)])
    publish(mesh, peers[0], b"far")
    mesh.run(1)
    for peer in peers:
        assert delivered(mesh, peer) == [(str(peers[0]), b"far")]


def test_hop_limit_stops_the_flood() -> None:
    mesh, peers, _ = _pubsub_mesh(4, links=[(1, 2), (2, 3), (3, 4)], hops=2)
    publish(mesh, peers[0], b"short")
    mesh.run(1)
    assert [len(delivered(mesh, p)) for p in peers] == [1, 1, 1, 0]


def test_restart_from_snapshot_never_redelivers() -> None:
    mesh, peers, _ = _pubsub_mesh(5)
    a, d = peers[0], peers[3]
    for i in range(1, 4):
        publish(mesh, a, b"m%d" % i)
    mesh.run(1)
    inbound_before = list(mesh.members[d].inbound)
    mesh.restart(d, mesh.stop(d))
    # Every envelope it got before the restart arrives again (a peer re-sending after a
    # reconnect): none may be delivered a second time.
    for src, data in inbound_before:
        mesh.node(d).deliver_inbound(src, data)
    for i in range(4, 7):
        publish(mesh, a, b"m%d" % i)
    mesh.run(2 * WINDOW)
    assert delivered(mesh, d) == [(str(a), b"m%d" % i) for i in range(1, 7)]
    for peer in peers:
        assert delivered(mesh, peer) == [(str(a), b"m%d" % i) for i in range(1, 7)]


def test_restarted_publisher_keeps_its_sequence() -> None:
    mesh, peers, comps = _pubsub_mesh(3)
    a = peers[0]
    publish(mesh, a, b"before")
    mesh.run(1)
    epoch = comps[a].epoch
    mesh.restart(a, mesh.stop(a))
    assert (comps[a].epoch, comps[a].next_seq) == (epoch, 2)
    publish(mesh, a, b"after")
    mesh.run(1)
    for peer in peers:
        assert [e["seq"] for e in mesh.events(peer)] == [1, 2]


def test_blocked_publisher_reaches_nobody() -> None:
    # 5 -- 1 -- 2 -- 3 -- 4 : node 5's only link is node 1, which blocks it.
    mesh, peers, _ = _pubsub_mesh(5, links=[(1, 2), (2, 3), (3, 4), (1, 5)])
    mesh.node(peers[0]).block_peer(peers[4])
    publish(mesh, peers[4], b"spam")
    mesh.run(1)
    for peer in peers[:4]:
        assert delivered(mesh, peer) == []


def test_blocked_origin_is_not_delivered_or_forwarded_by_a_relay() -> None:
    # 5 -- 1 -- 2 -- 3 : node 2 blocks node 5, so node 3 (behind it) never sees 5's messages.
    mesh, peers, _ = _pubsub_mesh(5, links=[(1, 2), (2, 3), (1, 5)])
    mesh.node(peers[1]).block_peer(peers[4])
    publish(mesh, peers[4], b"from five")
    mesh.run(1)
    assert delivered(mesh, peers[0]) == [(str(peers[4]), b"from five")]
    assert delivered(mesh, peers[1]) == []
    assert delivered(mesh, peers[2]) == []


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        ({"topic": "bb.internal", "data": b"x"}, "is reserved"),
        ({"topic": "", "data": b"x"}, "topic is empty"),
        ({"topic": "t", "data": "text"}, "data must be bytes, got str"),
        ({"topic": "t", "data": b"x" * (MAX_DATA_BYTES + 1)}, "byte limit"),
    ],
)
def test_bad_publish_fails_the_op_naming_the_problem(inputs: dict[str, Any], needle: str) -> None:
    mesh, peers, _ = _pubsub_mesh(2)
    mesh.node(peers[0]).invoke("pubsub", "publish", inputs)
    mesh.run(1)
    [failed] = [s for s in mesh.members[peers[0]].steps if isinstance(s, steps.OpFailed)]
    assert needle in failed.error.detail
    assert delivered(mesh, peers[1]) == []


def test_component_rejects_damaged_state() -> None:
    with pytest.raises(PubsubLocalError, match="next_seq"):
        Pubsub().restore({"epoch": 1, "next_seq": 0})
    with pytest.raises(PubsubLocalError, match="hops must be in"):
        Pubsub(hops=0)
