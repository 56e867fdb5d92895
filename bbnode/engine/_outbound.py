"""Outbound: the send policy (PeerHealthGate), held envelopes, and phase-8 emission.

Every envelope a component sends goes through `gate_send`, which asks
`PeerGovernor.check_outbound(peer, backoff, now)` (block -> allow -> cooldown order):

- Allow: the envelope joins the outbound queue (bounded, oldest dropped and counted);
- Blocklisted / NotAllowlisted: no envelope; the sending op gets `OpFailed` with that reason;
- Cooldown(retry_ns): the envelope is *held* for that peer (bounded per peer by
  `max_outbound_queue`, oldest dropped and counted) and a scheduler timer releases the
  peer's held envelopes at `retry_ns` (or earlier, on any success from the peer). Released
  envelopes pass the gate again, so a peer that failed again meanwhile stays held.

Phase 8 emits, in this order: envelopes handed back by the host (`redelivered=True`), the
queue (`SendEnvelope`; one-way sends to one peer merged, see `_coalesce`),
`PeerResolveFailed`s, one `OutboundDropped`, one
`CycleBudgetExceeded`, `PeerDown`/`PeerUp` transitions, `AppEvent`s.
"""

from __future__ import annotations

from bbnode.engine._coalesce import send_steps
from bbnode.engine._core import EngineCore
from bbnode.engine._state import Held, HeldSend
from bbnode.engine.envelope import Correlation, SlotFill, WireEnvelope
from bbnode.engine.framework import Allow, Cooldown
from bbnode.engine.steps import (
    CycleBudgetExceeded,
    EngineStep,
    OpFailed,
    OpFailure,
    OutboundDropped,
    PeerResolveFailed,
    SendEnvelope,
)
from bbnode.ids import PeerId

__all__ = ["OutboundMixin"]

_RELEASE = "release"


class OutboundMixin(EngineCore):
    """Send policy, held envelopes and phase-8 emission."""

    def build_envelope(
        self,
        peer: PeerId,
        fill: SlotFill,
        correlation: Correlation,
        remaining_deadline_ns: int | None,
        op_ref: int,
        exec_id: int,
    ) -> WireEnvelope | None:
        """One-fill envelope to `peer`, or None (and `PeerResolveFailed`) if no address."""
        addresses = self.book.lookup_bytes(peer)
        if not addresses:
            self.resolve_failed.append(PeerResolveFailed(peer, op_ref, exec_id))
            return None
        # Positional: cheaper than keywords, and this runs once per sent envelope.
        return WireEnvelope(
            (fill,), addresses, correlation, remaining_deadline_ns, (), self.src_addr_bytes
        )

    def gate_send(self, peer: PeerId, envelope: WireEnvelope, op_ref: int, exec_id: int) -> None:
        """Apply the outbound policy to one envelope (see the module docstring)."""
        decision = self.governor.check_outbound(peer, self.backoff, self.now_ns)
        if decision.__class__ is Allow:
            self.outq.push((peer, envelope, False))
            return
        reason = decision.reason  # type: ignore[union-attr]
        if isinstance(reason, Cooldown):
            self.hold(peer, HeldSend(envelope, op_ref, exec_id), reason.retry_ns)
            return
        self.counters.incr(f"outbound_{reason.code}")
        self.steps.append(OpFailed(op_ref, exec_id, OpFailure(reason.code, f"send to {peer}")))

    def hold(self, peer: PeerId, send: HeldSend, retry_ns: int) -> None:
        """Keep `send` until `peer`'s retry time, arming the release timer once per peer."""
        held = self.held.get(peer)
        if held is None:
            timer = self.scheduler.schedule(max(retry_ns, self.now_ns), [_RELEASE, peer])
            held = self.held[peer] = Held(timer)
        if len(held.sends) >= self.config.max_outbound_queue and held.drop_oldest():
            self.held_dropped += 1
        held.add(send)

    def release_held(self, peer: PeerId) -> None:
        """Take `peer`'s held envelopes and gate each again, in the order they were held."""
        held = self.held.pop(peer, None)
        if held is None:
            return
        self.scheduler.cancel(held.timer)
        for send in held.live():
            self.gate_send(peer, send.envelope, send.op_ref, send.exec_id)

    def emit_outputs(self) -> list[EngineStep]:
        """Phase 8: append this cycle's outbound and summary steps; return the full list."""
        # Every list is touched only when it holds something: an idle cycle (a tick with
        # nothing due) runs once per host turn.
        steps = self.steps
        self.steps = []
        outbound, dropped = self.outq.take_all()
        pending = self.pending_outbound
        if pending:
            outbound[:0] = pending
            pending.clear()
        if len(outbound) == 1:  # one request or response per cycle is common: no merging
            peer, envelope, redelivered = outbound[0]
            steps.append(SendEnvelope(envelope, peer, redelivered))
        elif outbound:
            steps += send_steps(outbound, self.config.max_fills_per_envelope)
        if self.resolve_failed:
            steps.extend(self.resolve_failed)
            self.resolve_failed = []
        if self.held_dropped:
            dropped += self.held_dropped
        if dropped:
            self.held_dropped = 0
            self.counters.incr("outbound_dropped", dropped)
            steps.append(OutboundDropped(dropped))
        if self.budget_exceeded:
            steps.append(CycleBudgetExceeded(self.ops_invoked))
            self.budget_exceeded = False
        if self.transitions:
            steps.extend(self.transitions)
            self.transitions = []
        if self.app_events:
            steps.extend(self.app_events)
            self.app_events = []
        if self.blocked_this_cycle:
            self.blocked_this_cycle.clear()
        self.ops_invoked = 0
        return steps
