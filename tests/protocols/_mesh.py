"""A tiny in-memory mesh of real engine Nodes for the protocol tests (manual clock).

Envelopes are really encoded and decoded; only the transport is replaced by direct calls:
`SendEnvelope` to a live node becomes `deliver_inbound` on it, to a stopped node becomes
`dial_failed` on the sender (as the daemon reports a refused dial). Time moves only in
`run()`, from deadline to deadline, so tests are exact and fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from bbnode.engine import Component, Node, NodeConfig, steps
from bbnode.engine.envelope import encode_envelope
from bbnode.ids import Address, PeerId

Factory = Callable[[PeerId, Address], list[Component]]


@dataclass
class Member:
    peer: PeerId
    address: Address
    node: Node | None
    events: list[tuple[str, str, Any]] = field(default_factory=list)
    steps: list[steps.EngineStep] = field(default_factory=list)
    inbound: list[tuple[PeerId, bytes]] = field(default_factory=list)


class Mesh:
    def __init__(self, factory: Factory) -> None:
        self.factory = factory
        self.now_ns = 0
        self.members: dict[PeerId, Member] = {}
        self._seed = 0

    def add(self, n: int, knows: Iterable[PeerId] = ()) -> PeerId:
        peer = PeerId.from_u64(n)
        address = Address.tcp("127.0.0.1", 7000 + n)
        self._seed += 1
        node = Node(peer, addresses=(address,), config=NodeConfig(rng_seed=self._seed))
        for component in self.factory(peer, address):
            node.install(component)
        for other in knows:
            node.add_peer(other, [self.members[other].address])
        self.members[peer] = Member(peer, address, node)
        return peer

    def node(self, peer: PeerId) -> Node:
        node = self.members[peer].node
        assert node is not None
        return node

    def stop(self, peer: PeerId) -> bytes:
        """Snapshot then drop the node (a crash right after a checkpoint)."""
        data = self.node(peer).snapshot().encode()
        self.members[peer].node = None
        return data

    def restart(self, peer: PeerId, data: bytes, config_seed: int = 99) -> None:
        from bbnode.engine.snapshot import NodeSnapshot

        member = self.members[peer]
        member.node = Node.from_snapshot(
            NodeSnapshot.decode(data),
            config=NodeConfig(rng_seed=config_seed),
            components=self.factory(peer, member.address),
        )
        member.node.tick(self.now_ns)

    def events(self, peer: PeerId, topic: str | None = None) -> list[Any]:
        return [v for _, t, v in self.members[peer].events if topic is None or t == topic]

    def _pump(self) -> bool:
        busy = False
        for member in list(self.members.values()):
            if member.node is None:
                continue
            out = member.node.poll()
            while out:
                busy = True
                member.steps.extend(out)
                for step in out:
                    self._execute(member, step)
                out = member.node.poll()
        return busy

    def _execute(self, member: Member, step: steps.EngineStep) -> None:
        if isinstance(step, steps.AppEvent):
            value = msgpack.unpackb(step.value_bytes, raw=False)
            member.events.append((step.module_name, step.topic, value))
        elif isinstance(step, steps.SendEnvelope):
            target = self.members.get(step.peer)
            assert member.node is not None
            if target is None or target.node is None:
                address = target.address if target else Address.tcp("127.0.0.1", 1)
                member.node.dial_failed(step.peer, address, "connection refused")
                return
            data = encode_envelope(step.envelope)
            target.inbound.append((member.peer, data))
            target.node.deliver_inbound(member.peer, data, observed_address=member.address)

    def run(self, duration_ns: int) -> None:
        """Deliver everything and fire every timer up to now + duration_ns."""
        end = self.now_ns + duration_ns
        while True:
            while self._pump():
                pass
            deadlines = [
                d
                for m in self.members.values()
                if m.node is not None and (d := m.node.next_deadline_ns()) is not None
            ]
            nxt = min(deadlines, default=None)
            if nxt is None or nxt > end:
                break
            self.now_ns = max(self.now_ns, nxt)
            for m in self.members.values():
                if m.node is not None:
                    m.node.tick(self.now_ns)
        self.now_ns = end
        for m in self.members.values():
            if m.node is not None:
                m.node.tick(self.now_ns)
        while self._pump():
            pass
