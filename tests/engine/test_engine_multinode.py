"""Multi-node behaviour through the in-memory harness (tests/harness.py)."""

from __future__ import annotations

import msgpack

from bbnode.engine import Node, NodeConfig
from bbnode.engine.envelope import decode_envelope
from bbnode.engine.steps import (
    AppEvent,
    OutboundDropped,
    PeerBlocked,
    PeerDown,
    PeerUp,
    SendEnvelope,
    WireTimeout,
)
from tests.engine.sample_components import Echo
from tests.harness import Network

MS = 1_000_000


def _echo_net(n: int = 2, **config: int) -> Network:
    return Network(
        n,
        components=lambda i: [Echo()],
        config=lambda i: NodeConfig(rng_seed=i, **config),  # type: ignore[arg-type]
    )


def _events(net: Network, i: int, topic: str) -> list[object]:
    return [msgpack.unpackb(e.value_bytes) for e in net.of_type(i, AppEvent) if e.topic == topic]


def test_request_response_roundtrip() -> None:
    net = _echo_net()
    net.nodes[0].invoke("echo", "request", {"to": net.peers[1], "value": {"n": 7}})
    net.run_until_quiet()
    assert _events(net, 1, "got") == [{"n": 7}]
    assert _events(net, 0, "reply") == [[{"n": 7}, None]]
    assert net.nodes[0].next_deadline_ns() is None  # the request left the tracker


def test_blocked_peer_never_produces_an_app_event() -> None:
    net = _echo_net()
    net.nodes[1].block_peer(net.peers[0])
    for k in range(3):
        net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": k})
        net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": k})
        net.run_until_quiet()
    assert net.of_type(1, AppEvent) == []
    # one PeerBlocked per poll in which envelopes arrived (two sends per poll here)
    assert net.of_type(1, PeerBlocked) == [PeerBlocked(net.peers[0], "blocklisted")] * 3
    net.nodes[1].unblock_peer(net.peers[0])
    net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": "after"})
    net.run_until_quiet()
    assert _events(net, 1, "got") == ["after"]


def test_allowlist_denies_others() -> None:
    net = _echo_net(3)
    net.nodes[2].set_allowlist({net.peers[1]})
    net.nodes[0].invoke("echo", "notify", {"to": net.peers[2], "value": 0})
    net.nodes[1].invoke("echo", "notify", {"to": net.peers[2], "value": 1})
    net.run_until_quiet()
    assert _events(net, 2, "got") == [1]
    assert net.of_type(2, PeerBlocked) == [PeerBlocked(net.peers[0], "not_allowlisted")]


def test_five_failed_sends_one_peer_down_then_one_peer_up() -> None:
    net = _echo_net(backoff_max_ns=50 * MS)
    net.kill(1)
    for k in range(7):
        net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": k})
        net.run_until_quiet()
        net.advance(60 * MS)  # past any cooldown, so every send goes out and fails
    assert net.of_type(0, PeerDown) == [PeerDown(net.peers[1])]
    health = net.nodes[0].peer_health(net.peers[1])
    assert health is not None
    assert (health.consecutive_failures, health.down) == (7, True)
    assert net.of_type(0, PeerUp) == []
    net.revive(1)
    net.nodes[0].invoke("echo", "request", {"to": net.peers[1], "value": "hello"})
    net.run_until_quiet()
    net.nodes[1].invoke("echo", "notify", {"to": net.peers[0], "value": "again"})
    net.run_until_quiet()
    assert net.of_type(0, PeerDown) == [PeerDown(net.peers[1])]
    assert net.of_type(0, PeerUp) == [PeerUp(net.peers[1])]
    assert _events(net, 0, "reply") == [["hello", None]]
    health = net.nodes[0].peer_health(net.peers[1])
    assert health is not None
    assert (health.consecutive_failures, health.down) == (0, False)


