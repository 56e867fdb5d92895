"""SnapshotStore with real engine snapshots: round trip, spec-version and decode failures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgpack

from bbnode.engine.node import Node, NodeConfig
from bbnode.engine.snapshot import NodeSnapshot
from bbnode.ids import Address, PeerId
from bbnode.store import GenerationStore, ProblemKind, SnapshotStore
from bbnode.store.summary import format_summary, summarize_snapshot

SELF = PeerId.from_u64(1000)
HOUR_NS = 3_600_000_000_000


def make_node() -> Node:
    node = Node(SELF, config=NodeConfig(rng_seed=7))
    for n in (1, 2, 3):
        node.add_peer(PeerId.from_u64(n), [Address.tcp("127.0.0.1", 7400 + n)])
    node.block_peer(PeerId.from_u64(2), until_ns=HOUR_NS)
    node.block_peer(PeerId.from_u64(9))
    node.dial_failed(PeerId.from_u64(3), Address.tcp("127.0.0.1", 7403), "refused")
    node.tick(1_000)
    node.poll()
    return node


def with_spec_version(snapshot: NodeSnapshot, version: int) -> NodeSnapshot:
    framework = dataclasses.replace(snapshot.transient.framework, spec_version=version)
    transient = dataclasses.replace(snapshot.transient, framework=framework)
    return dataclasses.replace(snapshot, transient=transient)


def test_round_trip_restores_into_a_node(tmp_path: Path) -> None:
    node = make_node()
    store = SnapshotStore(tmp_path)
    path = store.save(node.snapshot())
    result = store.load()
    assert (result.path, result.problems) == (path, ())
    assert result.snapshot == node.snapshot()
    restored = Node.from_snapshot(result.snapshot, config=NodeConfig(rng_seed=7))
    assert restored.is_blocked(PeerId.from_u64(9))
    assert restored.incarnation == node.incarnation + 1


def test_newer_spec_version_is_kept_aside_and_older_generation_used(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    snapshot = make_node().snapshot()
    good = store.save(snapshot)
    future = store.save(with_spec_version(snapshot, 2))
    result = store.load()
    assert (result.snapshot, result.path) == (snapshot, good)
    [problem] = result.problems
    assert problem.kind is ProblemKind.INCOMPATIBLE
    assert problem.path == future
    assert problem.detail == "snapshot spec_version 2, this bbnode restores spec_version 1"
    assert problem.moved_to is not None
    assert problem.moved_to.name.startswith(f"{future.name}.incompatible-")
    assert not result.restore_failed


def test_undecodable_payload_is_corrupt(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    GenerationStore(tmp_path).save_payload(b"\xc1 not msgpack")
    GenerationStore(tmp_path).save_payload(msgpack.packb({"incarnation": "x"}))
    result = store.load()
    assert result.snapshot is None
    assert result.restore_failed
    assert [p.kind for p in result.problems] == [ProblemKind.CORRUPT, ProblemKind.CORRUPT]
    assert all(p.detail.startswith("payload is not a NodeSnapshot: ") for p in result.problems)
    assert store.generations() == []


def test_summary_names_peers_bans_backoff_and_counters() -> None:
    snapshot = make_node().snapshot()
    summary = summarize_snapshot(snapshot)
    assert summary["incarnation"] == snapshot.incarnation
    assert summary["spec_version"] == 1
    assert summary["peer_id"] == str(SELF)
    assert [(p["peer"], p["addresses"]) for p in summary["peers"]] == [
        (str(PeerId.from_u64(n)), [f"/ip4/127.0.0.1/tcp/{7400 + n}"]) for n in (1, 2, 3)
    ]
    assert sorted((b["peer"], b["until_ns"], b["source"]) for b in summary["bans"]) == sorted(
        [
            (str(PeerId.from_u64(2)), HOUR_NS, "runtime"),
            (str(PeerId.from_u64(9)), None, "runtime"),
        ]
    )
    [backoff] = summary["backoff"]
    assert (backoff["peer"], backoff["attempts"]) == (str(PeerId.from_u64(3)), 1)
    [health] = summary["health"]
    assert (health["peer"], health["consecutive_failures"], health["down"]) == (
        str(PeerId.from_u64(3)),
        1,
        False,
    )
    assert summary["pending_outbound"] == {"count": 0, "bytes": 0}
    assert summary["counters"] == dict(sorted(snapshot.transient.framework.counters.items()))
    text = format_summary(summary, limit=2)
    assert "peers (3)" in text
    assert "  ... and 1 more (use --limit or --json)" in text
    assert f"{PeerId.from_u64(9)}  permanent  source=runtime" in text
    assert f"{PeerId.from_u64(2)}  until_ns={HOUR_NS}  source=runtime" in text
