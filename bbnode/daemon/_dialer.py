"""The dialing half of the connection manager: outbound dials and the frames they hold.

A send to a peer without a connection parks the frame in that peer's pending queue (at most
``pending_dial_frames``) and starts one dial, which tries the peer's addresses in order. The
connection that registers first takes the queue (see :mod:`._registry`); a dial that fails
on every address reports ``DialFailedIn`` and hands the queue back as ``UnsentIn``. A peer
in its refusal backoff (see :mod:`.redial`) fails at once, without a socket.

Outbound sockets count toward ``max_connections`` only, never ``max_connections_per_ip``
(see :mod:`.connections`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import structlog
import trio

from bbnode.daemon._peer_conn import PeerConnection
from bbnode.daemon._send_queue import OutboundFrame
from bbnode.daemon.events import DialFailedIn, DriverInput, UnsentIn
from bbnode.ids import Address, PeerId
from bbnode.wire import SecureConnection

if TYPE_CHECKING:
    from bbnode.daemon.connections import ConnectionManager

__all__ = ["Dialer"]

log = structlog.get_logger(component="connections")


class Dialer:
    """Dials peers for the :class:`ConnectionManager` that owns it; trio thread only.

    Reads the manager's settings, limits, refusal backoff and live connections, and runs
    each dialed connection in the manager's nursery, through its registry.
    """

    def __init__(
        self, manager: ConnectionManager, ingress: trio.MemorySendChannel[DriverInput]
    ) -> None:
        self._manager = manager
        self._ingress = ingress
        self._dialing: set[PeerId] = set()
        self._pending: dict[PeerId, deque[OutboundFrame]] = {}

    def is_dialing(self, peer: PeerId) -> bool:
        """True while a dial to ``peer`` is in progress."""
        return peer in self._dialing

    def queue(self, peer: PeerId, item: OutboundFrame, addresses: Iterable[Address]) -> str | None:
        """Hold ``item`` until ``peer`` connects, starting a dial when none is running.

        Returns None when held, or the reason it was not (``no_address``,
        ``send_queue_full``).
        """
        pending = self._pending.get(peer)
        if pending is None:
            candidates = [a for a in addresses if a.tcp_endpoint() is not None]
            if not candidates:
                self._manager.counters.incr("send.dropped_no_address")
                return "no_address"
            pending = self._pending[peer] = deque()
            self.dial(peer, candidates)
        if len(pending) >= self._manager.settings.pending_dial_frames:
            self._manager.counters.incr("send.dropped_queue_full")
            return "send_queue_full"
        pending.append(item)
        return None

    def take_pending(self, peer: PeerId) -> Iterable[OutboundFrame]:
        """Remove and return the frames held for ``peer`` (it just connected)."""
        return self._pending.pop(peer, ())

    def take_all_pending(self) -> list[tuple[PeerId, OutboundFrame]]:
        """Remove every held frame, for every peer."""
        out = [(peer, item) for peer, pending in self._pending.items() for item in pending]
        self._pending.clear()
        return out

    def pending_frames(self) -> int:
        """Frames held for peers being dialed."""
        return sum(len(p) for p in self._pending.values())

    def dial(self, peer: PeerId, addresses: Sequence[Address]) -> bool:
        """Start dialing ``peer`` unless connected or already dialing; True when started."""
        if (
            self._manager.is_connected(peer)
            or peer in self._dialing
            or peer == self._manager.local_peer
        ):
            return False
        if self._manager._nursery is None:
            raise RuntimeError("ConnectionManager.dial before run() started")
        self._dialing.add(peer)
        self._manager._nursery.start_soon(self._dial, peer, list(addresses))
        return True

    async def _dial(self, peer: PeerId, addresses: list[Address]) -> None:
        reason = "no_address"
        last = addresses[-1] if addresses else Address.tcp("0.0.0.0", 0, peer=peer)
        try:
            wait_s = self._manager.refusals.retry_in(peer, trio.current_time())
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
        self._manager.counters.incr("dial.failed")
        log.info("dial_failed", peer=str(peer), address=str(last), reason=reason)
        await self._ingress.send(DialFailedIn(peer, last, reason))
        if unsent:
            self._manager.counters.incr("send.failed_dial", len(unsent))
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
        if self._manager.slots.total >= self._manager.slots.policy.max_connections:
            return "max_connections"
        if peer is not None and (existing := self._manager.connection(peer)) is not None:
            return existing  # the peer dialed us meanwhile
        self._manager.counters.incr("dial.attempts")
        stream: trio.SocketStream | None = None
        with trio.move_on_after(self._manager.settings.handshake_timeout_s):
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                return f"connect_failed: {exc.strerror or exc}"
        if stream is None:
            return "connect_timeout"
        try:
            secure = SecureConnection(
                self._manager.key,
                initiator=True,
                expected_peer=peer,
                max_frame_bytes=self._manager.settings.max_frame_bytes,
            )
            assert self._manager._nursery is not None
            result: PeerConnection | str = await self._manager._nursery.start(
                self._establish_outbound, stream, secure, host, port
            )
        except BaseException:
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
        # The one owner of this socket's count (toward the total only, see the module
        # docstring): a ``start()`` cancelled halfway still runs this task to its
        # ``finally``, so the caller must not count it out again.
        self._manager.slots.total_outbound += 1
        try:
            await self._manager._registry.establish(
                stream, secure, host, port, inbound=False, task_status=task_status
            )
        finally:
            self._manager.slots.total_outbound -= 1
