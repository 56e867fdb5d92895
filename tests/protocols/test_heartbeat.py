"""Heartbeat between two real Nodes on a hand-driven wire with a hand-advanced clock."""

from __future__ import annotations

import pytest

from bbnode.engine import steps
from bbnode.engine.envelope import encode_envelope
from bbnode.engine.node import Node, NodeConfig
from bbnode.ids import Address, PeerId
from bbnode.protocols.heartbeat import MAX_TARGETS_PER_ROUND, Heartbeat

INTERVAL = 1_000_000_000
TIMEOUT = 400_000_000
T0 = 1_000_000_000_000


def make(n: int) -> tuple[Node, Heartbeat]:
    peer = PeerId.from_u64(n)
    node = Node(
        peer,
        addresses=(Address.tcp("127.0.0.1", 7000 + n),),
        config=NodeConfig(rng_seed=n, failure_threshold=2, backoff_base_ns=1, backoff_max_ns=1),
    )
    hb = Heartbeat(INTERVAL, TIMEOUT)
    node.install(hb)
    return node, hb


class Wire:
    """Delivers SendEnvelope steps between nodes unless the link is cut."""

    def __init__(self, *nodes: Node) -> None:
        self.nodes = {n.peer_id: n for n in nodes}
        self.cut: set[PeerId] = set()
        self.events: list[tuple[PeerId, object]] = []

    def run(self, now: int) -> None:
        for _ in range(20):
            busy = False
            for node in self.nodes.values():
                deadline = node.next_deadline_ns()
                if deadline is not None and deadline <= now:
                    node.tick(now)
                for step in node.poll():
                    busy = True
                    if isinstance(step, steps.SendEnvelope):
                        if step.peer in self.cut or node.peer_id in self.cut:
                            continue
                        self.nodes[step.peer].deliver_inbound(
                            node.peer_id, encode_envelope(step.envelope)
                        )
                    elif isinstance(step, steps.PeerDown | steps.PeerUp):
                        self.events.append((node.peer_id, step))
            if not busy:
                return


def test_pings_get_replies_and_timeouts_bring_peer_down_then_up() -> None:
    a, hb_a = make(1)
    b, hb_b = make(2)
    a.add_peer(b.peer_id, [Address.tcp("127.0.0.1", 7002)])
    b.add_peer(a.peer_id, [Address.tcp("127.0.0.1", 7001)])
    wire = Wire(a, b)
    now = T0
    a.tick(now)
    b.tick(now)
    a.invoke("heartbeat", "peer_connected", {"peer": b.peer_id.to_bytes()})
    wire.run(now)
    assert hb_a.connected == {b.peer_id}
    for _ in range(3):
        now += INTERVAL
        wire.run(now)
    # The timer armed at install (engine time 0) fires once at T0 (missed periods are
    # skipped), then at T0 + 1 s, 2 s, 3 s: four rounds.
    assert hb_a.replies == 4
    assert hb_b.replies == 4
    assert hb_a.failures == 0

    wire.cut.add(b.peer_id)
    for _ in range(3):
        now += INTERVAL
        wire.run(now)
        now += TIMEOUT
        wire.run(now)
    assert (a.peer_id, steps.PeerDown(b.peer_id)) in wire.events
    assert [e for e in wire.events if e[0] == a.peer_id].count(
        (a.peer_id, steps.PeerDown(b.peer_id))
    ) == 1
    assert hb_a.failures >= 2

    wire.cut.clear()
    for _ in range(3):
        now += INTERVAL
        wire.run(now)
    assert (a.peer_id, steps.PeerUp(b.peer_id)) in wire.events


def test_state_round_trips_and_connections_are_not_restored() -> None:
    hb = Heartbeat(INTERVAL, TIMEOUT)
    hb.connected = {PeerId.from_u64(3)}
    hb.seq = 7
    hb.replies = 2
    state = hb.serialize()
    fresh = Heartbeat(INTERVAL, TIMEOUT)
    fresh.restore(state)
    assert fresh.seq == 7
    assert fresh.replies == 2
    assert fresh.connected == set()


def test_targets_prefer_connected_and_rotate_known() -> None:
    hb = Heartbeat(INTERVAL, TIMEOUT)
    connected = [PeerId.from_u64(i) for i in range(3)]
    known = [PeerId.from_u64(i) for i in range(100, 100 + 2 * MAX_TARGETS_PER_ROUND)]
    hb.connected = set(connected)

    def blocked(p: PeerId) -> bool:
        return p == PeerId.from_u64(100)

    first = hb.targets(known + connected, blocked)
    assert first[:3] == sorted(connected)
    assert len(first) == MAX_TARGETS_PER_ROUND
    assert PeerId.from_u64(100) not in first
    second = hb.targets(known, blocked)
    assert set(second[3:]).isdisjoint(first[3:])
    assert len(set(first[3:]) | set(second[3:])) == 2 * (MAX_TARGETS_PER_ROUND - 3)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="interval_ns must be positive"):
        Heartbeat(0, TIMEOUT)
    with pytest.raises(ValueError, match="timeout_ns must be positive"):
        Heartbeat(INTERVAL, -1)