def test_envelopes_held_during_cooldown_are_released_not_lost() -> None:
    net = _echo_net()  # backoff base 10 ms
    net.nodes[0].send_failed(net.peers[1], 0, "reset")
    net.run_until_quiet()
    net.clear()
    for k in range(3):
        net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": k})
    net.run_until_quiet()
    assert net.of_type(0, SendEnvelope) == []  # held, peer in cooldown
    assert net.nodes[0].next_deadline_ns() == 10 * MS
    net.advance(9 * MS)
    assert net.of_type(0, SendEnvelope) == []
    net.advance(1 * MS)
    released = net.of_type(0, SendEnvelope)
    assert sum(len(step.envelope.fills) for step in released) == 3  # merged or not
    assert _events(net, 1, "got") == [0, 1, 2]


def test_held_envelopes_released_early_by_a_success() -> None:
    net = _echo_net()
    net.nodes[0].send_failed(net.peers[1], 0, "reset")
    net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": "held"})
    net.run_until_quiet()
    assert _events(net, 1, "got") == []
    net.nodes[0].peer_connected(net.peers[1], net.addresses[1])
    net.run_until_quiet()
    assert _events(net, 1, "got") == ["held"]


def _cooled_down(net: Network) -> int:
    """Put node 0's peer 1 in cooldown (one failure: until 10 ms, the backoff base), clear
    the steps so far; returns peer 1's failure count."""
    net.nodes[0].send_failed(net.peers[1], 0, "reset")
    net.run_until_quiet()
    net.clear()
    health = net.nodes[0].peer_health(net.peers[1])
    assert health is not None
    return health.consecutive_failures


def _request(net: Network, value: str, deadline_ms: int) -> None:
    """Node 0 asks peer 1 to echo `value`, timing out at `deadline_ms`."""
    net.nodes[0].invoke(
        "echo", "request", {"to": net.peers[1], "value": value, "deadline_ns": deadline_ms * MS}
    )


def test_a_request_that_times_out_while_held_is_dropped_and_no_failure_of_the_peer() -> None:
    """It never left the node, so its timeout must not extend the peer's cooldown: if it
    did, a component that keeps sending requests (the heartbeat) would hold every one of
    them for good, each timeout pushing the cooldown past the next release."""
    net = _echo_net()
    failures = _cooled_down(net)
    _request(net, "late", 5)
    net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": "kept"})
    net.run_until_quiet()
    assert net.of_type(0, SendEnvelope) == []  # both held
    net.advance(5 * MS)
    (timeout,) = net.of_type(0, WireTimeout)
    assert timeout.target_peer == net.peers[1]
    assert _events(net, 0, "reply") == [[None, "timeout"]]
    health = net.nodes[0].peer_health(net.peers[1])
    assert health is not None
    assert health.consecutive_failures == failures
    assert net.nodes[0].next_deadline_ns() == 10 * MS  # the cooldown did not move
    net.advance(5 * MS)
    # Only the one-way envelope goes out: the request's caller already had its timeout.
    (sent,) = net.of_type(0, SendEnvelope)
    assert [fill.payload for fill in sent.envelope.fills] == [msgpack.packb("kept")]
    assert _events(net, 1, "got") == ["kept"]


def test_a_held_request_the_full_queue_dropped_is_no_failure_of_the_peer_either() -> None:
    net = _echo_net(max_outbound_queue=2)
    failures = _cooled_down(net)
    _request(net, "lost", 5)
    for k in range(2):  # the queue holds two: the request is dropped to make room
        net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": k})
    net.run_until_quiet()
    assert net.of_type(0, OutboundDropped) == [OutboundDropped(1)]
    net.advance(5 * MS)
    (timeout,) = net.of_type(0, WireTimeout)
    assert timeout.target_peer == net.peers[1]
    health = net.nodes[0].peer_health(net.peers[1])
    assert health is not None
    assert health.consecutive_failures == failures
    net.advance(5 * MS)
    assert _events(net, 1, "got") == [0, 1]


