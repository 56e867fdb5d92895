"""The registering half of the connection manager: handshake, PeerId check, one per peer.

Every socket, inbound or dialed, ends up in :meth:`Registry.establish`: the Noise handshake
under ``handshake_timeout_s``, then the PeerId policy (block/allow lists, and never this
node itself), then registration — so a refused peer never gets a frame into the engine.
When the connection ends, frames it never wrote go back to the driver as ``UnsentIn``
before the ``Disconnected`` that explains them.

**One connection per peer; simultaneous-dial tie-break.** When two live connections to the
same peer exist (both sides dialed at once), both sides keep the connection *initiated by
the peer with the smaller PeerId bytes* and close the other; queued frames move to the
survivor (a write the close cuts short fails back as ``UnsentIn``). Both sides evaluate the
same rule on the same pair, so they agree without talking. Two connections with the same
initiator (a reconnect racing a stale one) keep the newer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
import trio

from bbnode.daemon._handshake import ConnectionClosed, handshake
from bbnode.daemon._peer_conn import PeerConnection
from bbnode.daemon.events import Connected, Disconnected, DriverInput, UnsentIn
from bbnode.ids import Address
from bbnode.wire import SecureConnection

if TYPE_CHECKING:
    from bbnode.daemon.connections import ConnectionManager

__all__ = ["REPORT_TIMEOUT_S", "Registry"]

log = structlog.get_logger(component="connections")

#: How long a closing connection may wait for room in the driver's channel to report.
REPORT_TIMEOUT_S = 5.0


class Registry:
    """Establishes and registers connections for the :class:`ConnectionManager` that owns
    it; trio thread only. The manager keeps the tables (``_conns``, ``_all``) it fills."""

    def __init__(
        self, manager: ConnectionManager, ingress: trio.MemorySendChannel[DriverInput]
    ) -> None:
        self._manager = manager
        self._ingress = ingress

    async def establish(
        self,
        stream: trio.SocketStream,
        secure: SecureConnection,
        host: str,
        port: int,
        *,
        inbound: bool,
        task_status: trio.TaskStatus[PeerConnection | str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Handshake, check and serve one socket; started() reports the connection once
        registered, or the failure reason."""
        started = False
        try:
            try:
                peer = await handshake(stream, secure, self._manager.settings.handshake_timeout_s)
            except ConnectionClosed as exc:
                self._manager.counters.incr("conn.handshake_failed")
                log.info("handshake_failed", address=f"{host}:{port}", reason=exc.reason)
                task_status.started(exc.reason)
                started = True
                return
            refusal = (
                "self_connection"
                if peer == self._manager.local_peer
                else self._manager._peer_check(peer)
            )
            if refusal is not None:
                self._manager.counters.incr(f"conn.refused.peer_{refusal}")
                log.info("peer_refused", peer=str(peer), reason=refusal)
                task_status.started(f"peer_{refusal}")
                started = True
                return
            conn = PeerConnection(
                peer=peer,
                address=Address.tcp(host, port, peer=peer),
                host=host,
                inbound=inbound,
                stream=stream,
                secure=secure,
                queue_frames=self._manager.settings.send_queue_frames,
                idle_timeout_s=self._manager.settings.idle_timeout_s,
                sends=self._manager.sends,
                readers=self._manager.readers,
            )
            self._manager._all.add(conn)
            try:
                if not await self._register(conn):
                    return
                task_status.started(conn)
                started = True
                reason = await conn.run(self._ingress)
                log.info("connection_closed", peer=str(peer), reason=reason)
            finally:
                await self._unregister(conn)
            self._note_outcome(conn, reason)
        finally:
            if not started:
                task_status.started("closed")
            with trio.move_on_after(self._manager.settings.close_timeout_s) as scope:
                scope.shield = True
                await trio.aclose_forcefully(stream)

    def _note_outcome(self, conn: PeerConnection, reason: str) -> None:
        """Count a hang-up right after our handshake as a refusal (see :mod:`.redial`)."""
        if conn.frames_in:
            self._manager.refusals.clear(conn.peer)
        elif (
            not conn.inbound
            and reason in ("eof", "reset")
            and not self._manager.is_connected(conn.peer)
        ):
            delay = self._manager.refusals.refused(conn.peer, trio.current_time())
            self._manager.counters.incr("conn.refused_by_peer")
            log.info("peer_hung_up_after_handshake", peer=str(conn.peer), retry_in_s=delay)

    async def _unregister(self, conn: PeerConnection) -> None:
        conn.finished.set()
        self._manager._all.discard(conn)
        # Fold this connection's totals in as it leaves ``_all`` (see ``wire_bytes``).
        self._manager.counters.incr("bytes.in", conn.bytes_in)
        self._manager.counters.incr("bytes.out", conn.bytes_out)
        reason = conn.close_reason or "closed"
        self._manager.counters.incr(f"conn.closed.{reason.split(':', 1)[0]}")  # drop the detail
        # A connection replaced by a duplicate stays out of the tables (and reports no
        # Disconnected: the peer is still connected); its queue moved to the survivor,
        # but the write its close cut short is still in ``in_flight``.
        registered = self._manager._conns.get(conn.peer) is conn
        if registered:
            del self._manager._conns[conn.peer]
        # Frames that never reached the socket (and those whose write was cut short) go
        # back to the engine as SendFailed, before the Disconnected that explains them.
        unsent = conn.in_flight + conn.take_queued()
        conn.in_flight = []
        if unsent:
            self._manager.counters.incr("send.failed_on_close", len(unsent))
            await self._report(UnsentIn(conn.peer, unsent, f"connection_{reason}"))
        if registered:
            await self._report(Disconnected(conn.peer, reason))

    async def _report(self, item: DriverInput) -> None:
        """Tell the driver ``item`` even while being cancelled (a closing connection).

        Bounded: after shutdown stopped the driver nobody reads the channel any more.
        """
        try:
            self._ingress.send_nowait(item)
        except trio.WouldBlock:
            with trio.move_on_after(REPORT_TIMEOUT_S) as scope:
                scope.shield = True
                await self._ingress.send(item)

    async def _register(self, conn: PeerConnection) -> bool:
        existing = self._manager._conns.get(conn.peer)
        if existing is not None:
            if self._keep_existing(existing, conn):
                self._manager.counters.incr("conn.duplicate_closed")
                conn.close("duplicate_connection")
                return False
            # Replaced, not failed: queued frames move to the survivor; any it cannot take
            # go back to the engine, which emits them again (to the survivor).
            # (No kick: ``conn``'s writer starts in ``run``, after this, and takes its queue.)
            overflow = [item for item in existing.take_queued() if not conn.enqueue(item)]
            existing.close("duplicate_connection")
            self._manager.counters.incr("conn.duplicate_closed")
            self._manager._conns[conn.peer] = conn
            if overflow:
                await self._ingress.send(
                    UnsentIn(conn.peer, overflow, "duplicate_connection", requeue=True)
                )
            return True
        self._manager._conns[conn.peer] = conn
        if conn.inbound:
            self._manager.refusals.clear(conn.peer)  # it wants to talk to us after all
        refused = [
            item for item in self._manager._dialer.take_pending(conn.peer) if not conn.enqueue(item)
        ]
        self._manager.counters.incr("conn.established")
        log.info(
            "peer_connected",
            peer=str(conn.peer),
            address=str(conn.address),
            direction="inbound" if conn.inbound else "outbound",
        )
        await self._ingress.send(Connected(conn.peer, conn.address, conn.inbound))
        if refused:
            self._manager.counters.incr("send.dropped_queue_full", len(refused))
            await self._ingress.send(UnsentIn(conn.peer, refused, "send_queue_full"))
        return True

    def _keep_existing(self, existing: PeerConnection, new: PeerConnection) -> bool:
        old_init = existing.initiator(self._manager.local_peer)
        new_init = new.initiator(self._manager.local_peer)
        if old_init == new_init:
            return False
        return old_init < new_init
