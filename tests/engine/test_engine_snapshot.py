"""Snapshot schema, encoding and restore rules (SPEC §3.7)."""

from __future__ import annotations

import dataclasses
import re

import msgpack
import pytest

from bbnode.engine import (
    CURRENT_SNAPSHOT_SPEC_VERSION,
    Node,
    NodeConfig,
    NodeSnapshot,
    RestoreError,
    SnapshotDecodeError,
    SpecVersionMismatch,
)
from bbnode.engine.envelope import SlotFill, WireEnvelope
from bbnode.engine.errors import InvalidInput
from bbnode.engine.snapshot import FrameworkSnapshot, TransientSnapshot
from bbnode.engine.steps import SendEnvelope
from bbnode.ids import Address, PeerId
from tests.engine.sample_components import Worker

ME = PeerId.from_u64(100)
P1 = PeerId.from_u64(1)
P2 = PeerId.from_u64(2)


def _node(config: NodeConfig | None = None) -> Node:
    node = Node(ME, [Address.tcp("127.0.0.1", 7400)], config or NodeConfig(rng_seed=5))
    node.install(Worker())
    return node


def test_seed_field_names_and_roundtrip() -> None:
    node = _node()
    node.add_peer(P1, [Address.tcp("10.0.0.1", 1)])
    node.block_peer(P2, until_ns=99)
    node.dial_failed(P1, None, "refused")
    node.poll()
    snap = node.snapshot()
    raw = msgpack.unpackb(snap.encode(), strict_map_key=False)
    assert set(raw) >= {"incarnation", "config", "components", "transient"}
    assert set(raw["transient"]) >= {
        "frontier", "slot_table", "pending_async", "execution_state", "framework", "bus",
        "ingress", "wire_states", "pending_completions",
    }  # fmt: skip
    assert set(raw["transient"]["framework"]) >= {
        "counters", "fired_phases", "address_book", "peer_governor", "backoff_table",
        "pending_outbound", "peer_id_bytes", "next_command_id", "next_exec_id", "spec_version",
    }  # fmt: skip
    decoded = NodeSnapshot.decode(snap.encode())
    assert decoded == snap
    fw = decoded.transient.framework
    assert fw.spec_version == CURRENT_SNAPSHOT_SPEC_VERSION
    assert fw.peer_id_bytes == ME.to_bytes()
    assert fw.address_book[0].peer_id == P1.to_bytes()
    assert fw.address_book[0].ref_count == 1
    assert fw.backoff_table[0].attempts == 1
    assert fw.peer_governor.blocklist == [P2.to_bytes()]
    assert fw.peer_governor.block_entries[0] == (P2.to_bytes(), 99, "runtime")


def test_missing_new_fields_take_defaults() -> None:
    old = {"incarnation": 3, "transient": {"framework": {"peer_id_bytes": ME.to_bytes()}}}
    snap = NodeSnapshot.decode(msgpack.packb(old))
    assert snap.incarnation == 3
    assert snap.transient.framework.spec_version == CURRENT_SNAPSHOT_SPEC_VERSION
    assert snap.transient.framework.timers == []


def test_decode_errors() -> None:
    with pytest.raises(SnapshotDecodeError, match="msgpack"):
        NodeSnapshot.decode(b"\xc1")
    with pytest.raises(SnapshotDecodeError, match="snapshot: expected a map"):
        NodeSnapshot.decode(msgpack.packb([1, 2]))
    with pytest.raises(SnapshotDecodeError, match="incarnation"):
        NodeSnapshot.decode(msgpack.packb({"incarnation": "x"}))
    bad_rows = {"transient": {"framework": {"address_book": [[b"x"]]}}}
    with pytest.raises(SnapshotDecodeError, match="address_book"):
        NodeSnapshot.decode(msgpack.packb(bad_rows))
    future = {"transient": {"framework": {"spec_version": 2, "address_book": "new layout"}}}
    with pytest.raises(SpecVersionMismatch) as info:
        NodeSnapshot.decode(msgpack.packb(future))
    assert (info.value.got, info.value.expected) == (2, 1)


