"""Node entry points: validation (DeliveryError, nothing queued) and single-node cycle rules."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from bbnode.engine import (
    Async,
    Component,
    DuplicateComponent,
    Immediate,
    InflightBudgetExceeded,
    IngressFull,
    InstallError,
    InvalidInput,
    Node,
    NodeConfig,
    OpContext,
    PayloadTooLarge,
    UnknownCommand,
    UnknownComponent,
    UnknownOp,
    op_suffixes,
    site_id,
)
from bbnode.engine.envelope import SlotFill, WireEnvelope, encode_envelope
from bbnode.engine.errors import InvalidConfig
from bbnode.engine.steps import (
    AppEvent,
    AsyncSuspended,
    CycleBudgetExceeded,
    LifecycleFired,
    OpCompleted,
    OpFailed,
    OpFailure,
    PeerBlocked,
    PeerResolveFailed,
    WireDecodeFailed,
    WireReceiveFailed,
)
from bbnode.ids import Address, PeerId, fnv1a_32, fnv1a_64
from tests.engine.sample_components import Worker

ME = PeerId.from_u64(100)
P1 = PeerId.from_u64(1)


def _node(**config: Any) -> Node:
    node = Node(ME, [Address.tcp("127.0.0.1", 7400)], NodeConfig(rng_seed=3, **config))
    node.install(Worker())
    return node


WSITE = site_id(fnv1a_32(b"worker"), "act")


def _frame(value: Any, suffix: bytes | None = None) -> bytes:
    if suffix is None:
        suffix = op_suffixes(fnv1a_32(b"worker"), "recv")[0]
    return encode_envelope(WireEnvelope((SlotFill(suffix, msgpack.packb(value)),)))


# -- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda n: n.invoke("nope", "act", {}), UnknownComponent),
        (lambda n: n.invoke("worker", "nope", {}), UnknownOp),
        (lambda n: n.invoke("worker", "act", {"x": object()}), InvalidInput),
        (lambda n: n.invoke("worker", "act", {1: 2}), InvalidInput),
        (lambda n: n.invoke("worker", "act", {"x": b"y" * 200}), PayloadTooLarge),
        (lambda n: n.deliver_event("worker", "act", "not bytes"), InvalidInput),
        (lambda n: n.deliver_inbound("peer", b"x"), InvalidInput),
        (lambda n: n.deliver_inbound(P1, "text"), InvalidInput),
        (lambda n: n.deliver_inbound(P1, b"x" * 1025), PayloadTooLarge),
        (lambda n: n.deliver_inbound(P1, b"x", observed_address="/ip4"), InvalidInput),
        (lambda n: n.complete(1, {}), UnknownCommand),
        (lambda n: n.complete(True, {}), InvalidInput),
        (lambda n: n.fail(0, "x"), UnknownCommand),
        (lambda n: n.tick(-1), InvalidInput),
        (lambda n: n.send_failed(P1, -1, "x"), InvalidInput),
        (lambda n: n.dial_failed(P1, "addr", "x"), InvalidInput),
        (lambda n: n.block_peer(P1, until_ns=-5), InvalidInput),
        (lambda n: n.fire_lifecycle(""), InvalidInput),
    ],
)
def test_bad_host_input_raises_and_queues_nothing(call: Any, error: type[Exception]) -> None:
    from bbnode.engine.envelope import EnvelopeLimits

    node = Node(
        ME,
        config=NodeConfig(
            rng_seed=1,
            max_input_bytes=100,
            envelope_limits=EnvelopeLimits(max_envelope_bytes=1024),
        ),
    )
    node.install(Worker())
    with pytest.raises(error):
        call(node)
    assert not node.has_work()
    assert node.poll() == []


def test_ingress_bounds() -> None:
    node = _node(ingress_capacity=2, max_inflight_bytes=10)
    node.tick(1)
    node.tick(2)
    with pytest.raises(IngressFull):
        node.tick(3)
    node.poll()
    node.deliver_inbound(P1, b"12345678")
    with pytest.raises(InflightBudgetExceeded):
        node.deliver_inbound(P1, b"123")
    node.poll()
    node.deliver_inbound(P1, b"123")  # the budget is released by the poll


def test_config_validation_names_the_field() -> None:
    with pytest.raises(InvalidConfig, match="cycle_op_budget"):
        NodeConfig(cycle_op_budget=0)
    with pytest.raises(InvalidConfig, match="backoff_max_ns"):
        NodeConfig(backoff_base_ns=10, backoff_max_ns=5)


def test_install_rules() -> None:
    node = _node()
    with pytest.raises(DuplicateComponent):
        node.install(Worker())
    ref = node.install(Worker(name="second"))
    assert ref == fnv1a_32(b"second")

    class NoOps(Component):
        TYPE_NAME = "noops"

    with pytest.raises(InstallError, match="OPS"):
        node.install(NoOps())


# -- cycle -----------------------------------------------------------------------------------------
def test_invoke_runs_and_completes() -> None:
    node = _node()
    exec_id = node.invoke("worker", "act", {"do": "emit", "value": 5})
    assert node.poll() == [
        OpCompleted(WSITE, exec_id, {"done": "emit"}),
        AppEvent("worker", "t", msgpack.packb(5)),
    ]
    assert node.poll() == []


def test_op_that_raises_is_op_failed_and_cycle_continues() -> None:
    node = _node()
    first = node.invoke("worker", "act", {"do": "raise", "value": 1})
    second = node.invoke("worker", "act", {"do": "emit", "value": 2})
    steps = node.poll()
    assert steps[0] == OpFailed(
        WSITE, first, OpFailure("raised", "ValueError: asked to fail with 1")
    )
    assert steps[1] == OpCompleted(WSITE, second, {"done": "emit"})


def test_async_suspension_completion_and_timeout() -> None:
    node = _node()
    a = node.invoke("worker", "act", {"do": "suspend"})
    b = node.invoke("worker", "act", {"do": "suspend", "ttl": 50})
    assert node.poll() == [
        AsyncSuspended(WSITE, a, 1, None),
        AsyncSuspended(WSITE, b, 2, 50),
    ]
    assert node.next_deadline_ns() == 50
    node.complete(1, {"answer": 42})
    resume = site_id(fnv1a_32(b"worker"), "resume")
    steps = node.poll()
    assert steps[0] == OpCompleted(resume, a, {"count": 3})
    assert steps[1] == AppEvent("worker", "resumed", msgpack.packb({"answer": 42}))
    node.tick(50)
    (failed,) = node.poll()
    assert failed == OpFailed(WSITE, b, OpFailure("timeout", "command 2 passed its deadline 50"))
    node.complete(2, {})  # too late: ignored, counted
    assert node.poll() == []
    assert node.counters()["completions_unmatched"] == 1


def test_host_fail_fails_the_suspended_op() -> None:
    node = _node()
    a = node.invoke("worker", "act", {"do": "suspend"})
    node.poll()
    node.fail(1, "disk full")
    assert node.poll() == [OpFailed(WSITE, a, OpFailure("command_failed", "disk full"))]


def test_timers_after_and_interval() -> None:
    node = _node()
    node.invoke("worker", "act", {"do": "after", "delay": 10, "value": "late"})
    node.invoke("worker", "act", {"do": "interval", "delay": 4})  # period 5
    node.poll()
    assert node.next_deadline_ns() == 5
    node.tick(12)
    topics = [
        (s.topic, msgpack.unpackb(s.value_bytes)) for s in node.poll() if isinstance(s, AppEvent)
    ]
    assert topics == [("tick", [5, 3]), ("t", "late")]
    assert node.next_deadline_ns() == 17  # missed period at 10 skipped, next is 12 + 5


def test_cycle_budget() -> None:
    node = _node(cycle_op_budget=2)
    for k in range(5):
        node.invoke("worker", "act", {"do": "emit", "value": k})
    steps = node.poll()
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["OpCompleted", "OpCompleted", "CycleBudgetExceeded", "AppEvent", "AppEvent"]
    assert steps[2] == CycleBudgetExceeded(2)
    assert node.has_work()
    node.poll()
    node.poll()
    assert not node.has_work()


def test_lifecycle_fires_and_invokes_on_lifecycle() -> None:
    node = _node()
    node.fire_lifecycle("PreShutdown")
    assert node.poll() == [LifecycleFired("PreShutdown")]
    assert node.has_work()
    steps = node.poll()
    assert AppEvent("worker", "phase", msgpack.packb("PreShutdown")) in steps


def test_blocked_inbound_dropped_before_decode_once_per_cycle() -> None:
    node = _node()
    node.block_peer(P1)
    node.deliver_inbound(P1, b"garbage is not even decoded")
    node.deliver_inbound(P1, _frame(1))
    assert node.poll() == [PeerBlocked(P1, "blocklisted")]


def test_ban_with_expiry() -> None:
    node = _node()
    node.block_peer(P1, until_ns=10)
    node.deliver_inbound(P1, _frame(1))
    assert node.poll() == [PeerBlocked(P1, "blocklisted")]
    node.tick(10)
    node.deliver_inbound(P1, _frame(2))
    assert AppEvent("worker", "recv", msgpack.packb([2, P1.to_bytes()])) in node.poll()


def test_remote_garbage_becomes_steps() -> None:
    node = _node()
    node.deliver_inbound(P1, b"\xc1garbage")
    node.deliver_inbound(P1, _frame(1, suffix=Address([("site", 12345)]).to_bytes()))
    steps = node.poll()
    assert isinstance(steps[0], WireDecodeFailed)
    assert steps[0].hash == fnv1a_64(b"\xc1garbage")
    assert steps[0].payload_size == 8
    assert isinstance(steps[1], WireReceiveFailed)
    assert (steps[1].kind, steps[1].fill_index) == ("unroutable", 0)


def test_inbound_fill_routed_by_both_suffix_forms() -> None:
    node = _node()
    by_name, by_site = op_suffixes(fnv1a_32(b"worker"), "recv")
    node.deliver_inbound(P1, _frame("a", by_name))
    node.deliver_inbound(P1, _frame("b", by_site))
    events = [msgpack.unpackb(s.value_bytes)[0] for s in node.poll() if isinstance(s, AppEvent)]
    assert events == ["a", "b"]
    assert node.address_book.lookup(P1) == ()  # the frames carried no sender address


def test_send_to_unknown_peer_is_resolve_failed_and_blocked_send_is_op_failed() -> None:
    node = _node()
    a = node.invoke("worker", "act", {"do": "send", "peer": P1, "value": 1})
    assert PeerResolveFailed(P1, WSITE, a) in node.poll()
    node.add_peer(P1, [Address.tcp("10.0.0.1", 1)])
    node.block_peer(P1)
    b = node.invoke("worker", "act", {"do": "send", "peer": P1, "value": 1})
    assert OpFailed(WSITE, b, OpFailure("blocklisted", f"send to {P1}")) in node.poll()


def test_emit_reserved_topic_fails_the_op() -> None:
    class Bad(Component):
        TYPE_NAME = "bad"
        OPS = ("go",)

        def dispatch(self, op: str, inputs: dict[str, Any], ctx: OpContext) -> Immediate | Async:
            ctx.emit("bb.engine", 1)
            return Immediate()

    node = _node()
    node.install(Bad())
    exec_id = node.invoke("bad", "go")
    (step,) = node.poll()
    assert isinstance(step, OpFailed)
    assert step.exec_id == exec_id
    assert "reserved" in step.error.detail


class _ArmsOnInstall(Component):
    """Arms a timer from `on_install`, outside any poll."""

    TYPE_NAME = "arms_on_install"
    OPS = ("fire",)

    def on_install(self, ctx: OpContext) -> None:
        ctx.after(7, "fire")

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        return Immediate()


def test_next_deadline_is_worked_out_again_after_every_poll_and_install() -> None:
    node = _node()
    assert node.next_deadline_ns() is None
    node.invoke("worker", "act", {"do": "after", "delay": 10, "value": "x"})
    assert node.next_deadline_ns() is None  # queued, not run yet
    node.poll()
    assert node.next_deadline_ns() == 10
    assert not node.has_work()
    node.tick(10)
    assert node.next_deadline_ns() == 10  # a tick is only queued
    node.poll()
    assert node.next_deadline_ns() is None
    node.install(_ArmsOnInstall())
    assert node.next_deadline_ns() == 17
    node.tick(17)
    node.poll()
    assert node.next_deadline_ns() is None


def test_a_queued_envelope_is_an_envelope_from_to_snapshots_and_to_a_restored_node() -> None:
    node = _node()
    sender = PeerId.from_u64(77)
    observed = Address.tcp("10.0.0.9", 4001)
    frame = _frame("queued")
    node.deliver_inbound(sender, frame, observed)
    snap = node.snapshot()
    assert snap.transient.ingress == [
        {
            "Envelope": {
                "src_peer": sender.to_bytes(),
                "data": frame,
                "observed_address": observed.to_bytes(),
            }
        }
    ]
    restored = Node.from_snapshot(snap, node.config, [Worker()])
    steps = node.poll()
    assert any(isinstance(step, OpCompleted) for step in steps)
    assert restored.poll() == steps
