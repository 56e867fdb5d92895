"""Heartbeat: request/response pings so peer health moves with no application traffic.

Every ``interval_ns`` the component sends a ``ping`` *request* to each peer it pings
(connected peers, which the daemon reports through the ``peer_connected`` /
``peer_disconnected`` ops, plus peers in the address book). The remote ``ping`` op replies
at once. The engine does the accounting: a response records a success, a request that
outlives ``timeout_ns`` becomes ``WireTimeout`` and records a failure, so after
``failure_threshold`` missed pings the node emits ``PeerDown`` and the first reply after
that emits ``PeerUp``. Pinging a known peer that is not connected makes the daemon dial it
(subject to the engine's backoff), which is how a restarted peer is found again.

This module runs inside the sans-IO engine: no clock, no I/O. Its state (the connected set,
the sequence number, its timer id) is part of the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Final

from bbnode.engine.component import Component, Immediate
from bbnode.engine.errors import OpError
from bbnode.ids import IdError, PeerId

if TYPE_CHECKING:
    from bbnode.engine._context import OpContext

__all__ = ["DEFAULT_INTERVAL_NS", "DEFAULT_TIMEOUT_NS", "MAX_TARGETS_PER_ROUND", "Heartbeat"]

#: SPEC §7 ``[protocols.heartbeat]`` defaults: interval_s = 5, timeout_s = 2.
DEFAULT_INTERVAL_NS: Final = 5_000_000_000
DEFAULT_TIMEOUT_NS: Final = 2_000_000_000
#: Pings per round; the address book may hold 16 384 peers and a round must stay cheap.
#: Connected peers are always pinged first; known-only peers fill the rest, rotating.
MAX_TARGETS_PER_ROUND: Final = 256


def _peer_input(inputs: dict[str, Any], op: str) -> PeerId:
    raw = inputs.get("peer")
    if isinstance(raw, PeerId):
        return raw
    if isinstance(raw, bytes | bytearray):
        try:
            return PeerId.from_bytes(bytes(raw))
        except IdError as exc:
            raise OpError(f"heartbeat.{op}: bad peer id: {exc}") from exc
    if isinstance(raw, str):
        try:
            return PeerId.from_string(raw)
        except IdError as exc:
            raise OpError(f"heartbeat.{op}: bad peer id: {exc}") from exc
    raise OpError(f"heartbeat.{op}: input 'peer' must be peer id bytes or text")


class Heartbeat(Component):
    """The built-in heartbeat component (``TYPE_NAME = "heartbeat"``).

    Ops: ``start`` (re-arm the round timer; the daemon calls it at every start so a changed
    interval applies after a restore), ``round`` (timer: ping every target), ``ping``
    (remote request: reply), ``pong`` (reply or failure of our ping), ``peer_connected`` /
    ``peer_disconnected`` (inputs ``peer``: the daemon's view of live connections).
    """

    TYPE_NAME: ClassVar[str] = "heartbeat"
    OPS: ClassVar[tuple[str, ...]] = (
        "start",
        "round",
        "ping",
        "pong",
        "peer_connected",
        "peer_disconnected",
    )

    def __init__(
        self,
        interval_ns: int = DEFAULT_INTERVAL_NS,
        timeout_ns: int = DEFAULT_TIMEOUT_NS,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if interval_ns <= 0:
            raise ValueError(f"heartbeat interval_ns must be positive, got {interval_ns}")
        if timeout_ns <= 0:
            raise ValueError(f"heartbeat timeout_ns must be positive, got {timeout_ns}")
        self.interval_ns = interval_ns
        self.timeout_ns = timeout_ns
        self.connected: set[PeerId] = set()
        self.seq = 0
        self.timer: int | None = None
        self.cursor = 0
        self.replies = 0
        self.failures = 0

    # -- state ---------------------------------------------------------------------------------
    def serialize(self) -> Any:
        return {
            "connected": sorted(p.to_bytes() for p in self.connected),
            "seq": self.seq,
            "timer": self.timer,
            "cursor": self.cursor,
            "replies": self.replies,
            "failures": self.failures,
        }

    def restore(self, state: Any) -> None:
        if not isinstance(state, dict):
            return
        # Connections do not survive a restart; the daemon re-reports live ones.
        self.connected = set()
        self.seq = int(state.get("seq", 0))
        timer = state.get("timer")
        self.timer = int(timer) if isinstance(timer, int) else None
        self.cursor = int(state.get("cursor", 0))
        self.replies = int(state.get("replies", 0))
        self.failures = int(state.get("failures", 0))

    def on_install(self, ctx: OpContext) -> None:
        self.timer = ctx.interval(self.interval_ns, "round")

    # -- ops -----------------------------------------------------------------------------------
    def dispatch(self, op: str, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        handler = self._OPS_TABLE.get(op)
        if handler is None:
            raise OpError(f"heartbeat: unknown op {op!r}")
        result: Immediate = handler(self, inputs, ctx)
        return result

    def _start(self, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        if self.timer is not None:
            ctx.cancel(self.timer)
        self.timer = ctx.interval(self.interval_ns, "round")
        return Immediate({"timer": self.timer})

    def targets(self, known: list[PeerId], is_blocked: Callable[[PeerId], bool]) -> list[PeerId]:
        """This round's ping targets: connected peers, then known ones (rotating)."""
        chosen = sorted(p for p in self.connected if not is_blocked(p))
        extra = sorted(p for p in known if p not in self.connected and not is_blocked(p))
        room = MAX_TARGETS_PER_ROUND - len(chosen)
        if room <= 0:
            return chosen[:MAX_TARGETS_PER_ROUND]
        if extra:
            start = self.cursor % len(extra)
            rotated = extra[start:] + extra[:start]
            chosen.extend(rotated[:room])
            self.cursor = (start + min(room, len(extra))) % len(extra)
        return chosen

    def _round(self, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        me = ctx.self_peer
        targets = [p for p in self.targets(ctx.known_peers(), ctx.is_blocked) if p != me]
        deadline = ctx.now_ns + self.timeout_ns
        for peer in targets:
            self.seq += 1
            ctx.send(
                peer,
                self.name,
                "ping",
                {"seq": self.seq},
                request=True,
                deadline_ns=deadline,
                reply_op="pong",
            )
        ctx.incr("heartbeat.pings", len(targets))
        return Immediate({"pinged": len(targets)})

    def _ping(self, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        payload = inputs.get("payload")
        seq = payload.get("seq") if isinstance(payload, dict) else None
        if ctx.wire_req_id:
            ctx.reply({"seq": seq if isinstance(seq, int) else 0})
        return Immediate()

    def _pong(self, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        # The engine already recorded success (response) or failure (timeout, send failure)
        # with the governor; here we only keep figures for status and tests.
        if inputs.get("error") is None:
            self.replies += 1
            ctx.incr("heartbeat.replies")
        else:
            self.failures += 1
            ctx.incr("heartbeat.failures")
        return Immediate()

    def _peer_connected(self, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        self.connected.add(_peer_input(inputs, "peer_connected"))
        return Immediate()

    def _peer_disconnected(self, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        self.connected.discard(_peer_input(inputs, "peer_disconnected"))
        return Immediate()

    _OPS_TABLE: ClassVar[dict[str, Any]] = {
        "start": _start,
        "round": _round,
        "ping": _ping,
        "pong": _pong,
        "peer_connected": _peer_connected,
        "peer_disconnected": _peer_disconnected,
    }
