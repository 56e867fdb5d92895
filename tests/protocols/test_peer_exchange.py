"""Peer exchange: wire schema, validation (fuzzed), and the learned-peer table."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.engine import Component, Immediate, steps
from bbnode.ids import Address, PeerId
from bbnode.protocols.peer_exchange import (
    LEARNED_TOPIC,
    MAX_ADDRESSES_PER_MESSAGE,
    MAX_ADDRESSES_PER_PEER,
    MAX_PEERS_PER_MESSAGE,
    PeerExchange,
    PeerRecord,
    PexLimits,
    PexLocalError,
    PexRemoteError,
    PexTable,
    decode_pex,
    encode_pex,
)
from tests.protocols._mesh import Mesh

P1, P2, P3, P4 = (PeerId.from_u64(n) for n in (1, 2, 3, 4))
A1 = Address.from_string("/ip4/127.0.0.1/tcp/7401")
A2 = Address.from_string("/ip4/127.0.0.1/tcp/7402")
A3 = Address.from_string("/ip4/127.0.0.1/tcp/7403")


def never_blocked(peer: PeerId) -> bool:
    return False


def entry(peer: PeerId, *addrs: Address) -> dict[str, Any]:
    return {"peer": peer.to_bytes(), "addrs": [a.to_bytes() for a in addrs]}


# --- schema ----------------------------------------------------------------------------------


def test_round_trip_through_msgpack() -> None:
    records = [PeerRecord(P1, (A1,)), PeerRecord(P2, (A2, A3))]
    wire = msgpack.unpackb(msgpack.packb(encode_pex(records)), raw=False)
    assert decode_pex(wire) == (decode_pex(encode_pex(records)))
    message = decode_pex(wire)
    assert message.records == tuple(records)
    assert message.rejected == ()


def test_p2p_suffix_of_the_same_peer_is_accepted_and_stripped() -> None:
    message = decode_pex({"v": 1, "peers": [entry(P1, A1.with_peer(P1))]})
    assert message.records == (PeerRecord(P1, (A1,)),)
    assert message.records[0].dial_addresses() == (A1.with_peer(P1),)


def test_address_naming_another_peer_rejects_that_entry_only() -> None:
    message = decode_pex({"v": 1, "peers": [entry(P1, A1.with_peer(P2)), entry(P3, A3)]})
    assert message.records == (PeerRecord(P3, (A3,)),)
    [rejected] = message.rejected
    assert rejected.index == 0
    assert "names another peer" in str(rejected.error)
    assert str(P2) in str(rejected.error)


@pytest.mark.parametrize(
    ("bad_entry", "needle"),
    [
        ("nope", "entry must be a map"),
        ({"addrs": []}, "'peer' must be bytes"),
        ({"peer": b"\x00\x05ab", "addrs": [A1.to_bytes()]}, "bad peer id"),
        ({"peer": P1.to_bytes(), "addrs": "x"}, "'addrs' must be a list"),
        ({"peer": P1.to_bytes(), "addrs": []}, "has no addresses"),
        ({"peer": P1.to_bytes(), "addrs": ["/ip4/1.2.3.4/tcp/1"]}, "address must be bytes"),
        ({"peer": P1.to_bytes(), "addrs": [b"\xff\xff"]}, "bad address"),
        ({"peer": P1.to_bytes(), "addrs": [b"\x04" + b"\x00" * 300]}, "301 bytes (at most 256)"),
        (
            {"peer": P1.to_bytes(), "addrs": [Address.from_string("/ip4/1.2.3.4").to_bytes()]},
            "not a tcp address",
        ),
        (entry(P1, *[Address.tcp("10.0.0.1", p) for p in range(1, 6)]), "has 5 addresses"),
        (entry(P1, Address.tcp("0.0.0.0", 7400)), "is not dialable"),
        (entry(P1, Address.tcp("::", 7400)), "is not dialable"),
        (entry(P1, Address.tcp("10.0.0.1", 0)), "is not dialable"),
    ],
)
def test_bad_entries_are_rejected_with_a_reason(bad_entry: object, needle: str) -> None:
    message = decode_pex({"v": 1, "peers": [bad_entry, entry(P2, A2)]})
    assert message.records == (PeerRecord(P2, (A2,)),)
    [rejected] = message.rejected
    assert rejected.index == 0
    assert isinstance(rejected.error, PexRemoteError)
    assert needle in str(rejected.error)


def test_duplicate_peer_keeps_the_first_entry() -> None:
    message = decode_pex({"v": 1, "peers": [entry(P1, A1), entry(P1, A2)]})
    assert message.records == (PeerRecord(P1, (A1,)),)
    assert [r.index for r in message.rejected] == [1]
    assert "listed twice" in str(message.rejected[0].error)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ([], "must be a map"),
        ({"peers": []}, "unsupported schema version None"),
        ({"v": 2, "peers": []}, "unsupported schema version 2"),
        ({"v": 1, "peers": {}}, "'peers' must be a list"),
        (
            {"v": 1, "peers": [entry(PeerId.from_u64(n), A1) for n in range(33)]},
            f"33 peers in one message (at most {MAX_PEERS_PER_MESSAGE})",
        ),
    ],
)
def test_bad_messages_raise(value: object, needle: str) -> None:
    with pytest.raises(PexRemoteError) as info:
        decode_pex(value)
    assert needle in str(info.value)


def test_total_address_cap_rejects_the_message() -> None:
    limits = PexLimits(max_addresses_per_message=3)
    value = {"v": 1, "peers": [entry(P1, A1, A2), entry(P2, A2, A3)]}
    with pytest.raises(PexRemoteError, match="4 addresses in one message"):
        decode_pex(value, limits)
    assert MAX_ADDRESSES_PER_MESSAGE >= MAX_PEERS_PER_MESSAGE


def test_limits_are_validated() -> None:
    with pytest.raises(PexLocalError, match="max_known_peers must be an int >= 1"):
        PexLimits(max_known_peers=0)


# --- fuzz ------------------------------------------------------------------------------------

_peer_bytes = st.one_of(
    st.integers(0, 2**64 - 1).map(lambda n: PeerId.from_u64(n).to_bytes()),
    st.binary(max_size=40),
)
_addr_bytes = st.one_of(
    st.builds(
        lambda h, p: Address.tcp(h, p).to_bytes(),
        st.ip_addresses(v=4).map(str),
        st.integers(0, 65535),
    ),
    st.builds(lambda n: A1.with_peer(PeerId.from_u64(n)).to_bytes(), st.integers(0, 9)),
    st.binary(max_size=40),
)
_junk = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.binary(max_size=5))
_entry = st.one_of(
    st.fixed_dictionaries({"peer": _peer_bytes, "addrs": st.lists(_addr_bytes, max_size=6)}),
    st.dictionaries(st.sampled_from(["peer", "addrs", "x"]), _junk, max_size=3),
    _junk,
)
_message = st.one_of(
    st.fixed_dictionaries(
        {"v": st.sampled_from([1, 1, 1, 2, None]), "peers": st.lists(_entry, max_size=40)}
    ),
    _junk,
    st.lists(_entry, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(_message)
def test_fuzz_decode_parses_or_raises_the_remote_error(value: object) -> None:
    try:
        message = decode_pex(value)
    except PexRemoteError:
        return
    assert len(message.records) + len(message.rejected) <= MAX_PEERS_PER_MESSAGE
    assert len({r.peer for r in message.records}) == len(message.records)
    for record in message.records:
        assert 1 <= len(record.addresses) <= MAX_ADDRESSES_PER_PEER
        for address in record.addresses:
            assert address.peer_id is None
            assert address.tcp_endpoint() is not None
    for rejected in message.rejected:
        assert isinstance(rejected.error, PexRemoteError)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_msgpack_bytes(data: bytes) -> None:
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        return
    with contextlib.suppress(PexRemoteError):
        decode_pex(value)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 60), st.integers(1, 9000)), max_size=60))
def test_fuzz_table_never_stores_self_blocked_or_more_than_caps(
    pairs: list[tuple[int, int]],
) -> None:
    limits = PexLimits(max_known_peers=20, max_addresses_per_peer=2)
    table = PexTable(P1, [A1], limits)
    blocked = {PeerId.from_u64(n) for n in range(50, 61)}
    records = [PeerRecord(PeerId.from_u64(n), (Address.tcp("10.0.0.1", p),)) for n, p in pairs]
    table.learn(records, blocked.__contains__)
    assert len(table) <= 20
    assert P1 not in table
    assert not blocked & set(table.peers())
    for peer in table.peers():
        assert 1 <= len(table.addresses(peer)) <= 2
        shared = table.share(peer, blocked.__contains__)
        assert peer not in {r.peer for r in shared[1:]}
        assert decode_pex(encode_pex(shared)).records == tuple(shared)


# --- table -----------------------------------------------------------------------------------


def test_learn_reports_new_peers_and_new_addresses_only() -> None:
    table = PexTable(P1, [A1])
    assert table.learn([PeerRecord(P2, (A2,))], never_blocked) == [PeerRecord(P2, (A2,))]
    assert table.learn([PeerRecord(P2, (A2,))], never_blocked) == []
    assert table.learn([PeerRecord(P2, (A3,))], never_blocked) == [PeerRecord(P2, (A2, A3))]
    assert table.learn([PeerRecord(P1, (A3,))], never_blocked) == []
    assert table.peers() == [P2]


def test_learn_skips_blocked_and_drop_forgets() -> None:
    table = PexTable(P1)
    learned = table.learn([PeerRecord(P2, (A2,)), PeerRecord(P3, (A3,))], {P3}.__contains__)
    assert learned == [PeerRecord(P2, (A2,))]
    assert table.drop(P2) is True
    assert table.drop(P2) is False
    assert len(table) == 0


def test_full_table_ignores_newcomers_and_keeps_known_peers() -> None:
    table = PexTable(P1, limits=PexLimits(max_known_peers=2))
    table.learn([PeerRecord(P2, (A2,)), PeerRecord(P3, (A3,))], never_blocked)
    assert table.learn([PeerRecord(P4, (A1,))], never_blocked) == []
    assert table.peers() == sorted([P2, P3])
    assert table.learn([PeerRecord(P2, (A1,))], never_blocked) == [PeerRecord(P2, (A2, A1))]


def test_share_puts_self_first_and_never_the_recipient_or_blocked() -> None:
    table = PexTable(P1, [A1.with_peer(P1), A1])
    table.learn([PeerRecord(P2, (A2,)), PeerRecord(P3, (A3,))], never_blocked)
    assert table.share(P2, never_blocked) == [PeerRecord(P1, (A1,)), PeerRecord(P3, (A3,))]
    assert table.share(P4, {P2}.__contains__) == [PeerRecord(P1, (A1,)), PeerRecord(P3, (A3,))]


def test_share_rotates_through_a_table_larger_than_one_message() -> None:
    limits = PexLimits(max_peers_per_message=3)
    table = PexTable(P1, [A1], limits)
    others = [PeerId.from_u64(n) for n in range(10, 17)]
    table.learn([PeerRecord(p, (A2,)) for p in others], never_blocked)
    seen: set[PeerId] = set()
    for _ in range(4):
        shared = table.share(P4, never_blocked)
        assert shared[0].peer == P1
        assert len(shared) == 3
        seen.update(r.peer for r in shared[1:])
    assert seen == set(others)


def test_wildcard_own_addresses_are_not_shared() -> None:
    table = PexTable(P1, [Address.tcp("0.0.0.0", 7400), A1])
    assert table.self_addresses == (A1,)


def test_own_addresses_are_validated() -> None:
    with pytest.raises(PexLocalError, match="names another peer"):
        PexTable(P1, [A1.with_peer(P2)])
    with pytest.raises(PexLocalError, match="not a tcp address"):
        PexTable(P1, [Address.from_string("/ip4/1.2.3.4")])


def test_table_serialize_restore_round_trip_and_damage() -> None:
    table = PexTable(P1, [A1])
    table.learn([PeerRecord(P2, (A2, A3)), PeerRecord(P3, (A3,))], never_blocked)
    table.share(P4, never_blocked)
    state = msgpack.unpackb(msgpack.packb(table.serialize()), raw=False)
    other = PexTable(P1, [A1])
    other.restore(state)
    assert other.serialize() == table.serialize()
    assert other.addresses(P2) == (A2, A3)
    with pytest.raises(PexLocalError, match="bad saved state"):
        other.restore({"known": [[b"\x00", [A1.to_bytes()]]]})
    with pytest.raises(PexLocalError, match="bad saved state"):
        other.restore({})


# --- the component on a mesh of real Nodes ---------------------------------------------------

INTERVAL_NS = 1_000_000_000


class _Raw(Component):
    """Sends whatever value it is given to a peer's peer_exchange (a misbehaving peer)."""

    TYPE_NAME = "raw"
    OPS = ("send",)

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: Any) -> Immediate:
        ctx.send([PeerId.from_bytes(inputs["to"])], "peer_exchange", "exchange", inputs["value"])
        return Immediate()


