"""The engine driver: the only task that touches the Node.

Loop: apply due timers (``tick`` at ``next_deadline_ns``), ``poll``, execute every step
through a dispatch table keyed by step type, then sleep until the next input, the next
engine deadline, the next checkpoint or the next watchdog ping, whichever is first.
Inputs arrive on one bounded trio channel: frames and connection news from connection tasks
(:mod:`.events`) and control-socket calls (:class:`ControlCall`), so even control commands
run here, between polls.

Engine time is epoch ns advanced monotonically (see :mod:`.clock`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from bbnode.daemon.checkpoint import Checkpointer
from bbnode.daemon.clock import EngineClock
from bbnode.daemon.connections import ConnectionManager, OutboundFrame
from bbnode.daemon.counters import Counters
from bbnode.daemon.events import (
    Connected,
    DialFailedIn,
    Disconnected,
    DriverInput,
    FrameIn,
    SendFailedIn,
)
from bbnode.daemon.notify import SdNotifier
from bbnode.daemon.peer_policy import PeerPolicy
from bbnode.daemon.subscriptions import SubscriptionHub
from bbnode.engine import steps
from bbnode.engine.envelope import CorrelationKind, encode_envelope
from bbnode.engine.errors import DeliveryError
from bbnode.engine.node import Node
from bbnode.ids import Address, IdError, PeerId

__all__ = ["INGRESS_CAPACITY", "ControlCall", "DriverSettings", "EngineDriver"]

log = structlog.get_logger(component="driver")

#: Inputs buffered between connection tasks and the driver. When full, connection readers
#: wait, which pushes back on peers through TCP instead of growing memory.
INGRESS_CAPACITY = 1024
#: Inputs handled per wakeup before polling, so a flood cannot starve timers.
_BATCH = 256


@dataclass(slots=True)
class ControlCall:
    """A control command to run in the driver; ``run(driver)`` produces the result."""

    run: Callable[[EngineDriver], Any]
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class DriverSettings:
    """Driver knobs (units in the names)."""

    snapshot_interval_s: float = 60.0
    heartbeat_module: str | None = "heartbeat"
    watchdog_interval_s: float | None = None
    #: The driver counts as stuck when its loop has not turned for this long.
    stuck_after_s: float = 30.0


class EngineDriver:
    """Runs the Node; see the module docstring. ``inputs`` is the channel to feed it."""

    def __init__(
        self,
        node: Node,
        manager: ConnectionManager,
        clock: EngineClock,
        checkpointer: Checkpointer,
        hub: SubscriptionHub,
        counters: Counters,
        policy: PeerPolicy,
        notifier: SdNotifier,
        settings: DriverSettings,
        receive: trio.MemoryReceiveChannel[DriverInput | ControlCall],
    ) -> None:
        self.node = node
        self.manager = manager
        self.clock = clock
        self.checkpointer = checkpointer
        self.hub = hub
        self.counters = counters
        self.policy = policy
        self.notifier = notifier
        self.settings = settings
        self._receive = receive
        self.static_addresses: dict[PeerId, list[Address]] = {}
        #: Every peer we sent to or heard from this run (for ``ctl peers``).
        self.known_peers: set[PeerId] = set()
        self.last_turn_s = trio.current_time()
        self._snapshot_due = False
        self._next_snapshot_at = trio.current_time() + settings.snapshot_interval_s
        # Armed by start_watchdog() once READY=1 went out: systemd expects READY first.
        self._next_watchdog_at = math.inf
        self._draining = False
        self.steps_executed = 0
        self._dispatch: dict[type[Any], Callable[[Any], None]] = {
            steps.SendEnvelope: self._on_send,
            steps.PeerDown: self._on_peer_down,
            steps.PeerUp: self._on_peer_up,
            steps.PeerBlocked: self._on_peer_blocked,
            steps.AppEvent: self._on_app_event,
            steps.OpFailed: self._on_op_failed,
            steps.LifecycleFired: self._on_lifecycle,
        }
        self._inputs: dict[type[Any], Callable[[Any], None]] = {
            FrameIn: self._in_frame,
            Connected: self._in_connected,
            Disconnected: self._in_disconnected,
            DialFailedIn: self._in_dial_failed,
            SendFailedIn: self._in_send_failed,
        }

    # -- the loop ----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the node until cancelled."""
        task_status.started()
        while True:
            self.turn()
            await self._wait_for_input()

    def turn(self) -> int:
        """Tick due timers, then poll and execute until the engine is quiet; steps run."""
        self.last_turn_s = trio.current_time()
        executed = 0
        for _ in range(64):  # bounded: a component that keeps itself busy still yields
            now = self.clock.now_ns()
            deadline = self.node.next_deadline_ns()
            if deadline is not None and deadline <= now:
                self.node.tick(now)
            out = self.node.poll()
            if not out:
                break
            for step in out:
                self.execute(step)
            executed += len(out)
        self._housekeeping()
        return executed

    def start_watchdog(self) -> None:
        """Begin ``WATCHDOG=1`` pings (when systemd armed a watchdog)."""
        if self.settings.watchdog_interval_s is not None:
            self._next_watchdog_at = trio.current_time()

    def _housekeeping(self) -> None:
        now = trio.current_time()
        if now >= self._next_watchdog_at and self.settings.watchdog_interval_s is not None:
            self.notifier.watchdog()
            self._next_watchdog_at = now + self.settings.watchdog_interval_s
        if self._snapshot_due or now >= self._next_snapshot_at:
            self._snapshot_due = False
            self._next_snapshot_at = now + self.settings.snapshot_interval_s
            self.checkpointer.submit(self.node.snapshot())

    async def _wait_for_input(self) -> None:
        wake_at = min(self._next_snapshot_at, self._next_watchdog_at)
        deadline = self.node.next_deadline_ns()
        if deadline is not None:
            wake_at = min(wake_at, self.clock.to_trio_time(deadline))
        with trio.move_on_at(wake_at):
            item = await self._receive.receive()
            self.handle_input(item)
            for _ in range(_BATCH):
                try:
                    item = self._receive.receive_nowait()
                except trio.WouldBlock:
                    break
                self.handle_input(item)
        # Yield even when inputs keep coming, so other tasks run between turns.
        await trio.lowlevel.checkpoint()

    # -- inputs ------------------------------------------------------------------------------
    def handle_input(self, item: DriverInput | ControlCall) -> None:
        """Apply one input to the node (a control call runs and completes here)."""
        if isinstance(item, ControlCall):
            try:
                item.result = item.run(self)
            except Exception as exc:  # handed back to the control task, never fatal here
                item.error = exc
            item.done.set()
            return
        try:
            self._inputs[type(item)](item)
        except DeliveryError as exc:
            self.counters.incr("ingress.rejected")
            log.warning("ingress_rejected", input=type(item).__name__, reason=str(exc))

    def _in_frame(self, item: FrameIn) -> None:
        self.counters.incr("frames.in")
        self.node.deliver_inbound(item.peer, item.frame)

    def _in_connected(self, item: Connected) -> None:
        self.known_peers.add(item.peer)
        self.node.peer_connected(item.peer, item.address)
        self._heartbeat("peer_connected", item.peer)

    def _in_disconnected(self, item: Disconnected) -> None:
        self.node.peer_disconnected(item.peer, item.reason)
        self._heartbeat("peer_disconnected", item.peer)

    def _in_dial_failed(self, item: DialFailedIn) -> None:
        self.node.dial_failed(item.peer, item.address, item.reason)

    def _in_send_failed(self, item: SendFailedIn) -> None:
        self.node.send_failed(item.peer, item.wire_req_id, item.reason)

    def _heartbeat(self, op: str, peer: PeerId) -> None:
        if self.settings.heartbeat_module is not None:
            self.node.invoke(self.settings.heartbeat_module, op, {"peer": peer.to_bytes()})

    # -- steps -------------------------------------------------------------------------------
    def execute(self, step: Any) -> None:
        """Execute one engine step (dispatch by type; unknown types are logged and counted)."""
        self.steps_executed += 1
        name = type(step).__name__
        self.counters.incr(f"step.{name}")
        handler = self._dispatch.get(type(step))
        if handler is None:
            # The step object itself: rendered to text only if debug logging is on.
            log.debug("engine_step", step=name, detail=step)
            return
        handler(step)

    def _addresses_for(self, peer: PeerId, envelope: Any) -> list[Address]:
        if self.manager.is_connected(peer):
            return []  # parsing addresses costs more than the rest of a send
        found: list[Address] = []
        for raw in envelope.dest_peer_addresses:
            try:
                found.append(Address.from_bytes(raw))
            except IdError:
                continue
        found.extend(self.static_addresses.get(peer, ()))
        return found

    def _on_send(self, step: steps.SendEnvelope) -> None:
        envelope = step.envelope
        corr = envelope.correlation
        req_id = corr.wire_req_id if corr.kind == CorrelationKind.REQUEST else None
        frame = encode_envelope(envelope)
        self.known_peers.add(step.peer)
        self.counters.incr("frames.out")
        reason = self.manager.send(
            step.peer,
            OutboundFrame(frame, req_id, envelope),
            self._addresses_for(step.peer, envelope),
        )
        if reason is not None:
            self.node.send_failed(step.peer, req_id or 0, reason)

    def _on_peer_down(self, step: steps.PeerDown) -> None:
        self.counters.incr("peers.down")
        log.warning("peer_down", peer=str(step.peer))
        self.manager.disconnect(step.peer, "peer_down")

    def _on_peer_up(self, step: steps.PeerUp) -> None:
        self.counters.incr("peers.up")
        log.info("peer_up", peer=str(step.peer))

    def _on_peer_blocked(self, step: steps.PeerBlocked) -> None:
        log.info("peer_blocked", peer=str(step.peer), reason=step.reason)
        self.manager.disconnect(step.peer, f"peer_{step.reason}")

    def _on_app_event(self, step: steps.AppEvent) -> None:
        self.hub.publish(step.topic, step.module_name, step.value_bytes)

    def _on_op_failed(self, step: steps.OpFailed) -> None:
        log.warning(
            "op_failed",
            op_ref=step.op_ref,
            exec_id=step.exec_id,
            kind=step.error.kind,
            reason=step.error.detail,
        )

    def _on_lifecycle(self, step: steps.LifecycleFired) -> None:
        log.info("lifecycle_fired", phase=step.phase)

    def addresses_of(self, peer: PeerId) -> list[Address]:
        """Configured (bootstrap) addresses of ``peer``."""
        return list(self.static_addresses.get(peer, ()))

    def give_back(self, unsent: list[tuple[PeerId, OutboundFrame]]) -> None:
        """Hand frames that never reached a socket back to the engine (shutdown).

        Each goes back as the engine's own held outbound envelope, so the final snapshot
        carries it and the next run redelivers it (``SendEnvelope(redelivered=True)``).
        """
        for peer, item in unsent:
            if item.envelope is None:
                continue
            self.node.requeue_outbound(peer, item.envelope)
        if unsent:
            log.info("unsent_returned", count=len(unsent))

    # -- policy and checkpoints ----------------------------------------------------------------
    def request_snapshot(self) -> None:
        """Checkpoint at the end of this turn (after a policy change)."""
        self._snapshot_due = True

    def block(self, peer: PeerId, for_s: float | None) -> int | None:
        """Ban ``peer`` (for ``for_s`` seconds, or until unblocked); returns ``until_ns``."""
        until_ns = None if for_s is None else self.clock.now_ns() + int(for_s * 1e9)
        self.node.block_peer(peer, until_ns=until_ns)
        self.policy.block(peer, until_ns)
        self.manager.disconnect(peer, "peer_blocklisted")
        self.request_snapshot()
        return until_ns

    def unblock(self, peer: PeerId) -> None:
        """Lift a runtime ban on ``peer``."""
        self.node.unblock_peer(peer)
        self.policy.unblock(peer)
        self.request_snapshot()

    def set_peer_lists(self, block: Sequence[PeerId], allow: Sequence[PeerId] | None) -> None:
        """Apply config block/allow lists (start and reload); disconnects refused peers."""
        self.node.replace_config_blocks(block)
        self.node.set_allowlist(None if allow is None else set(allow))
        self.policy.set_config(block, allow)
        closed = self.manager.enforce_peer_policy()
        for peer in closed:
            log.info("peer_disconnected_by_policy", peer=str(peer))
        self.request_snapshot()
