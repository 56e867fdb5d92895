"""One-way sends to one peer in one cycle travel as one envelope of many fills (`_coalesce`)."""

from __future__ import annotations

import msgpack
import pytest

from bbnode.engine import NodeConfig
from bbnode.engine._coalesce import COALESCE_MAX_BYTES, send_steps
from bbnode.engine.envelope import Correlation, CorrelationKind, SlotFill, WireEnvelope
from bbnode.engine.errors import InvalidConfig
from bbnode.engine.steps import AppEvent, SendEnvelope
from bbnode.ids import PeerId
from tests.engine.sample_components import Echo
from tests.harness import Network

P1, P2 = PeerId.from_u64(1), PeerId.from_u64(2)
DEST = (b"\x04\x7f\x00\x00\x01\x06\x1c\xe8",)
OTHER_DEST = (b"\x04\x7f\x00\x00\x01\x06\x1c\xe9",)
SRC = (b"\x04\x7f\x00\x00\x01\x06\x1c\xea",)
SUFFIX = b"/x"


def _net(n: int = 3, **config: int) -> Network:
    return Network(
        n,
        components=lambda i: [Echo()],
        config=lambda i: NodeConfig(rng_seed=i, **config),  # type: ignore[arg-type]
    )


def _got(net: Network, i: int) -> list[object]:
    return [msgpack.unpackb(e.value_bytes) for e in net.of_type(i, AppEvent) if e.topic == "got"]


def _fills(sends: list[SendEnvelope]) -> list[int]:
    return [len(step.envelope.fills) for step in sends]


def test_one_way_sends_of_one_cycle_share_an_envelope_and_arrive_in_order() -> None:
    net = _net()
    for k in range(10):
        net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": k})
    net.run_until_quiet()
    assert _fills(net.of_type(0, SendEnvelope)) == [10]
    assert _got(net, 1) == list(range(10))


def test_each_peer_gets_its_own_envelope_of_its_own_sends() -> None:
    net = _net()
    for k in range(6):
        net.nodes[0].invoke("echo", "notify", {"to": net.peers[1 + k % 2], "value": k})
    net.run_until_quiet()
    sends = net.of_type(0, SendEnvelope)
    assert [(step.peer, len(step.envelope.fills)) for step in sends] == [
        (net.peers[1], 3),
        (net.peers[2], 3),
    ]
    assert _got(net, 1) == [0, 2, 4]
    assert _got(net, 2) == [1, 3, 5]


def test_a_request_is_never_merged_and_keeps_its_place_in_the_order() -> None:
    net = _net()
    node, to = net.nodes[0], net.peers[1]
    node.invoke("echo", "notify", {"to": to, "value": "a"})
    node.invoke("echo", "notify", {"to": to, "value": "b"})
    node.invoke("echo", "request", {"to": to, "value": "req"})
    node.invoke("echo", "notify", {"to": to, "value": "c"})
    net.run_until_quiet()
    sends = net.of_type(0, SendEnvelope)
    kinds = [(s.peer, s.envelope.correlation.kind, len(s.envelope.fills)) for s in sends]
    assert kinds == [
        (to, CorrelationKind.NONE, 2),
        (to, CorrelationKind.REQUEST, 1),
        (to, CorrelationKind.NONE, 1),
    ]
    replies = net.of_type(1, SendEnvelope)
    assert [(s.peer, s.envelope.correlation.kind) for s in replies] == [
        (net.peers[0], CorrelationKind.RESPONSE)
    ]
    assert _got(net, 1) == ["a", "b", "req", "c"]
    assert [msgpack.unpackb(e.value_bytes) for e in net.of_type(0, AppEvent)] == [["req", None]]


@pytest.mark.parametrize(
    ("max_fills", "sends", "fills"),
    [(4, 10, [4, 4, 2]), (1, 3, [1, 1, 1])],
    ids=["caps_a_merged_envelope", "of_one_sends_one_envelope_per_send"],
)
def test_max_fills_per_envelope(max_fills: int, sends: int, fills: list[int]) -> None:
    net = _net(max_fills_per_envelope=max_fills)
    for k in range(sends):
        net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": k})
    net.run_until_quiet()
    assert _fills(net.of_type(0, SendEnvelope)) == fills
    assert _got(net, 1) == list(range(sends))


@pytest.mark.parametrize("value", [0, -1, 257, True])
def test_max_fills_per_envelope_is_checked(value: int) -> None:
    with pytest.raises(InvalidConfig, match="max_fills_per_envelope"):
        NodeConfig(max_fills_per_envelope=value)