def _pex_mesh() -> tuple[Mesh, dict[PeerId, PeerExchange]]:
    components: dict[PeerId, PeerExchange] = {}

    def factory(peer: PeerId, address: Address) -> list[Component]:
        components[peer] = PeerExchange(peer, [address], interval_ns=INTERVAL_NS)
        return [components[peer], _Raw()]

    return Mesh(factory), components


def test_five_node_mesh_with_one_bootstrap_peer_converges() -> None:
    mesh, pex = _pex_mesh()
    boot = mesh.add(1)
    peers = [boot, *(mesh.add(n, knows=[boot]) for n in range(2, 6))]
    for peer in peers:
        mesh.node(peer).invoke("peer_exchange", "start", {})
    mesh.run(INTERVAL_NS + 1)
    for peer in peers:
        assert pex[peer].table.peers() == sorted(set(peers) - {peer})
        learned = {e["peer"] for e in mesh.events(peer, LEARNED_TOPIC)}
        assert learned == {str(p) for p in peers if p != peer}
        for other in set(peers) - {peer}:
            health = mesh.node(peer).peer_health(other)
            assert health is None or not health.down
    # Every learned address is the peer's real one, with its /p2p suffix in the event.
    event = next(e for e in mesh.events(peers[1], LEARNED_TOPIC) if e["peer"] == str(peers[4]))
    assert event["addresses"] == [str(mesh.members[peers[4]].address.with_peer(peers[4]))]


