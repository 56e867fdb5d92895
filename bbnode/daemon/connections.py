"""The connection manager: listeners, dialer, one connection per peer, admission policy.

Order of checks for an inbound socket: IP/CIDR policy and connection limits (before any
handshake byte), the Noise handshake under ``handshake_timeout_s``, then the PeerId policy
(block/allow lists) — so a refused peer never gets a frame into the engine.

**One connection per peer; simultaneous-dial tie-break.** When two live connections to the
same peer exist (both sides dialed at once), both sides keep the connection *initiated by
the peer with the smaller PeerId bytes* and close the other; queued frames move to the
survivor. Both sides evaluate the same rule on the same pair, so they agree without
talking. Two connections with the same initiator (a reconnect racing a stale one) keep
the newer.

Limits: ``max_connections`` counts inbound and outbound together; ``max_connections_per_ip``
applies to inbound sockets (it exists to stop one address flooding us, not to stop us
dialing several peers behind one NAT).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from bbnode.daemon._peer_conn import (
    ConnectionClosed,
    OutboundFrame,
    PeerConnection,
    SendScheduler,
    handshake,
)
from bbnode.daemon.bootstrap import LearnedPeer, keep_bootstrap_link
from bbnode.daemon.counters import Counters
from bbnode.daemon.events import Connected, DialFailedIn, Disconnected, DriverInput, UnsentIn
from bbnode.daemon.policy import AdmissionError, ConnectionSlots, NetworkPolicy
from bbnode.daemon.redial import RefusalBackoff
from bbnode.ids import Address, PeerId
from bbnode.wire import IdentityKey, SecureConnection

__all__ = ["ConnectionManager", "ConnectionSettings", "OutboundFrame", "PeerCheck"]

log = structlog.get_logger(component="connections")

#: Returns a refusal reason (``blocklisted``, ``not_allowlisted``) or None to admit.
PeerCheck = Callable[[PeerId], str | None]

#: How long a closing connection may wait for room in the driver's channel to report.
REPORT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Transport knobs from ``[network]`` (units in the names)."""

    handshake_timeout_s: float = 10.0
    idle_timeout_s: float = 300.0
    max_frame_bytes: int = 16 * 1024 * 1024
    #: Frames queued per connection before sends fail fast (a peer that stopped reading).
    #: Above the engine's outbound queue (10 000), so one poll's burst always fits.
    send_queue_frames: int = 16384
    #: A queue this long makes the driver wait for the socket before taking more input.
    high_water_frames: int = 1024
    #: A connection above the high-water mark that wrote nothing for this long stops
    #: holding the driver back (its queue then fills and sends to it fail).
    send_stall_s: float = 1.0
    #: Frames held for a peer while it is being dialed.
    pending_dial_frames: int = 1024
    #: How long a graceful close may spend flushing and closing one socket.
    close_timeout_s: float = 2.0
    #: First redial delay after a peer hangs up right after the handshake (doubling).
    refusal_backoff_s: float = 1.0
    refusal_backoff_max_s: float = 300.0
    #: Longest wait between dials of a bootstrap address that fails.
    bootstrap_retry_max_s: float = 60.0


