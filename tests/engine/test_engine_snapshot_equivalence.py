"""Property: snapshot -> restore into a fresh Node -> continue == continuing the original.

Hypothesis generates a random sequence of host operations (invocations that send, request,
reply, emit, set and cancel timers, suspend, complete themselves, call, raise; inbound
envelopes of every correlation kind, garbage frames, unroutable fills; completions and
failures; clock ticks; transport outcomes; policy changes; lifecycle phases; polls). The
first `k` run on node A; A is snapshotted (encode -> decode) and restored into node B; the
rest runs on A and on B. Every poll's steps, every raised DeliveryError and the final
snapshots (incarnation aside) must be identical.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bbnode.engine import DeliveryError, Node, NodeConfig, NodeSnapshot
from bbnode.engine.envelope import (
    Correlation,
    CorrelationKind,
    SlotFill,
    WireEnvelope,
    encode_envelope,
)
from bbnode.ids import Address, PeerId
from tests.engine.sample_components import Worker

SELF = PeerId.from_u64(100)
PEERS = [PeerId.from_u64(i) for i in range(1, 5)]  # PEERS[3] has no address: resolve fails
RECV = Address([("component", Worker().component_ref), ("op", "recv")]).to_bytes()
CONFIG = NodeConfig(
    rng_seed=7,
    backoff_jitter=True,
    failure_threshold=2,
    cycle_op_budget=6,
    max_outbound_queue=4,
    dedup_window=4,
)

values = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=3))
peer_idx = st.integers(0, 3)

acts = st.one_of(
    st.builds(lambda p, v: {"do": "send", "peer": PEERS[p], "value": v}, peer_idx, values),
    st.builds(
        lambda p, v, t: {"do": "request", "peer": PEERS[p], "value": v, "ttl": t},
        peer_idx,
        values,
        st.one_of(st.none(), st.integers(0, 50), st.integers(0, 20)),
    ),
    st.builds(lambda v: {"do": "emit", "value": v}, values),
    st.builds(lambda v, d: {"do": "after", "value": v, "delay": d}, values, st.integers(0, 40)),
    st.builds(lambda d: {"do": "interval", "delay": d}, st.integers(5, 40)),
    st.builds(lambda t: {"do": "suspend", "ttl": t}, st.one_of(st.none(), st.integers(0, 60))),
    st.builds(lambda v: {"do": "self_complete", "value": v}, values),
    st.builds(lambda v: {"do": "call", "value": v}, values),
    st.builds(lambda v: {"do": "seen", "value": v}, st.integers(0, 6)),
    st.just({"do": "cancel"}),
    st.just({"do": "raise", "value": 1}),
    st.just({"do": "rng"}),
    st.just({"do": "subscribe"}),
    st.just({"do": "unsubscribe"}),
    st.just({"do": "bad_return"}),
)


def _envelope(kind: int, req: int, value: Any, suffix: bytes, src: int) -> bytes:
    addresses = (Address.tcp("10.0.0.9", 4000 + src, PEERS[src]).to_bytes(),)
    env = WireEnvelope(
        (SlotFill(suffix, msgpack.packb(value)),),
        correlation=Correlation(CorrelationKind(kind), req if kind else 0),
        remaining_deadline_ns=req * 3 if kind == 1 else None,
        src_peer_addresses=addresses,
    )
    return encode_envelope(env)


_invoke = st.tuples(st.just("invoke"), acts)
_deliver = st.tuples(
    st.just("deliver"),
    peer_idx,
    st.sampled_from([0, 1, 2, 2]),
    st.integers(1, 4),
    values,
    st.sampled_from([RECV, RECV, RECV, b"\xe2\x01"]),
)
_tick = st.tuples(st.just("tick"), st.integers(0, 30))
_poll = st.tuples(st.just("poll"))
_transport = st.tuples(
    st.sampled_from(["connected", "disconnected", "send_failed", "send_failed", "dial_failed"]),
    peer_idx,
    st.integers(0, 4),
)
_strategies: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "invoke": _invoke,
    "deliver": _deliver,
    "tick": _tick,
    "poll": _poll,
    "transport": _transport,
    "garbage": st.tuples(st.just("garbage"), peer_idx, st.binary(max_size=8)),
    "complete": st.tuples(st.just("complete"), st.integers(1, 4), values),
    "fail": st.tuples(st.just("fail"), st.integers(1, 4)),
    "block": st.tuples(st.just("block"), peer_idx, st.one_of(st.none(), st.integers(0, 80))),
    "unblock": st.tuples(st.just("unblock"), peer_idx),
    "lifecycle": st.tuples(st.just("lifecycle"), st.sampled_from(["PreShutdown", "Started"])),
}
# Weighted by repetition: mostly invocations, deliveries, ticks and polls.
_kinds = ["invoke"] * 8 + ["deliver"] * 4 + ["tick"] * 4 + ["poll"] * 5 + ["transport"] * 2
_kinds += ["garbage", "complete", "complete", "fail", "fail", "block", "unblock", "lifecycle"]
operations = st.sampled_from(_kinds).flatmap(_strategies.__getitem__)


class Runner:
    """Applies operations to one node, recording everything observable."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.clock = node.now_ns
        self.log: list[Any] = []

    def apply(self, op: tuple[Any, ...]) -> None:
        node = self.node
        kind = op[0]
        try:
            if kind == "invoke":
                self.log.append(("exec", node.invoke("worker", "act", op[1])))
            elif kind == "deliver":
                _, src, ckind, req, value, suffix = op
                node.deliver_inbound(PEERS[src], _envelope(ckind, req, value, suffix, src))
            elif kind == "garbage":
                node.deliver_inbound(PEERS[op[1]], op[2])
            elif kind == "complete":
                node.complete(op[1], {"v": op[2]})
            elif kind == "fail":
                node.fail(op[1], "host says no")
            elif kind == "tick":
                self.clock += op[1]
                node.tick(self.clock)
            elif kind == "connected":
                node.peer_connected(PEERS[op[1]], Address.tcp("10.1.0.1", 5000 + op[2]))
            elif kind == "disconnected":
                node.peer_disconnected(PEERS[op[1]], "closed")
            elif kind == "send_failed":
                node.send_failed(PEERS[op[1]], op[2], "reset")
            elif kind == "dial_failed":
                node.dial_failed(PEERS[op[1]], None, "refused")
            elif kind == "block":
                node.block_peer(PEERS[op[1]], op[2])
            elif kind == "unblock":
                self.log.append(("unblock", node.unblock_peer(PEERS[op[1]])))
            elif kind == "lifecycle":
                node.fire_lifecycle(op[1])
            elif kind == "poll":
                self.log.append(("poll", node.poll()))
        except DeliveryError as exc:
            self.log.append(("error", type(exc).__name__, str(exc)))

    def settle(self) -> None:
        for _ in range(50):
            if not self.node.has_work():
                break
            self.log.append(("poll", self.node.poll()))
        self.log.append(("deadline", self.node.next_deadline_ns()))


def _fresh() -> Node:
    node = Node(SELF, [Address.tcp("127.0.0.1", 7400)], CONFIG)
    node.install(Worker())
    for i, peer in enumerate(PEERS[:3]):
        node.add_peer(peer, [Address.tcp("10.0.0.1", 4000 + i, peer)])
    return node


def _comparable(node: Node) -> NodeSnapshot:
    return dataclasses.replace(node.snapshot(), incarnation=0)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(operations, min_size=5, max_size=60), st.data())
def test_restored_node_continues_exactly_like_the_original(
    ops: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(ops)), label="split")
    original = Runner(_fresh())
    for op in ops[:split]:
        original.apply(op)
    encoded = original.node.snapshot().encode()
    restored_node = Node.from_snapshot(NodeSnapshot.decode(encoded), CONFIG, [Worker()])
    assert restored_node.incarnation == original.node.incarnation + 1
    restored = Runner(restored_node)
    restored.clock = original.clock
    original.log.clear()
    for op in ops[split:]:
        original.apply(op)
        restored.apply(op)
    original.settle()
    restored.settle()
    assert restored.log == original.log
    assert _comparable(restored.node) == _comparable(original.node)
