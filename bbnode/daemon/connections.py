"""The connection manager: listeners, one connection per peer, admission policy.

Order of checks for an inbound socket: IP/CIDR policy and connection limits (before any
handshake byte, here), then the Noise handshake and the PeerId policy (block/allow lists)
in :mod:`._registry` — so a refused peer never gets a frame into the engine. The registry
also keeps one connection per peer (the simultaneous-dial tie-break); dials and the frames
held while they run are :mod:`._dialer`'s. The manager owns both and the state they share.

Limits: ``max_connections`` counts inbound and outbound together; ``max_connections_per_ip``
applies to inbound sockets (it exists to stop one address flooding us, not to stop us
dialing several peers behind one NAT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from bbnode.daemon._dialer import Dialer
from bbnode.daemon._peer_conn import PeerConnection
from bbnode.daemon._reader_gate import ReaderGate
from bbnode.daemon._registry import Registry
from bbnode.daemon._send_queue import OutboundFrame, SendScheduler
from bbnode.daemon.bootstrap import LearnedPeer, keep_bootstrap_link
from bbnode.daemon.counters import Counters
from bbnode.daemon.events import DriverInput
from bbnode.daemon.policy import AdmissionError, ConnectionSlots, NetworkPolicy
from bbnode.daemon.redial import RefusalBackoff
from bbnode.ids import Address, PeerId
from bbnode.wire import IdentityKey, SecureConnection

__all__ = ["ConnectionManager", "ConnectionSettings", "OutboundFrame", "PeerCheck"]

log = structlog.get_logger(component="connections")

#: Returns a refusal reason (``blocklisted``, ``not_allowlisted``) or None to admit.
PeerCheck = Callable[[PeerId], str | None]


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
    :meth:`disconnect`; connection tasks report to the driver only through ``ingress``, and
    with a ``readers`` gate their readers wait for the driver's turn after each forward.
    Handshakes and registration are delegated to a :class:`._registry.Registry`, dials to
    a :class:`._dialer.Dialer`; both work on the tables kept here.
    """

    def __init__(
        self,
        key: IdentityKey,
        settings: ConnectionSettings,
        policy: NetworkPolicy,
        ingress: trio.MemorySendChannel[DriverInput],
        peer_check: PeerCheck,
        counters: Counters,
        readers: ReaderGate | None = None,
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
        #: Dirty and over-high-water queues: the driver flushes it and waits on it.
        self.sends = SendScheduler(settings.high_water_frames, settings.send_stall_s)
        #: Where readers that forwarded input wait for the end of the driver's turn (the
        #: driver releases it); None for a consumer of ``ingress`` that does not.
        self.readers = readers
        self._nursery: trio.Nursery | None = None
        self._accept_scope = trio.CancelScope()
        self._accepting: trio.Nursery | None = None
        self.refusals = RefusalBackoff(settings.refusal_backoff_s, settings.refusal_backoff_max_s)
        self.listen_addresses: list[Address] = []
        self._registry = Registry(self, ingress)
        self._dialer = Dialer(self, ingress)

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
        return self._dialer.is_dialing(peer)

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
            await self._registry.establish(stream, secure, host, port, inbound=True)
        finally:
            self.slots.release(host)

    # -- sending and dialing ----------------------------------------------------------------
    def send(self, peer: PeerId, item: OutboundFrame, addresses: Iterable[Address]) -> str | None:
        """Queue ``item`` for ``peer``, dialing when needed.

        Returns None when queued, or the reason it was not (``send_queue_full``,
        ``no_address``); the caller reports that to the engine as ``SendFailed``.
        """
        conn = self._conns.get(peer)
        if conn is None:
            return self.queue_for_dial(peer, item, addresses)
        if conn.enqueue(item):
            conn.kick()
            return None
        return self.refused(conn)

    def refused(self, conn: PeerConnection) -> str:
        """Why ``conn`` did not take a frame (``connection_closing`` or ``send_queue_full``),
        counted as ``send.dropped_<reason>`` like every send failure."""
        if conn.closing:
            self.counters.incr("send.dropped_connection_closing")
            return "connection_closing"
        self.counters.incr("send.dropped_queue_full")
        return "send_queue_full"

    def queue_for_dial(
        self, peer: PeerId, item: OutboundFrame, addresses: Iterable[Address]
    ) -> str | None:
        """``send`` for a peer with no connection: queue ``item`` and dial (see ``send``)."""
        return self._dialer.queue(peer, item, addresses)

    def dial(self, peer: PeerId, addresses: Sequence[Address]) -> bool:
        """Start dialing ``peer`` unless connected or already dialing; True when started."""
        return self._dialer.dial(peer, addresses)

    async def dial_address(self, address: Address) -> PeerConnection | str:
        """Dial ``address`` whoever is there (the identity comes from the handshake).

        Returns the registered connection, or the failure reason (``peer_self_connection``
        when it is this node). For bootstrap addresses configured without /p2p.
        """
        return await self._dialer.dial_address(address)

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
        out.extend(self._dialer.take_all_pending())
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
        return sum(c.queued for c in self._all) + self._dialer.pending_frames()
