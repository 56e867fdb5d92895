"""A multi-node in-memory network with a manual clock (h11's ConnectionPair idea, for N nodes).

`Network(n)` builds `n` Nodes with `PeerId.from_u64(i)` and addresses
`/ip4/127.0.0.1/tcp/<7000+i>/p2p/<peer>`, every node knowing every other. The network moves
bytes: each `SendEnvelope` a node emits is encoded (`encode_envelope`, whose checks every
such envelope must pass: the daemon encodes them with `encode_checked`) and handed to the
target's `deliver_inbound`, unless the target is *killed* (the sender gets `send_failed`, as
a real transport would report) or *blackholed* (the bytes vanish silently, so only request
timeouts notice). Time moves only through `advance(dt_ns)` / `advance_to_next_deadline()`,
which tick every node. Every step a node emits is recorded in `net.steps[i]`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from bbnode.engine import Component, Node, NodeConfig
from bbnode.engine.envelope import CorrelationKind, encode_checked, encode_envelope
from bbnode.engine.steps import EngineStep, SendEnvelope
from bbnode.ids import Address, PeerId

__all__ = ["Network"]

S = TypeVar("S", bound=EngineStep)


class Network:
    """N nodes wired in memory; see the module docstring."""

    def __init__(
        self,
        n: int,
        components: Callable[[int], Iterable[Component]] = lambda i: (),
        config: Callable[[int], NodeConfig] | None = None,
    ) -> None:
        self.now_ns = 0
        self.peers = [PeerId.from_u64(i) for i in range(n)]
        self.index = {peer: i for i, peer in enumerate(self.peers)}
        self.addresses = [Address.tcp("127.0.0.1", 7000 + i, self.peers[i]) for i in range(n)]
        self.nodes: list[Node] = []
        for i in range(n):
            cfg = config(i) if config is not None else NodeConfig(rng_seed=i)
            node = Node(self.peers[i], [self.addresses[i]], cfg)
            for component in components(i):
                node.install(component)
            for j in range(n):
                if j != i:
                    node.add_peer(self.peers[j], [self.addresses[j]])
            self.nodes.append(node)
        self.steps: list[list[EngineStep]] = [[] for _ in range(n)]
        self.killed: set[int] = set()
        self.blackholed: set[int] = set()
        self.delivered = 0

    # -- faults --------------------------------------------------------------------------------
    def kill(self, i: int) -> None:
        """Sends to node `i` fail (the sender gets `send_failed`)."""
        self.killed.add(i)

    def blackhole(self, i: int) -> None:
        """Sends to node `i` vanish silently."""
        self.blackholed.add(i)

    def revive(self, i: int) -> None:
        """Undo `kill` / `blackhole`."""
        self.killed.discard(i)
        self.blackholed.discard(i)

    # -- driving -------------------------------------------------------------------------------
    def poll(self, i: int) -> list[EngineStep]:
        """Poll node `i` once, record its steps and move its envelopes."""
        out = self.nodes[i].poll()
        self.steps[i].extend(out)
        for step in out:
            if isinstance(step, SendEnvelope):
                self._move(i, step)
        return out

    def _move(self, i: int, step: SendEnvelope) -> None:
        data = encode_envelope(step.envelope)  # raises if the engine emitted a bad envelope
        assert encode_checked(step.envelope) == data
        target = self.index.get(step.peer)
        if target is None or target in self.blackholed:
            return
        if target in self.killed:
            correlation = step.envelope.correlation
            req = correlation.wire_req_id if correlation.kind is CorrelationKind.REQUEST else 0
            self.nodes[i].send_failed(step.peer, req, "connection refused")
            return
        self.nodes[target].deliver_inbound(self.peers[i], data)
        self.delivered += 1

    def run_until_quiet(self, max_rounds: int = 1000) -> None:
        """Poll every node with work until none has any (bounded, to catch livelocks)."""
        for _ in range(max_rounds):
            busy = [i for i, node in enumerate(self.nodes) if node.has_work()]
            if not busy:
                return
            for i in busy:
                self.poll(i)
        raise AssertionError(f"network not quiet after {max_rounds} rounds")

    def advance(self, dt_ns: int) -> None:
        """Move the shared clock forward `dt_ns`, tick every node, run until quiet."""
        self.now_ns += dt_ns
        for node in self.nodes:
            node.tick(self.now_ns)
        self.run_until_quiet()

    def advance_to_next_deadline(self) -> bool:
        """Jump to the earliest deadline of any node; False if no node has one."""
        deadlines = [d for d in (n.next_deadline_ns() for n in self.nodes) if d is not None]
        if not deadlines:
            return False
        self.advance(max(0, min(deadlines) - self.now_ns))
        return True

    # -- reading -------------------------------------------------------------------------------
    def of_type(self, i: int, kind: type[S]) -> list[S]:
        """Node `i`'s recorded steps of type `kind`, in order."""
        return [s for s in self.steps[i] if isinstance(s, kind)]

    def clear(self) -> None:
        """Forget recorded steps."""
        for recorded in self.steps:
            recorded.clear()
