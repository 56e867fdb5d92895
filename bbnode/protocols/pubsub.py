"""Pubsub: topics flooded through the mesh, delivered once and in order per publisher.

A message carries an id (`origin` peer, the publisher's random `epoch`, a per-publisher
`seq`) and a hop limit. Each node delivers a message at most once (the engine's dedup window
and the per-publisher `Inbox`, both in the snapshot, so a restart never re-delivers), forwards
it to its other peers while hops remain, and delivers locally in `seq` order: a message that
arrives ahead of a gap waits at most `reorder_window_ns` for the gap to fill. A message whose
origin or carrier is blocked is neither delivered nor forwarded. The schema lives in
`_pubsub_wire`, the ordering in `_pubsub_inbox`; both are re-exported here. This component
runs inside the sans-IO engine: no clock, no I/O.

Integration contract (the daemon):

- install `Pubsub()` (module name ``"pubsub"``) when ``[protocols.pubsub] enabled``;
- ``ctl publish TOPIC DATA`` → ``node.invoke("pubsub", "publish", {"topic": str,
  "data": bytes})``. A bad topic (empty, over 256 bytes, starting ``bb.``, control
  characters) or payload (not bytes, over 1 MiB) fails the op with `PubsubLocalError`
  (`OpFailed(kind="raised")`, detail naming the problem); success is
  `OpCompleted(outputs={"topic": str, "seq": int, "id": "<hex message id>"})`;
- every delivery is `AppEvent(module_name="pubsub", topic=TOPIC, value)` with value (msgpack)
  ``{"topic": str, "data": bytes, "origin": "<base58 peer id>", "seq": int}``; ``ctl
  subscribe TOPIC`` streams the AppEvents of module ``pubsub`` whose topic is TOPIC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from bbnode.engine.component import Component, Immediate
from bbnode.ids import PeerId
from bbnode.protocols._pubsub_inbox import (
    DEFAULT_REORDER_WINDOW_NS,
    MAX_BUFFERED_PER_STREAM,
    MAX_STREAMS,
    Inbox,
    Verdict,
)
from bbnode.protocols._pubsub_wire import (
    DEFAULT_HOPS,
    MAX_DATA_BYTES,
    MAX_HOPS,
    MAX_TOPIC_BYTES,
    PUBSUB_SCHEMA_VERSION,
    PubsubError,
    PubsubLocalError,
    PubsubMessage,
    PubsubRemoteError,
    decode_message,
    encode_message,
    forwarded,
    message_id,
    validate_topic,
)

if TYPE_CHECKING:
    from bbnode.engine._context import OpContext

__all__ = [
    "DEFAULT_HOPS",
    "DEFAULT_REORDER_WINDOW_NS",
    "MAX_BUFFERED_PER_STREAM",
    "MAX_DATA_BYTES",
    "MAX_HOPS",
    "MAX_STREAMS",
    "MAX_TOPIC_BYTES",
    "PUBSUB_SCHEMA_VERSION",
    "Inbox",
    "Pubsub",
    "PubsubError",
    "PubsubLocalError",
    "PubsubMessage",
    "PubsubRemoteError",
    "Verdict",
    "decode_message",
    "encode_message",
    "forwarded",
    "message_id",
    "validate_topic",
]


class Pubsub(Component):
    """Engine component: publish, flood, dedup, order, deliver.

    Ops:
    - ``publish`` (host, inputs ``topic``, ``data``): a new message from this node, delivered
      locally and sent to every reachable peer.
    - ``message`` (inbound from a peer, payload = one encoded `PubsubMessage`).
    - ``expire`` (own timer): deliver messages whose gap waited a full reorder window.

    Counters: ``pubsub.published``, ``pubsub.delivered``, ``pubsub.forwarded``,
    ``pubsub.duplicates``, ``pubsub.blocked``, ``pubsub.rejected``.
    """

    TYPE_NAME: ClassVar[str] = "pubsub"
    OPS: ClassVar[tuple[str, ...]] = ("publish", "message", "expire")

    def __init__(
        self,
        hops: int = DEFAULT_HOPS,
        reorder_window_ns: int = DEFAULT_REORDER_WINDOW_NS,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if not isinstance(hops, int) or not 1 <= hops <= MAX_HOPS:
            raise PubsubLocalError(f"pubsub: hops must be in [1, {MAX_HOPS}], got {hops!r}")
        self.hops = hops
        self.inbox = Inbox(reorder_window_ns)
        # Our publisher stream: the epoch is drawn from the engine RNG on first publish.
        self.epoch: int | None = None
        self.next_seq = 1
        # Engine time the `expire` timer is armed for (the timer itself is engine state).
        self._expire_at_ns: int | None = None
        self._ops: dict[str, Callable[[Mapping[str, Any], OpContext], Immediate]] = {
            "publish": self._publish,
            "message": self._message,
            "expire": self._expire,
        }

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        return self._ops[op](inputs, ctx)

    def serialize(self) -> Any:
        return {
            "epoch": self.epoch,
            "next_seq": self.next_seq,
            "expire_at_ns": self._expire_at_ns,
            "inbox": self.inbox.serialize(),
        }

    def restore(self, state: Any) -> None:
        if not isinstance(state, Mapping):
            raise PubsubLocalError("pubsub: saved state must be a map")
        epoch, next_seq, expire_at = (state.get(k) for k in ("epoch", "next_seq", "expire_at_ns"))
        if epoch is not None and not isinstance(epoch, int):
            raise PubsubLocalError(f"pubsub: saved epoch {epoch!r} is not an int")
        if not isinstance(next_seq, int) or next_seq < 1:
            raise PubsubLocalError(f"pubsub: saved next_seq {next_seq!r} is not an int >= 1")
        if expire_at is not None and not isinstance(expire_at, int):
            raise PubsubLocalError(f"pubsub: saved expire_at_ns {expire_at!r} is not an int")
        self.inbox.restore(state.get("inbox", []))
        self.epoch, self.next_seq, self._expire_at_ns = epoch, next_seq, expire_at

    # ops ------------------------------------------------------------------------------------
    def _publish(self, inputs: Mapping[str, Any], ctx: OpContext) -> Immediate:
        topic = validate_topic(inputs.get("topic"))
        data = inputs.get("data")
        if not isinstance(data, bytes):
            raise PubsubLocalError(f"pubsub: data must be bytes, got {type(data).__name__}")
        if len(data) > MAX_DATA_BYTES:
            raise PubsubLocalError(
                f"pubsub: data of {len(data)} bytes is over the {MAX_DATA_BYTES} byte limit"
            )
        if self.epoch is None:
            self.epoch = ctx.rng.getrandbits(64)
        message = PubsubMessage(topic, ctx.self_peer, self.epoch, self.next_seq, self.hops, data)
        self.next_seq += 1
        ctx.incr("pubsub.published")
        self._handle(message, None, ctx)
        return Immediate({"topic": topic, "seq": message.seq, "id": message.id.hex()})

    def _message(self, inputs: Mapping[str, Any], ctx: OpContext) -> Immediate:
        sender = ctx.src_peer
        if sender is None:
            raise PubsubLocalError("pubsub: 'message' is only for envelopes from peers")
        try:
            message = decode_message(inputs.get("payload"))
        except PubsubRemoteError as exc:
            ctx.incr("pubsub.rejected")
            return Immediate({"error": str(exc)})
        return Immediate({"outcome": self._handle(message, sender, ctx)})

    def _expire(self, inputs: Mapping[str, Any], ctx: OpContext) -> Immediate:
        self._expire_at_ns = None
        delivered = self.inbox.expire(ctx.now_ns)
        for message in delivered:
            self._deliver(message, ctx)
        self._arm_expiry(ctx)
        return Immediate({"delivered": len(delivered)})

    # helpers --------------------------------------------------------------------------------
    def _handle(self, message: PubsubMessage, sender: PeerId | None, ctx: OpContext) -> str:
        """Dedup, forward and deliver one message; returns what happened to it."""
        if ctx.is_blocked(message.origin) or (sender is not None and ctx.is_blocked(sender)):
            ctx.incr("pubsub.blocked")
            return "blocked"
        if ctx.seen(message.id):
            ctx.incr("pubsub.duplicates")
            return "duplicate"
        verdict, deliverable = self.inbox.accept(message, ctx.now_ns)
        if verdict == "duplicate":
            ctx.incr("pubsub.duplicates")
            return "duplicate"
        onward = message if sender is None else forwarded(message)
        if onward is not None:
            skip = {ctx.self_peer, message.origin, sender}
            targets = [
                peer
                for peer in ctx.known_peers()
                if peer not in skip and not ctx.is_blocked(peer) and not ctx.is_down(peer)
            ]
            if targets:
                ctx.send(targets, self.name, "message", encode_message(onward))
                ctx.incr("pubsub.forwarded", len(targets))
        for ready in deliverable:
            self._deliver(ready, ctx)
        self._arm_expiry(ctx)
        return "delivered" if deliverable else "waiting"

    @staticmethod
    def _deliver(message: PubsubMessage, ctx: OpContext) -> None:
        ctx.emit(
            message.topic,
            {
                "topic": message.topic,
                "data": message.data,
                "origin": str(message.origin),
                "seq": message.seq,
            },
        )
        ctx.incr("pubsub.delivered")

    def _arm_expiry(self, ctx: OpContext) -> None:
        # Waiting messages' deadlines only grow (arrival + a fixed window), so one timer armed
        # for the earliest is enough: when it fires, `_expire` re-arms for the next.
        deadline = self.inbox.next_deadline_ns()
        if deadline is None or self._expire_at_ns is not None:
            return
        self._expire_at_ns = deadline
        ctx.after(max(0, deadline - ctx.now_ns), "expire", {})