def test_a_dropped_held_request_stays_dropped_across_a_snapshot_a_live_one_is_restored() -> None:
    net = _echo_net()
    _cooled_down(net)
    _request(net, "late", 5)
    _request(net, "kept", 50)
    net.run_until_quiet()
    net.advance(5 * MS)  # "late" times out while held
    snap = net.nodes[0].snapshot()
    ((peer, _timer, sends),) = snap.transient.framework.held_outbound
    assert peer == net.peers[1].to_bytes()
    assert [decode_envelope(raw).envelope.fills[0].payload for raw, _, _ in sends] == [
        msgpack.packb("kept")
    ]
    net.nodes[0] = Node.from_snapshot(snap, net.nodes[0].config, [Echo()])
    net.clear()
    net.advance(5 * MS)  # the cooldown ends: the restored node sends "kept" alone
    (sent,) = net.of_type(0, SendEnvelope)
    assert [fill.payload for fill in sent.envelope.fills] == [msgpack.packb("kept")]
    assert _events(net, 1, "got") == ["kept"]
    assert _events(net, 0, "reply") == [["kept", None]]


def test_request_timeout_gives_wire_timeout_and_failure() -> None:
    net = _echo_net()
    net.blackhole(1)
    net.nodes[0].invoke(
        "echo", "request", {"to": net.peers[1], "value": 1, "deadline_ns": 100 * MS}
    )
    net.run_until_quiet()
    assert net.nodes[0].next_deadline_ns() == 100 * MS
    net.advance(99 * MS)
    assert net.of_type(0, WireTimeout) == []
    net.advance(1 * MS)
    (timeout,) = net.of_type(0, WireTimeout)
    assert (timeout.wire_req_id, timeout.target_peer, timeout.started_at_ns) == (
        1,
        net.peers[1],
        0,
    )
    assert _events(net, 0, "reply") == [[None, "timeout"]]
    health = net.nodes[0].peer_health(net.peers[1])
    assert health is not None
    assert health.consecutive_failures == 1


def test_send_failure_of_a_request_fails_it_at_once() -> None:
    net = _echo_net()
    net.kill(1)
    net.nodes[0].invoke("echo", "request", {"to": net.peers[1], "value": 1})
    net.run_until_quiet()
    assert _events(net, 0, "reply") == [[None, "send_failed: connection refused"]]
    assert net.of_type(0, WireTimeout) == []
    assert net.nodes[0].next_deadline_ns() is None


def test_late_response_is_unmatched() -> None:
    net = _echo_net()
    net.blackhole(1)
    net.nodes[0].invoke("echo", "request", {"to": net.peers[1], "value": 1, "deadline_ns": 5})
    net.run_until_quiet()
    net.advance(5)
    assert len(net.of_type(0, WireTimeout)) == 1
    # node 1 answers request 1 now: node 0 no longer waits for it
    from bbnode.engine.envelope import (
        Correlation,
        CorrelationKind,
        SlotFill,
        WireEnvelope,
        encode_envelope,
    )
    from bbnode.engine.steps import WireReceiveFailed

    late = WireEnvelope(
        (SlotFill(b"\x00", msgpack.packb(1)),),
        correlation=Correlation(CorrelationKind.RESPONSE, 1),
    )
    net.nodes[0].deliver_inbound(net.peers[1], encode_envelope(late))
    net.run_until_quiet()
    (failed,) = net.of_type(0, WireReceiveFailed)
    assert (failed.kind, failed.fill_index) == ("unmatched_response", 0)
    assert _events(net, 0, "reply") == [[None, "timeout"]]


def test_a_held_request_that_timed_out_is_not_counted_again_when_the_full_queue_pops_it() -> None:
    net = _echo_net(max_outbound_queue=2)
    _cooled_down(net)
    _request(net, "late", 5)
    net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": "a"})
    net.run_until_quiet()
    net.advance(5 * MS)  # "late" times out while held: dropped, still in the queue
    net.clear()
    net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": "b"})  # pops "late"
    net.run_until_quiet()
    assert net.of_type(0, OutboundDropped) == []  # nothing live was dropped
    net.advance(5 * MS)
    assert _events(net, 1, "got") == ["a", "b"]


def test_sends_past_the_outbound_queue_in_one_cycle_are_reported_dropped() -> None:
    net = _echo_net(max_outbound_queue=2)
    net.clear()
    for k in range(5):
        net.nodes[0].invoke("echo", "notify", {"to": net.peers[1], "value": k})
    net.run_until_quiet()
    assert net.of_type(0, OutboundDropped) == [OutboundDropped(3)]
    assert _events(net, 1, "got") == [3, 4]
