"""Two-sided ConnectionManager fixtures over real loopback sockets (shared by tests), and a
lone PeerConnection with no manager (``lone_connection``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import trio

from bbnode.daemon._peer_conn import PeerConnection
from bbnode.daemon._reader_gate import ReaderGate
from bbnode.daemon.connections import ConnectionManager, ConnectionSettings
from bbnode.daemon.counters import Counters
from bbnode.daemon.events import DriverInput, FramesIn
from bbnode.daemon.policy import NetworkPolicy
from bbnode.ids import Address, PeerId
from bbnode.wire import IdentityKey, SecureConnection
from tests.wire.wire_helpers import connected_pair

LISTEN = [Address.from_string("/ip4/127.0.0.1/tcp/0")]


@dataclass
class Side:
    manager: ConnectionManager
    inbox: trio.MemoryReceiveChannel[DriverInput]
    blocked: set[PeerId] = field(default_factory=set)

    @property
    def peer(self) -> PeerId:
        return self.manager.local_peer

    @property
    def address(self) -> Address:
        return self.manager.listen_addresses[0]

    async def expect(self, kind: type) -> DriverInput:
        with trio.fail_after(5):
            async for item in self.inbox:
                if isinstance(item, kind):
                    return item
        raise AssertionError("inbox closed")

    async def frames(self, count: int) -> list[tuple[PeerId, bytes]]:
        """The next ``count`` frames received (however the reads batched them)."""
        out: list[tuple[PeerId, bytes]] = []
        with trio.fail_after(5):
            while len(out) < count:
                item = await self.expect(FramesIn)
                assert isinstance(item, FramesIn)
                out.extend((item.peer, frame) for frame in item.frames)
        assert len(out) == count
        return out


@asynccontextmanager
async def side(
    seed: int,
    policy: NetworkPolicy | None = None,
    settings: ConnectionSettings | None = None,
    listen: Sequence[Address] = (),
) -> AsyncIterator[Side]:
    send, receive = trio.open_memory_channel[DriverInput](100)
    blocked: set[PeerId] = set()
    key = IdentityKey.from_seed(bytes([seed]) * 32)
    manager = ConnectionManager(
        key,
        settings or ConnectionSettings(handshake_timeout_s=2.0),
        policy or NetworkPolicy(),
        send,
        lambda p: "blocklisted" if p in blocked else None,
        Counters(),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run, list(listen or LISTEN))
        yield Side(manager, receive, blocked)
        nursery.cancel_scope.cancel()


async def wait_until(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(5):
        while not predicate():  # noqa: ASYNC110 - polling state owned by other tasks
            await trio.sleep(0.01)


def connected_address(at: Side, remote: Side) -> Address:
    info = at.manager.info(remote.peer)
    assert info is not None
    return Address.from_string(info["address"])


@asynccontextmanager
async def lone_connection(
    idle_timeout_s: float,
    wrap: Callable[[trio.SocketStream], trio.abc.Stream] = lambda stream: stream,
    readers: ReaderGate | None = None,
) -> AsyncIterator[tuple[PeerConnection, SecureConnection, trio.SocketStream]]:
    """An inbound PeerConnection (from peer 1) on the accepting end of a loopback TCP pair,
    its stream passed through ``wrap``; not running. Yields it, the initiator's end (past
    the handshake: frames it sends go out as ``client``'s bytes) and ``client``."""
    initiator, responder = connected_pair()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with (
        AsyncExitStack() as stack,
        listeners[0],
        await trio.open_tcp_stream("127.0.0.1", port) as client,
    ):
        server = await listeners[0].accept()
        stack.push_async_callback(server.aclose)
        conn = PeerConnection(
            peer=PeerId.from_u64(1),
            address=Address.tcp("127.0.0.1", port),
            host="127.0.0.1",
            inbound=True,
            stream=wrap(server),
            secure=responder,
            queue_frames=10,
            idle_timeout_s=idle_timeout_s,
            readers=readers,
        )
        yield conn, initiator, client