class ConnectionManager:
    """Owns every socket to peers. Not thread-safe; all calls from the trio thread.

    ``run`` serves until cancelled. The driver calls :meth:`send`, :meth:`dial`,
    :meth:`disconnect`; connection tasks report to the driver only through ``ingress``.
    """

    def __init__(
        self,
        key: IdentityKey,
        settings: ConnectionSettings,
        policy: NetworkPolicy,
        ingress: trio.MemorySendChannel[DriverInput],
        peer_check: PeerCheck,
        counters: Counters,
    ) -> None:
        self.key = key
        self.local_peer = key.peer_id
        self.settings = settings
        self.slots = ConnectionSlots(policy)
        self._ingress = ingress
        self._peer_check = peer_check
        self.counters = counters
        self._conns: dict[PeerId, PeerConnection] = {}
        self._all: set[PeerConnection] = set()
        self._dialing: set[PeerId] = set()
        self._pending: dict[PeerId, deque[OutboundFrame]] = {}
        #: Dirty and over-high-water queues: the driver flushes it and waits on it.
        self.sends = SendScheduler(settings.high_water_frames, settings.send_stall_s)
        self._nursery: trio.Nursery | None = None
        self._accept_scope = trio.CancelScope()
        self._accepting: trio.Nursery | None = None
        self.refusals = RefusalBackoff(settings.refusal_backoff_s, settings.refusal_backoff_max_s)
        self.listen_addresses: list[Address] = []

    # -- policy -------------------------------------------------------------------------------
    @property
    def policy(self) -> NetworkPolicy:
        """The network policy in force."""
        return self.slots.policy

    def set_policy(self, policy: NetworkPolicy) -> None:
        """Apply a reloaded policy to new sockets (live ones are re-checked by the caller)."""
        self.slots.policy = policy

    def enforce_peer_policy(self) -> list[PeerId]:
        """Close connections whose peer the PeerId policy now refuses; returns them."""
        closed = []
        for conn in list(self._all):
            reason = self._peer_check(conn.peer)
            if reason is not None:
                conn.close(f"peer_{reason}")
                closed.append(conn.peer)
        return closed

    def enforce_network_policy(self) -> int:
        """Close live connections whose remote IP the (reloaded) CIDR policy refuses."""
        closed = 0
        for conn in list(self._all):
            try:
                self.slots.policy.check_ip(conn.host)
            except AdmissionError as exc:
                conn.close(exc.reason)
                closed += 1
        return closed

    # -- queries -----------------------------------------------------------------------------
    def is_connected(self, peer: PeerId) -> bool:
        """True when a registered connection to ``peer`` is live."""
        return peer in self._conns

    def connected_peers(self) -> list[PeerId]:
        """Peers with a registered connection, sorted."""
        return sorted(self._conns)

    def connection(self, peer: PeerId) -> PeerConnection | None:
        """The registered connection to ``peer`` (the driver's fast path to its queue)."""
        return self._conns.get(peer)

    def is_dialing(self, peer: PeerId) -> bool:
        """True while a dial to ``peer`` is in progress."""
        return peer in self._dialing

    def info(self, peer: PeerId) -> dict[str, Any] | None:
        """Connection details for ``ctl peers`` (None when not connected)."""
        conn = self._conns.get(peer)
        if conn is None:
            return None
        return {
            "address": str(conn.address),
            "direction": "inbound" if conn.inbound else "outbound",
            "frames_in": conn.frames_in,
            "frames_out": conn.frames_out,
            "queued": conn.queued,
        }

    @property
    def connection_count(self) -> int:
        """Live sockets counted against the limits (including ones mid-handshake)."""
        return self.slots.total

    # -- serving -----------------------------------------------------------------------------
    async def run(
        self,
        listen: Sequence[Address],
        *,
        task_status: trio.TaskStatus[list[Address]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Bind every ``listen`` address, report the bound ones, serve until cancelled."""
        listeners: list[trio.SocketListener] = []
        for address in listen:
            endpoint = address.tcp_endpoint()
            if endpoint is None:
                raise ValueError(f"listen address {address} has no ip4/ip6 + tcp endpoint")
            host, port = endpoint
            for listener in await trio.open_tcp_listeners(port, host=host):
                listeners.append(listener)
                sockname = listener.socket.getsockname()
                self.listen_addresses.append(
                    Address.tcp(sockname[0], sockname[1], peer=self.local_peer)
                )
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._serve_listeners, listeners)
            task_status.started(list(self.listen_addresses))

    async def _serve_listeners(
        self, listeners: list[trio.SocketListener], *, task_status: trio.TaskStatus[None]
    ) -> None:
        # One scope around one nursery: a CancelScope may be entered only once, and
        # ``stop_accepting`` must stop every listener and bootstrap link together.
        with self._accept_scope:
            async with trio.open_nursery() as accepting:
                self._accepting = accepting
                for listener in listeners:
                    accepting.start_soon(self._accept_loop, listener)
                task_status.started()

    def stop_accepting(self) -> None:
        """Close the listeners and stop bootstrap links (graceful shutdown step one)."""
        self._accept_scope.cancel()

    def keep_bootstrap_link(self, address: Address, learned: LearnedPeer) -> None:
        """Keep dialing ``address`` (no /p2p: identity learned in the handshake) until
        shutdown; see :mod:`.bootstrap`."""
        if self._accepting is None:
            raise RuntimeError("ConnectionManager.keep_bootstrap_link before run() started")
        self._accepting.start_soon(
            keep_bootstrap_link,
            self,
            address,
            learned,
            self.settings.refusal_backoff_s,
            self.settings.bootstrap_retry_max_s,
        )

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    # EMFILE and friends: log, back off briefly, keep serving.
                    log.warning("accept_failed", reason=str(exc))
                    await trio.sleep(0.1)
                    continue
                assert self._nursery is not None
                self._nursery.start_soon(self._handle_inbound, stream)

    async def _handle_inbound(self, stream: trio.SocketStream) -> None:
        host, port = stream.socket.getpeername()[:2]
        try:
            self.slots.policy.check_ip(host)
            self.slots.acquire(host)
        except AdmissionError as exc:
            self.counters.incr(f"conn.refused.{exc.reason}")
            log.info("connection_refused", address=f"{host}:{port}", reason=exc.reason)
            await trio.aclose_forcefully(stream)
            return
        try:
            secure = SecureConnection(
                self.key, initiator=False, max_frame_bytes=self.settings.max_frame_bytes
            )
            await self._establish(stream, secure, host, port, inbound=True)
        finally:
            self.slots.release(host)

    async def _establish(
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
                peer = await handshake(stream, secure, self.settings.handshake_timeout_s)
            except ConnectionClosed as exc:
                self.counters.incr("conn.handshake_failed")
                log.info("handshake_failed", address=f"{host}:{port}", reason=exc.reason)
                task_status.started(exc.reason)
                started = True
                return
            refusal = "self_connection" if peer == self.local_peer else self._peer_check(peer)
            if refusal is not None:
                self.counters.incr(f"conn.refused.peer_{refusal}")
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
                queue_frames=self.settings.send_queue_frames,
                idle_timeout_s=self.settings.idle_timeout_s,
                sends=self.sends,
            )
            self._all.add(conn)
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
            with trio.move_on_after(self.settings.close_timeout_s) as scope:
                scope.shield = True
                await trio.aclose_forcefully(stream)

    def _note_outcome(self, conn: PeerConnection, reason: str) -> None:
        """Count a hang-up right after our handshake as a refusal (see :mod:`.redial`)."""
        if conn.frames_in:
            self.refusals.clear(conn.peer)
        elif not conn.inbound and reason in ("eof", "reset") and not self.is_connected(conn.peer):
            delay = self.refusals.refused(conn.peer, trio.current_time())
            self.counters.incr("conn.refused_by_peer")
            log.info("peer_hung_up_after_handshake", peer=str(conn.peer), retry_in_s=delay)

    async def _unregister(self, conn: PeerConnection) -> None:
        conn.finished.set()
        self._all.discard(conn)
        # Fold this connection's totals in as it leaves ``_all`` (see ``wire_bytes``).
        self.counters.incr("bytes.in", conn.bytes_in)
        self.counters.incr("bytes.out", conn.bytes_out)
        reason = conn.close_reason or "closed"
        self.counters.incr(f"conn.closed.{reason.split(':', 1)[0]}")  # drop the detail
        if self._conns.get(conn.peer) is not conn:
            return
        del self._conns[conn.peer]
        # Frames that never reached the socket (and those whose write was cut short) go
        # back to the engine as SendFailed, before the Disconnected that explains them.
        unsent = conn.in_flight + conn.take_queued()
        conn.in_flight = []
        if unsent:
            self.counters.incr("send.failed_on_close", len(unsent))
            await self._report(UnsentIn(conn.peer, unsent, f"connection_{reason}"))
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
        existing = self._conns.get(conn.peer)
        if existing is not None:
            if self._keep_existing(existing, conn):
                self.counters.incr("conn.duplicate_closed")
                conn.close("duplicate_connection")
                return False
            # Replaced, not failed: queued frames move to the survivor; any it cannot take
            # go back to the engine, which emits them again (to the survivor).
            overflow = [item for item in existing.take_queued() if not conn.enqueue(item)]
            conn.kick()
            existing.close("duplicate_connection")
            self.counters.incr("conn.duplicate_closed")
            self._conns[conn.peer] = conn
            if overflow:
                await self._ingress.send(
                    UnsentIn(conn.peer, overflow, "duplicate_connection", requeue=True)
                )
            return True
        self._conns[conn.peer] = conn
        if conn.inbound:
            self.refusals.clear(conn.peer)  # it wants to talk to us after all
        refused = [item for item in self._pending.pop(conn.peer, ()) if not conn.enqueue(item)]
        conn.kick()
        self.counters.incr("conn.established")
        log.info(
            "peer_connected",
            peer=str(conn.peer),
            address=str(conn.address),
            direction="inbound" if conn.inbound else "outbound",
        )
        await self._ingress.send(Connected(conn.peer, conn.address, conn.inbound))
        if refused:
            self.counters.incr("send.dropped_queue_full", len(refused))
            await self._ingress.send(UnsentIn(conn.peer, refused, "send_queue_full"))
        return True

    def _keep_existing(self, existing: PeerConnection, new: PeerConnection) -> bool:
        old_init = existing.initiator(self.local_peer)
        new_init = new.initiator(self.local_peer)
        if old_init == new_init:
            return False
        return old_init < new_init

    # -- sending and dialing ----------------------------------------------------------------
    def send(self, peer: PeerId, item: OutboundFrame, addresses: Iterable[Address]) -> str | None:
        """Queue ``item`` for ``peer``, dialing when needed.

        Returns None when queued, or the reason it was not (``send_queue_full``,
        ``no_address``); the caller reports that to the engine as ``SendFailed``.
        """
        conn = self._conns.get(peer)
        if conn is not None:
            if conn.enqueue(item):
                conn.kick()
                return None
            if conn.closing:
                return "connection_closing"
            self.counters.incr("send.dropped_queue_full")
            return "send_queue_full"
        pending = self._pending.get(peer)
        if pending is None:
            candidates = [a for a in addresses if a.tcp_endpoint() is not None]
            if not candidates:
                self.counters.incr("send.dropped_no_address")
                return "no_address"
            pending = self._pending[peer] = deque()
            self.dial(peer, candidates)
        if len(pending) >= self.settings.pending_dial_frames:
            self.counters.incr("send.dropped_queue_full")
            return "send_queue_full"
        pending.append(item)
        return None

    def dial(self, peer: PeerId, addresses: Sequence[Address]) -> bool:
        """Start dialing ``peer`` unless connected or already dialing; True when started."""
        if peer in self._conns or peer in self._dialing or peer == self.local_peer:
            return False
        if self._nursery is None:
            raise RuntimeError("ConnectionManager.dial before run() started")
        self._dialing.add(peer)
        self._nursery.start_soon(self._dial, peer, list(addresses))
        return True

    async def _dial(self, peer: PeerId, addresses: list[Address]) -> None:
        reason = "no_address"
        last = addresses[-1] if addresses else Address.tcp("0.0.0.0", 0, peer=peer)
        try:
            wait_s = self.refusals.retry_in(peer, trio.current_time())
            if wait_s is not None:
                reason = f"refused_by_peer: retry in {wait_s:.1f}s"
                addresses = []
            for address in addresses:
                last = address
                result = await self._dial_one(peer, address)
                if not isinstance(result, str):
                    return
                reason = result
        finally:
            self._dialing.discard(peer)
        unsent = list(self._pending.pop(peer, ()))
        self.counters.incr("dial.failed")
        log.info("dial_failed", peer=str(peer), address=str(last), reason=reason)
        await self._ingress.send(DialFailedIn(peer, last, reason))
        if unsent:
            self.counters.incr("send.failed_dial", len(unsent))
            await self._ingress.send(UnsentIn(peer, unsent, f"dial_failed: {reason}"))

    async def dial_address(self, address: Address) -> PeerConnection | str:
        """Dial ``address`` whoever is there (the identity comes from the handshake).

        Returns the registered connection, or the failure reason (``peer_self_connection``
        when it is this node). For bootstrap addresses configured without /p2p.
        """
        return await self._dial_one(address.peer_id, address)

    async def _dial_one(self, peer: PeerId | None, address: Address) -> PeerConnection | str:
        endpoint = address.tcp_endpoint()
        if endpoint is None:
            return "unsupported_address"
        host, port = endpoint
        if self.slots.total >= self.slots.policy.max_connections:
            return "max_connections"
        if peer is not None and (existing := self._conns.get(peer)) is not None:
            return existing  # the peer dialed us meanwhile
        self.counters.incr("dial.attempts")
        stream: trio.SocketStream | None = None
        with trio.move_on_after(self.settings.handshake_timeout_s):
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                return f"connect_failed: {exc.strerror or exc}"
        if stream is None:
            return "connect_timeout"
        # Outbound sockets count toward the total only (see module docstring).
        self.slots.total_outbound += 1
        try:
            secure = SecureConnection(
                self.key,
                initiator=True,
                expected_peer=peer,
                max_frame_bytes=self.settings.max_frame_bytes,
            )
            assert self._nursery is not None
            result: PeerConnection | str = await self._nursery.start(
                self._establish_outbound, stream, secure, host, port
            )
        except BaseException:
            self.slots.total_outbound -= 1
            await trio.aclose_forcefully(stream)
            raise
        return result

    async def _establish_outbound(
        self,
        stream: trio.SocketStream,
        secure: SecureConnection,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[PeerConnection | str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            await self._establish(
                stream, secure, host, port, inbound=False, task_status=task_status
            )
        finally:
            self.slots.total_outbound -= 1

    def disconnect(self, peer: PeerId, reason: str) -> bool:
        """Close every connection to ``peer``; True when there was one."""
        found = False
        for conn in list(self._all):
            if conn.peer == peer:
                conn.close(reason)
                found = True
        return found

    def take_unsent(self) -> list[tuple[PeerId, OutboundFrame]]:
        """Remove every frame not yet written, from live queues and pending dials."""
        out: list[tuple[PeerId, OutboundFrame]] = []
        for conn in list(self._all):
            out.extend((conn.peer, item) for item in conn.take_queued())
        for peer, pending in self._pending.items():
            out.extend((peer, item) for item in pending)
        self._pending.clear()
        return out

    def close_all(self, reason: str) -> None:
        """Close every connection (the last shutdown step)."""
        for conn in list(self._all):
            conn.close(reason)

    def wire_bytes(self) -> tuple[int, int]:
        """Encrypted bytes received and sent after handshakes, this run, live sockets included."""
        received = self.counters.get("bytes.in") + sum(c.bytes_in for c in self._all)
        sent = self.counters.get("bytes.out") + sum(c.bytes_out for c in self._all)
        return received, sent

    def queued_frames(self) -> int:
        """Frames waiting in all outbound queues and pending dials."""
        return sum(c.queued for c in self._all) + sum(len(p) for p in self._pending.values())