def _one_way(
    *payloads: bytes,
    deadline: int | None = None,
    dest: tuple[bytes, ...] = DEST,
    **fields: object,
) -> WireEnvelope:
    """A one-way envelope of one fill per payload (the other fields as given)."""
    fills = tuple(SlotFill(SUFFIX, payload) for payload in payloads)
    return WireEnvelope(
        fills,
        dest_peer_addresses=dest,
        remaining_deadline_ns=deadline,
        **fields,  # type: ignore[arg-type]
    )


# A payload that makes a fill (payload + suffix) exactly half the byte cap.
HALF = bytes(COALESCE_MAX_BYTES // 2 - len(SUFFIX))
BIG = bytes(COALESCE_MAX_BYTES + 1)


@pytest.mark.parametrize(
    ("payloads", "envelopes"),
    [
        ([HALF, HALF], [[HALF, HALF]]),  # payloads + suffixes exactly at the cap: merged
        ([HALF, HALF, b""], [[HALF, HALF], [b""]]),  # a suffix alone is past the cap
        ([HALF, HALF + b"1"], [[HALF], [HALF + b"1"]]),  # one byte past the cap
        ([b"s", BIG, b"s"], [[b"s"], [BIG], [b"s"]]),  # a send over the cap goes alone
        ([(HALF, HALF), b""], [[HALF, HALF], [b""]]),  # an envelope of two fills, at the cap
        ([b"", (HALF, HALF + b"1")], [[b""], [HALF, HALF + b"1"]]),  # two fills, over it
    ],
    ids=[
        "at_the_cap",
        "suffix_counts",
        "one_byte_over",
        "big_goes_alone",
        "fills_summed",
        "fills_summed_over",
    ],
)
def test_a_run_stops_at_the_byte_cap(
    payloads: list[bytes | tuple[bytes, ...]], envelopes: list[list[bytes]]
) -> None:
    """Each item of `payloads` is one envelope (a tuple: one of several fills)."""
    outbound = [(P1, _one_way(*(p if isinstance(p, tuple) else (p,))), False) for p in payloads]
    steps = send_steps(outbound, 256)
    assert [[f.payload for f in s.envelope.fills] for s in steps] == envelopes


def test_only_envelopes_alike_in_all_but_their_fills_are_merged() -> None:
    rtt = ((P2.to_bytes(), 5),)
    response = Correlation(CorrelationKind.RESPONSE, 7)
    # Alike but for one field each (the comment names it), from b"8" on with other addresses.
    far = {"dest": OTHER_DEST, "src_peer_addresses": SRC}
    outbound = [
        (P1, _one_way(b"1"), False),
        (P1, _one_way(b"2", deadline=5), False),  # another deadline
        (P1, _one_way(b"3", deadline=5), True),  # redelivered
        (P1, _one_way(b"4", deadline=5, edge_rtt_reports=rtt), True),  # carries RTT reports
        (P1, _one_way(b"5", deadline=5, correlation=response), True),  # a response
        (P1, _one_way(b"6", deadline=5), True),
        (P1, _one_way(b"7", deadline=5), True),
        (P1, _one_way(b"8", deadline=5, dest=OTHER_DEST), True),  # destination addresses
        (P1, _one_way(b"9", deadline=5, **far), True),  # source addresses
        (P1, _one_way(b"a", deadline=5, **far, schema_version=2), True),  # schema version
        (P1, _one_way(b"b", deadline=5, **far, schema_version=2), True),
    ]
    steps = send_steps(outbound, 256)
    assert [[f.payload for f in s.envelope.fills] for s in steps] == [
        [b"1"],
        [b"2"],
        [b"3"],
        [b"4"],
        [b"5"],
        [b"6", b"7"],
        [b"8"],
        [b"9"],
        [b"a", b"b"],
    ]
    alone = [SendEnvelope(env, peer, again) for peer, env, again in outbound]
    fill = {payload: SlotFill(SUFFIX, payload) for payload in (b"6", b"7", b"a", b"b")}
    assert steps == [
        *alone[:5],
        SendEnvelope(
            WireEnvelope((fill[b"6"], fill[b"7"]), DEST, remaining_deadline_ns=5), P1, True
        ),
        *alone[7:9],
        SendEnvelope(
            WireEnvelope(
                (fill[b"a"], fill[b"b"]),
                OTHER_DEST,
                remaining_deadline_ns=5,
                src_peer_addresses=SRC,
                schema_version=2,
            ),
            P1,
            True,
        ),
    ]
