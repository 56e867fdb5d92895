"""Engine step execution for the driver: a dispatch table keyed by step type.

Steps run in the order one poll returned them. A ``SendEnvelope`` only queues its frame on
the peer's connection (or a dial, through the connection manager); the driver flushes the
touched connections after the turn's first poll (and again at its end if later polls sent
more). Peer verdicts close connections, app events go to subscribers; every step is
counted as ``step.<Type>`` (folded into the counters when they are read), unhandled ones
logged at debug, in order, once the turn's writes are out (``log_unhandled``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from bbnode.daemon.connections import OutboundFrame
from bbnode.daemon.counters import Counters
from bbnode.engine import steps
from bbnode.engine.envelope import CorrelationKind, encode_checked
from bbnode.ids import Address, IdError, PeerId

if TYPE_CHECKING:
    from bbnode.daemon.driver import EngineDriver

__all__ = ["StepExecutor"]

log = structlog.get_logger(component="driver")


_STEP_COUNTER_NAMES: dict[type[Any], str] = {}
#: (structlog wrapper class, debug enabled) of the last check; see ``_debug_enabled``.
_debug_cache: list[Any] = [None, False]


def _debug_enabled() -> bool:
    """Whether debug lines are emitted, resolved once per logging (re)configuration:
    structlog re-binds a logger on every call, which costs more than executing a step."""
    wrapper = structlog.get_config()["wrapper_class"]
    if wrapper is not _debug_cache[0]:
        _debug_cache[0] = wrapper
        _debug_cache[1] = log.bind().is_enabled_for(logging.DEBUG)
    return bool(_debug_cache[1])


class StepExecutor:
    """Executes engine steps for the :class:`EngineDriver` that owns it (trio thread only);
    works on the driver's node, connection manager, counters and subscription hub."""

    def __init__(self, driver: EngineDriver) -> None:
        self._driver = driver
        #: Step counts by type not yet in ``counters``: folded in when they are read
        #: (a counter call per step type per turn cost more than executing the steps).
        self._step_counts: dict[type[Any], int] = {}
        #: ... except the two kinds nearly every step is, counted apart (see ``execute_all``).
        self._completed = 0
        self._sent = 0
        #: The step lists of this turn with steps to log at debug (see ``log_unhandled``).
        self._unlogged: list[Sequence[Any]] = []
        driver.counters.add_folder(self._fold_counts)
        self._dispatch: dict[type[Any], Callable[[Any], None]] = {
            steps.SendEnvelope: self._on_send,
            steps.PeerDown: self._on_peer_down,
            steps.PeerUp: self._on_peer_up,
            steps.PeerBlocked: self._on_peer_blocked,
            steps.AppEvent: self._on_app_event,
            steps.OpFailed: self._on_op_failed,
            steps.LifecycleFired: self._on_lifecycle,
        }

    def execute_all(self, out: Sequence[Any]) -> None:
        """Execute the steps of one poll, in order; counts them as ``step.<Type>``.

        Frames are only queued: the caller flushes (``manager.sends.flush(now)``)."""
        # The two kinds nearly every step is are counted in locals, then in two plain
        # attributes: ``OpCompleted`` (one per op run; nothing to execute) and
        # ``SendEnvelope``. A dict update per step cost more than executing it.
        completed_type = steps.OpCompleted
        send_type = steps.SendEnvelope
        on_send = self._on_send
        completed = sent = others = 0
        for step in out:
            kind = step.__class__
            if kind is completed_type:
                completed += 1
            elif kind is send_type:
                sent += 1
                on_send(step)
            else:
                others += 1
                self._execute_other(step, kind)
        self._completed += completed
        self._sent += sent
        if completed or others:
            self._unlogged.append(out)

    def log_unhandled(self) -> None:
        """Log, at debug, every step of this turn's polls that has no handler (in order).

        Called by the driver once the turn's writes are out: even finding out whether debug
        is on costs a structlog config read, which a peer waiting for a reply need not wait
        for."""
        unlogged = self._unlogged
        if not unlogged:
            return
        if _debug_enabled():
            dispatch = self._dispatch
            for out in unlogged:
                for step in out:
                    if step.__class__ not in dispatch:
                        # The step object itself: rendered to text only when debug is on.
                        log.debug("engine_step", step=type(step).__name__, detail=step)
        unlogged.clear()

    def _execute_other(self, step: Any, kind: type[Any]) -> None:
        """Count and execute a step of any kind but the two ``execute_all`` handles."""
        counts = self._step_counts
        counts[kind] = counts.get(kind, 0) + 1
        handler = self._dispatch.get(kind)
        if handler is not None:
            handler(step)

    def _fold_counts(self, counters: Counters) -> None:
        """Add the step counts gathered since the last read to ``counters``."""
        counts = self._step_counts
        for kind, count in ((steps.OpCompleted, self._completed), (steps.SendEnvelope, self._sent)):
            if count:
                counts[kind] = counts.get(kind, 0) + count
        self._completed = self._sent = 0
        names = _STEP_COUNTER_NAMES
        for kind, count in counts.items():
            name = names.get(kind)
            if name is None:
                name = names[kind] = f"step.{kind.__name__}"
            counters.incr(name, count)
        sent = counts.get(steps.SendEnvelope)
        if sent:
            counters.incr("frames.out", sent)
        counts.clear()

    def _addresses_for(self, peer: PeerId, envelope: Any) -> list[Address]:
        """Where to dial ``peer``: the envelope's destination addresses, then static ones."""
        found: list[Address] = []
        for raw in envelope.dest_peer_addresses:
            try:
                found.append(Address.from_bytes(raw))
            except IdError:
                continue
        found.extend(self._driver.static_addresses.get(peer, ()))
        return found

    def _on_send(self, step: steps.SendEnvelope) -> None:
        envelope = step.envelope
        peer = step.peer
        corr = envelope.correlation
        req_id = corr.wire_req_id if corr.kind == CorrelationKind.REQUEST else None
        item = OutboundFrame(encode_checked(envelope), req_id, envelope)
        manager = self._driver.manager
        conn = manager.connection(peer)
        if conn is None:  # addresses are parsed only here: it costs more than a send
            # (A connected peer became known when it connected: see ``_in_connected``.)
            self._driver.known_peers.add(peer)
            reason = manager.queue_for_dial(peer, item, self._addresses_for(peer, envelope))
        elif conn.enqueue(item):
            return  # the hot path: a live connection with room (the driver flushes it)
        else:
            reason = manager.refused(conn)
        if reason is not None:
            self._driver.node.send_failed(peer, req_id or 0, reason)

    def _on_peer_down(self, step: steps.PeerDown) -> None:
        self._driver.counters.incr("peers.down")
        log.warning("peer_down", peer=str(step.peer))
        self._driver.manager.disconnect(step.peer, "peer_down")

    def _on_peer_up(self, step: steps.PeerUp) -> None:
        self._driver.counters.incr("peers.up")
        log.info("peer_up", peer=str(step.peer))

    def _on_peer_blocked(self, step: steps.PeerBlocked) -> None:
        log.info("peer_blocked", peer=str(step.peer), reason=step.reason)
        self._driver.manager.disconnect(step.peer, f"peer_{step.reason}")

    def _on_app_event(self, step: steps.AppEvent) -> None:
        self._driver.hub.publish(step.topic, step.module_name, step.value_bytes)

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
