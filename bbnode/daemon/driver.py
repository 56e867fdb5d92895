"""The engine driver: the only task that touches the Node.

Loop: apply due timers (``tick`` at ``next_deadline_ns``), ``poll``, execute every step
(:mod:`._step_exec`: a dispatch table keyed by step type; sends only queue frames), flush
the touched connections right after the first poll (a peer may be waiting for a reply) and
at the end of the turn if later polls sent more, then sleep until the next input,
the next engine deadline, the next checkpoint or the next watchdog ping, whichever is first
(a turn that stopped at its bound of 64 polls with engine work left only yields, then turns
again with whatever input is ready). On waking, *every* input already waiting is applied
before the next poll (bounded, so timers still run under a flood). While a connection's
queue is above its high-water mark and still draining, the loop takes no new input
(backpressure; see ``_wait_for_sockets``).
Inputs arrive on one bounded trio channel: frames and connection news from connection tasks
(:mod:`.events`) and control-socket calls (:class:`ControlCall`), so even control commands
run here, between polls.

Engine time is epoch ns advanced monotonically (see :mod:`.clock`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from bbnode.daemon._step_exec import StepExecutor
from bbnode.daemon.checkpoint import Checkpointer
from bbnode.daemon.clock import EngineClock
from bbnode.daemon.connections import ConnectionManager, OutboundFrame
from bbnode.daemon.counters import Counters
from bbnode.daemon.events import (
    Connected,
    DialFailedIn,
    Disconnected,
    DriverInput,
    FramesIn,
    UnsentIn,
)
from bbnode.daemon.notify import SdNotifier
from bbnode.daemon.peer_policy import PeerPolicy
from bbnode.daemon.subscriptions import SubscriptionHub
from bbnode.engine.errors import DeliveryError
from bbnode.engine.node import Node
from bbnode.ids import Address, PeerId

__all__ = ["INGRESS_CAPACITY", "ControlCall", "DriverSettings", "EngineDriver", "channel_buffer"]

log = structlog.get_logger(component="driver")

#: Inputs buffered between connection tasks and the driver. When full, connection readers
#: wait, which pushes back on peers through TCP instead of growing memory.
INGRESS_CAPACITY = 1024
#: How far the engine's clock may lag real time at the start of a poll (1 ms): timers armed
#: in a turn are at most this much early, and a busy driver ticks at most once per ms.
TICK_SLACK_NS = 1_000_000
#: Inputs handled per wakeup before polling, so a flood cannot starve timers...
_BATCH = 1024
#: ... and frames: one poll then decodes at most this many envelopes (well under the
#: engine's ingress capacity of 65 536 events).
_BATCH_FRAMES = 8192


def channel_buffer(receive: trio.MemoryReceiveChannel[Any]) -> deque[Any] | None:
    """The deque in which ``receive`` buffers its items, or None if it is not found.

    Trio keeps it in the channel's private state. The driver only reads its length, to stop
    taking input once nothing is waiting: on an empty channel ``receive_nowait`` raises
    ``WouldBlock``, which costs about ten times that look (cold, some 5 µs of every
    request/response turn). With None (a trio that keeps it elsewhere; a test pins that ours
    does not) the driver takes input until ``WouldBlock``. No item waits in the buffer
    unnoticed: a sender blocked on a full channel implies a full buffer.
    """
    data = getattr(getattr(receive, "_state", None), "data", None)
    return data if isinstance(data, deque) else None


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
        self._buffered = channel_buffer(receive)
        self.static_addresses: dict[PeerId, list[Address]] = {}
        #: Every peer we sent to or heard from this run (for ``ctl peers``).
        self.known_peers: set[PeerId] = set()
        self.last_turn_s = trio.current_time()
        self._ticked_ns = -TICK_SLACK_NS  # the first turn ticks
        #: Whether the last turn stopped with engine work left (see ``turn``).
        self._work_left = False
        self._snapshot_due = False
        self._next_snapshot_at = trio.current_time() + settings.snapshot_interval_s
        # Armed by start_watchdog() once READY=1 went out: systemd expects READY first.
        self._next_watchdog_at = math.inf
        #: Frames received this run, and how many of them ``counters`` holds as
        #: ``frames.in``: the rest are folded in when the counters are read (a counter
        #: call per socket read cost more than the attribute update).
        self._frames_in = 0
        self._frames_in_folded = 0
        counters.add_folder(self._fold_frames_in)
        #: Called with each turn's duration in seconds (the metrics histogram), when set.
        self.observe_turn_s: Callable[[float], None] | None = None
        #: Executes the steps of each poll (see :mod:`._step_exec`).
        self._steps = StepExecutor(self)
        self._inputs: dict[type[Any], Callable[[Any], None]] = {
            UnsentIn: self._in_unsent,
            Connected: self._in_connected,
            Disconnected: self._in_disconnected,
            DialFailedIn: self._in_dial_failed,
        }

    # -- the loop ----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the node until cancelled."""
        task_status.started()
        while True:
            # One scope serves every wait until its deadline fires: entering a fresh
            # CancelScope per wait cost a tenth of the daemon's time in a request/response
            # exchange. Its deadline only ever moves earlier (each move costs about as
            # much); one left behind by a later ``_wake_at`` merely costs a spare turn.
            synced_at = None  # a wait cancelled by the wake deadline synced nothing
            with trio.CancelScope() as wake:
                wake_deadline = wake.deadline  # a local copy: the property costs a call
                while True:
                    self.turn(synced_at)
                    wake_at = self._wake_at()
                    if wake_at < wake_deadline:
                        wake.deadline = wake_deadline = wake_at
                    if self.manager.sends.over:
                        await self._wait_for_sockets()
                    # Engine work left (the turn stopped at its bound, or for a socket): take
                    # what input is ready and turn again, without waiting for input that may
                    # never come.
                    synced_at = await self._take_inputs(wait=not self._work_left)

    def turn(self, synced_at: float | None = None) -> int:
        """Tick due timers, then poll and execute until the engine is quiet; steps run.

        ``synced_at``: the trio time at which the clock was synced, just now, before the
        inputs were applied. The first poll then needs no sync of its own (a timer that
        fell due in between fires in the spare turn its deadline, already past, then
        causes at once), and the turn counts from that reading, applying the inputs
        included (each clock read on the way to a reply's write costs about a
        microsecond, cold).
        """
        now = self.clock.trio_time() if synced_at is None else synced_at
        self.last_turn_s = now
        executed = 0
        sends = self.manager.sends
        for polls in range(64):  # bounded: a component that keeps itself busy still yields
            if polls or synced_at is None:
                self._sync_clock(self.clock.trio_time())
            out = self.node.poll()
            if out:
                self._steps.execute_all(out)
                executed += len(out)
            if polls == 0:
                # What the inputs caused goes out before anything else is looked at: in a
                # request/response exchange the peer is waiting for it. One write per
                # touched connection.
                sends.flush(now)
            if sends.over:  # a socket is behind: let it drain before producing more
                self._work_left = self.node.has_work()
                break
            if not self.node.has_work():  # quiet (no empty poll needed to find out)
                self._work_left = False
                break
        else:  # the bound: the loop turns again at once (see ``run``)
            self._work_left = True
        sends.flush(now)  # what later polls sent, if any
        readers = self.manager.readers
        if readers is not None:
            readers.release()  # the readers that fed this turn read on
        self._steps.log_unhandled()
        self._housekeeping(now)
        observe = self.observe_turn_s
        if observe is not None:
            observe(self.clock.trio_time() - now)
        return executed

    def _sync_clock(self, trio_s: float) -> None:
        """Tick the engine when a timer is due or its clock lags by TICK_SLACK_NS or more
        at ``trio_s``, a trio clock reading taken just now.

        The engine's clock moves only on ticks, and the timers its components arm (request
        timeouts, ``ctx.after``) count from it, so it must not fall behind real time while
        no timer is due. Called before inputs are applied and before each poll but a
        turn's first one right after them.
        """
        now = self.clock.ns_at(trio_s)
        deadline = self.node.next_deadline_ns()  # kept by the engine between polls
        if now - self._ticked_ns >= TICK_SLACK_NS or (deadline is not None and deadline <= now):
            self._ticked_ns = now
            self.node.tick(now)

    def start_watchdog(self) -> None:
        """Begin ``WATCHDOG=1`` pings (when systemd armed a watchdog)."""
        if self.settings.watchdog_interval_s is not None:
            self._next_watchdog_at = trio.current_time()

    def _housekeeping(self, now: float) -> None:
        if now >= self._next_watchdog_at and self.settings.watchdog_interval_s is not None:
            self.notifier.watchdog()
            self._next_watchdog_at = now + self.settings.watchdog_interval_s
        if self._snapshot_due or now >= self._next_snapshot_at:
            self._snapshot_due = False
            self._next_snapshot_at = now + self.settings.snapshot_interval_s
            self.checkpointer.submit(self.node.snapshot())

    def _wake_at(self) -> float:
        """The next time the loop must turn without input (trio time)."""
        wake_at = self._next_snapshot_at
        if self._next_watchdog_at < wake_at:
            wake_at = self._next_watchdog_at
        deadline = self.node.next_deadline_ns()
        if deadline is not None and (engine_at := self.clock.to_trio_time(deadline)) < wake_at:
            wake_at = engine_at
        return wake_at

    async def _wait_for_sockets(self) -> None:
        """Backpressure: while a connection above its high-water mark is still writing,
        take no new input (readers then wait, and TCP pushes back on the peers) so a burst
        waits for the socket instead of overflowing its queue. A connection that stopped
        writing holds us for at most ``send_stall_s`` (see :class:`SendScheduler`).

        Runs inside ``run``'s wake scope, whose deadline is already no later than
        ``_wake_at()``: when a timer, checkpoint or watchdog ping falls due, that scope
        cancels this wait and the loop turns."""
        pressure = self.manager.sends
        while (stall_at := pressure.blocking(trio.current_time())) is not None:
            await pressure.wait_for_progress(stall_at)

    async def _take_inputs(self, wait: bool) -> float:
        """With ``wait``, wait for the next input (or be cancelled by ``run``'s wake
        deadline), else only let other tasks run; then apply every input already waiting,
        up to ``_BATCH`` of them (``_BATCH_FRAMES`` frames), so one poll covers them all.
        Returns the trio time at which the engine's clock was synced, before the inputs."""
        frames_limit = self._frames_in + _BATCH_FRAMES
        receive = self._receive
        if wait:
            # ``receive`` yields even when an input is waiting, so other tasks run between
            # turns when inputs keep coming.
            item: DriverInput | ControlCall | None = await receive.receive()
        else:
            await trio.lowlevel.checkpoint()
            item = None
        synced_at = self.clock.trio_time()
        self._sync_clock(synced_at)  # envelopes and invocations below see the current time
        handle = self.handle_input
        if item is not None:
            handle(item)
        buffered = self._buffered
        for _ in range(_BATCH):
            if self._frames_in >= frames_limit or (buffered is not None and not buffered):
                break
            try:
                item = receive.receive_nowait()
            except trio.WouldBlock:
                break
            handle(item)
        return synced_at

    # -- inputs ------------------------------------------------------------------------------
    def handle_input(self, item: DriverInput | ControlCall) -> None:
        """Apply one input to the node (a control call runs and completes here)."""
        if item.__class__ is FramesIn:  # nearly every input (it handles a refused frame)
            self._in_frames(item)
            return
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

    def _in_frames(self, item: FramesIn) -> None:
        frames = item.frames
        self._frames_in += len(frames)
        deliver = self.node.deliver_inbound
        peer = item.peer
        for index, frame in enumerate(frames):
            try:
                deliver(peer, frame)
            except DeliveryError as exc:
                # One refused frame must not cost its siblings.
                self.counters.incr("ingress.rejected")
                log.warning("ingress_rejected", input="frame", reason=str(exc), index=index)

    def _fold_frames_in(self, counters: Counters) -> None:
        """Add the frames received since the last read to ``counters`` (``frames.in``)."""
        received = self._frames_in
        if received != self._frames_in_folded:
            counters.incr("frames.in", received - self._frames_in_folded)
            self._frames_in_folded = received

    def _in_unsent(self, item: UnsentIn) -> None:
        if item.requeue:
            self.give_back([(item.peer, frame) for frame in item.frames])
            return
        for frame in item.frames:
            self.node.send_failed(item.peer, frame.wire_req_id or 0, item.reason)

    def _in_connected(self, item: Connected) -> None:
        self.known_peers.add(item.peer)
        self.node.peer_connected(item.peer, item.address)
        self._heartbeat("peer_connected", item.peer)

    def _in_disconnected(self, item: Disconnected) -> None:
        self.node.peer_disconnected(item.peer, item.reason)
        self._heartbeat("peer_disconnected", item.peer)

    def _in_dial_failed(self, item: DialFailedIn) -> None:
        self.node.dial_failed(item.peer, item.address, item.reason)

    def _heartbeat(self, op: str, peer: PeerId) -> None:
        if self.settings.heartbeat_module is not None:
            self.node.invoke(self.settings.heartbeat_module, op, {"peer": peer.to_bytes()})

    # -- steps -------------------------------------------------------------------------------
    def learn_bootstrap_peer(self, peer: PeerId, address: Address) -> None:
        """A bootstrap address without /p2p turned out to be ``peer`` (see `bootstrap`)."""
        known = self.static_addresses.setdefault(peer, [])
        if address not in known:
            known.append(address)
        self.known_peers.add(peer)

    def addresses_of(self, peer: PeerId) -> list[Address]:
        """Configured (bootstrap) addresses of ``peer``."""
        return list(self.static_addresses.get(peer, ()))

    def give_back(self, unsent: list[tuple[PeerId, OutboundFrame]]) -> None:
        """Hand frames that never reached a socket back to the engine: at shutdown, and
        those of a connection replaced by a simultaneous dial (``UnsentIn(requeue=True)``).

        Each goes back as the engine's own held outbound envelope, which it emits again
        (``SendEnvelope(redelivered=True)``): this run, or at shutdown through the final
        snapshot in the next.
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
