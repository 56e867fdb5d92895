"""The inbound policy memo: a peer the governor let in is not asked about again until the
governor's policy changes (`PeerGovernor.policy_token`), and never lets a banned peer in."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from bbnode.engine import Node, NodeConfig, op_suffixes
from bbnode.engine.envelope import SlotFill, WireEnvelope, encode_envelope
from bbnode.engine.framework import PeerGovernor
from bbnode.engine.steps import AppEvent, PeerBlocked
from bbnode.ids import Address, PeerId, fnv1a_32
from tests.engine.sample_components import Worker

ME = PeerId.from_u64(100)
P1 = PeerId.from_u64(1)
P2 = PeerId.from_u64(2)
SRC = Address.tcp("10.0.0.1", 1, P1).to_bytes()


def _node() -> Node:
    node = Node(ME, [Address.tcp("127.0.0.1", 7400)], NodeConfig(rng_seed=3))
    node.install(Worker())
    return node


def _frame(value: Any, src: tuple[bytes, ...] = (SRC,)) -> bytes:
    suffix = op_suffixes(fnv1a_32(b"worker"), "recv")[0]
    fill = SlotFill(suffix, msgpack.packb(value))
    return encode_envelope(WireEnvelope((fill,), src_peer_addresses=src))


def _received(node: Node, value: int, peer: PeerId = P1) -> list[Any]:
    node.deliver_inbound(peer, _frame(value))
    return node.poll()


def _got(value: int, peer: PeerId = P1) -> AppEvent:
    return AppEvent("worker", "recv", msgpack.packb([value, peer.to_bytes()]))


@pytest.mark.parametrize(
    "change",
    [
        lambda n: n.block_peer(P1),
        lambda n: n.block_peer(P1, until_ns=50),
        lambda n: n.replace_config_blocks([P1]),
        lambda n: n.set_allowlist([P2]),
        lambda n: n.set_allowlist([]),
        lambda n: n.governor.block(P1),
    ],
)
def test_a_policy_change_after_the_peer_was_let_in_applies_at_once(change: Any) -> None:
    node = _node()
    assert _got(1) in _received(node, 1)
    assert _got(2) in _received(node, 2)  # let in from the memo
    change(node)
    assert _received(node, 3) == [PeerBlocked(P1, node.governor.check_inbound(P1, 0).reason.code)]  # type: ignore[union-attr]


def test_lifting_a_ban_or_a_sweep_keeps_the_token_and_adding_one_renews_it() -> None:
    governor = PeerGovernor()
    token = governor.policy_token
    governor.unblock(P1)
    governor.expire_blocks(10**12)
    governor.record_failure(P1, 1)
    governor.record_success(P1, 2)
    assert governor.policy_token is token
    governor.block(P1, until_ns=5)
    assert governor.policy_token is not token
    token = governor.policy_token
    governor.set_allowlist(None)
    assert governor.policy_token is not token
    assert PeerGovernor().policy_token is not PeerGovernor().policy_token


def test_a_ban_that_expired_stays_lifted() -> None:
    node = _node()
    node.block_peer(P1, until_ns=10)
    assert _received(node, 1) == [PeerBlocked(P1, "blocklisted")]
    node.tick(10)
    assert _got(2) in _received(node, 2)


def test_a_peer_without_addresses_is_asked_once_then_remembered_until_a_ban(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = _node()
    asked: list[PeerId] = []
    check = PeerGovernor.check_inbound

    def counting(governor: PeerGovernor, peer: PeerId, now_ns: int) -> Any:
        asked.append(peer)
        return check(governor, peer, now_ns)

    monkeypatch.setattr(PeerGovernor, "check_inbound", counting)
    for value in (3, 4, 5):
        node.deliver_inbound(P2, _frame(value, src=()))
        assert _got(value, P2) in node.poll()
    assert asked == [P2]
    node.block_peer(P2)
    node.deliver_inbound(P2, _frame(6, src=()))
    assert node.poll() == [PeerBlocked(P2, "blocklisted")]
    assert asked == [P2, P2]


def test_a_restored_node_asks_its_own_governor() -> None:
    node = _node()
    assert _got(1) in _received(node, 1)
    snap = node.snapshot()
    assert snap.transient.framework.src_address_cache == [[P1.to_bytes(), [SRC]]]
    restored = Node.from_snapshot(snap, NodeConfig(rng_seed=3), [Worker()])
    assert restored.snapshot().transient.framework.src_address_cache == [[P1.to_bytes(), [SRC]]]
    restored.block_peer(P1)
    assert _received(restored, 2) == [PeerBlocked(P1, "blocklisted")]


def test_a_restored_node_applies_its_config_blocklist_to_peers_seen_before() -> None:
    node = _node()
    assert _got(1) in _received(node, 1)
    restored = Node.from_snapshot(
        node.snapshot(), NodeConfig(rng_seed=3, blocklist=frozenset({P1})), [Worker()]
    )
    assert _received(restored, 2) == [PeerBlocked(P1, "blocklisted")]


def test_a_peer_that_sent_no_addresses_leaves_no_snapshot_entry() -> None:
    """The memo remembers it (its policy token), but a snapshot has nothing to keep of it."""
    node = _node()
    assert _got(1) in _received(node, 1)
    node.deliver_inbound(P2, _frame(2, src=()))
    assert _got(2, P2) in node.poll()
    assert node.snapshot().transient.framework.src_address_cache == [[P1.to_bytes(), [SRC]]]