def test_blocked_peer_is_neither_stored_nor_shared() -> None:
    mesh, pex = _pex_mesh()
    boot = mesh.add(1)
    two = mesh.add(2, knows=[boot])
    three = mesh.add(3, knows=[boot])
    mesh.node(boot).block_peer(three)
    for peer in (boot, two, three):
        mesh.node(peer).invoke("peer_exchange", "start", {})
    mesh.run(3 * INTERVAL_NS)
    assert pex[boot].table.peers() == [two]
    assert pex[two].table.peers() == [boot]
    assert three not in pex[two].table


def test_runtime_block_drops_a_known_peer_at_the_next_round() -> None:
    mesh, pex = _pex_mesh()
    boot = mesh.add(1)
    two, three = mesh.add(2, knows=[boot]), mesh.add(3, knows=[boot])
    for peer in (boot, two, three):
        mesh.node(peer).invoke("peer_exchange", "start", {})
    mesh.run(INTERVAL_NS + 1)
    assert three in pex[two].table
    mesh.node(two).block_peer(three)
    mesh.run(INTERVAL_NS)
    assert three not in pex[two].table


def test_bad_messages_and_entries_from_a_peer_are_counted_and_dropped() -> None:
    mesh, pex = _pex_mesh()
    one, two = mesh.add(1), mesh.add(2)
    mesh.node(two).add_peer(one, [mesh.members[one].address])
    liar = {"v": 1, "peers": [entry(P3, A3.with_peer(P4)), entry(P4, A1)]}
    for value in ({"v": 7}, liar):
        mesh.node(two).invoke("raw", "send", {"to": one.to_bytes(), "value": value})
        mesh.run(1)
    outputs = [
        s.outputs for s in mesh.members[one].steps if isinstance(s, steps.OpCompleted) and s.outputs
    ]
    assert outputs[0] == {"error": "peer exchange: unsupported schema version 7 (expected 1)"}
    assert outputs[1] == {"learned": [str(P4)], "rejected": 1}
    # Node two answered node one's first-contact reply with its own share, so it is known too.
    assert pex[one].table.peers() == sorted([two, P4])


def test_component_state_survives_a_snapshot_restore() -> None:
    mesh, pex = _pex_mesh()
    boot = mesh.add(1)
    two, three = mesh.add(2, knows=[boot]), mesh.add(3, knows=[boot])
    for peer in (boot, two, three):
        mesh.node(peer).invoke("peer_exchange", "start", {})
    mesh.run(INTERVAL_NS + 1)
    before = pex[two].serialize()
    mesh.restart(two, mesh.stop(two))
    assert pex[two].serialize() == before
    assert pex[two].table.peers() == sorted([boot, three])
    with pytest.raises(PexLocalError, match="saved state must be a map"):
        pex[two].restore([])