def test_restore_checks_identity_components_and_version() -> None:
    snap = _node().snapshot()
    with pytest.raises(RestoreError, match="belongs to peer"):
        Node.from_snapshot(snap, components=[Worker()], peer_id=P1)
    with pytest.raises(RestoreError, match="not supplied"):
        Node.from_snapshot(snap, components=[])
    fw = dataclasses.replace(snap.transient.framework, spec_version=9)
    wrong = dataclasses.replace(snap, transient=dataclasses.replace(snap.transient, framework=fw))
    with pytest.raises(SpecVersionMismatch):
        Node.from_snapshot(wrong, components=[Worker()])


def test_restore_bumps_incarnation_and_ids_and_rebuilds_policy() -> None:
    node = _node(NodeConfig(rng_seed=5, blocklist=frozenset({P1})))
    node.block_peer(P2)
    node.invoke("worker", "act", {"do": "emit", "value": 1})
    node.poll()
    snap = node.snapshot()
    restored = Node.from_snapshot(snap, NodeConfig(rng_seed=5), [Worker()])
    assert restored.incarnation == 1
    # config ban on P1 is gone with the new config; the runtime ban on P2 stays
    assert not restored.is_blocked(P1)
    assert restored.is_blocked(P2)
    assert restored.invoke("worker", "act", {"do": "emit"}) == 2  # ids continue
    again = Node.from_snapshot(restored.snapshot(), NodeConfig(rng_seed=5), [Worker()])
    assert again.incarnation == 2


def test_pending_outbound_replayed_redelivered() -> None:
    node = _node()
    envelope = WireEnvelope((SlotFill(b"\xe2\x01", b"\x01"),))
    node.requeue_outbound(P1, envelope)
    snap = NodeSnapshot.decode(node.snapshot().encode())
    restored = Node.from_snapshot(snap, components=[Worker()])
    assert restored.poll() == [SendEnvelope(envelope, P1, True)]
    assert restored.poll() == []


@pytest.mark.parametrize(
    ("envelope", "detail"),
    [
        (WireEnvelope((SlotFill(b"\xe2\x01", "text"),)), "fills[0].payload"),  # type: ignore[arg-type]
        (WireEnvelope((), src_peer_addresses=(b"\x04", 7)), "src_peer_addresses[1]"),  # type: ignore[arg-type]
        ("not an envelope", "expected a WireEnvelope"),
    ],
)
def test_an_envelope_handed_back_is_checked_before_it_is_queued(
    envelope: WireEnvelope, detail: str
) -> None:
    """Every `SendEnvelope` must carry an envelope the wire takes (hosts encode them without
    checking again), so one handed back is checked; a bad one is refused and not queued."""
    node = _node()
    with pytest.raises(InvalidInput, match=re.escape(detail)):
        node.requeue_outbound(P1, envelope)
    assert node.poll() == []


def test_many_peers_snapshot_is_compact() -> None:
    n = 20_000
    cfg = NodeConfig(rng_seed=1, address_book_cap=n, failure_threshold=1)
    node = _node(cfg)
    peers = [PeerId.from_u64(i) for i in range(1, n + 1)]
    addr = [Address.tcp("10.0.0.1", 1 + i % 60000) for i in range(n)]
    for peer, a in zip(peers, addr, strict=True):
        node.add_peer(peer, [a])
        node.block_peer(peer)
    for peer in peers[: n // 2]:
        node.dial_failed(peer, None, "x")
    node.poll()
    snap = node.snapshot()
    data = snap.encode()
    decoded = NodeSnapshot.decode(data)
    assert len(data) / n <= 150
    assert decoded.transient.framework.address_book == snap.transient.framework.address_book
    assert isinstance(decoded.transient, TransientSnapshot)
    assert isinstance(decoded.transient.framework, FrameworkSnapshot)
