"""ConnectionManager over real loopback sockets and the real Noise transport."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import trio

from bbnode.daemon._peer_conn import PeerConnection
from bbnode.daemon.connections import ConnectionSettings, OutboundFrame
from bbnode.daemon.events import (
    Connected,
    DialFailedIn,
    Disconnected,
    DriverInput,
    FramesIn,
    UnsentIn,
)
from bbnode.daemon.policy import NetworkPolicy
from bbnode.ids import Address, PeerId
from bbnode.wire import IdentityKey, SecureConnection
from tests.daemon._sides import connected_address, lone_connection, side, wait_until


async def test_dial_handshake_and_frames_both_ways() -> None:
    async with side(1) as a, side(2) as b:
        assert a.manager.send(b.peer, OutboundFrame(b"hello"), [b.address]) is None
        connected = await a.expect(Connected)
        assert connected == Connected(b.peer, connected.address, inbound=False)
        assert await b.expect(Connected) == Connected(a.peer, connected_address(b, a), True)
        assert await b.frames(1) == [(a.peer, b"hello")]
        # Coalescing: a burst queued before the writer runs goes out in one write.
        conn = b.manager.connection(a.peer)
        assert conn is not None
        writes = conn.writes
        for i in range(50):
            assert b.manager.send(a.peer, OutboundFrame(b"m%d" % i), []) is None
        assert await a.frames(50) == [(b.peer, b"m%d" % i) for i in range(50)]
        assert conn.writes == writes + 1
        assert a.manager.is_connected(b.peer)
        assert b.manager.is_connected(a.peer)


async def test_dial_failure_is_reported_once() -> None:
    async with side(1) as a:
        ghost = IdentityKey.from_seed(b"\x09" * 32).peer_id
        # Bind then close a socket to get a port nobody listens on.
        sock = trio.socket.socket()
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        dead = Address.tcp("127.0.0.1", port, peer=ghost)
        assert a.manager.send(ghost, OutboundFrame(b"x"), [dead]) is None
        failed = await a.expect(DialFailedIn)
        assert isinstance(failed, DialFailedIn)
        assert failed.peer == ghost
        assert failed.address == dead
        assert failed.reason.startswith("connect_failed")
        # The frame that waited on the dial goes back to the engine, not into a counter.
        unsent = await a.expect(UnsentIn)
        assert isinstance(unsent, UnsentIn)
        assert unsent.peer == ghost
        assert [f.frame for f in unsent.frames] == [b"x"]
        assert unsent.reason.startswith("dial_failed: connect_failed")
        assert not unsent.requeue
        assert a.manager.counters.get("send.failed_dial") == 1


async def test_blocked_peer_is_refused_after_handshake() -> None:
    async with side(1) as a, side(2) as b:
        b.blocked.add(a.peer)
        a.manager.dial(b.peer, [b.address])
        # XX: the dialer completes first, then the listener refuses and hangs up.
        assert await a.expect(Disconnected) == Disconnected(b.peer, "eof")
        assert b.manager.counters.get("conn.refused.peer_blocklisted") == 1
        assert not b.manager.is_connected(a.peer)


async def test_enforce_peer_policy_disconnects_live_peer() -> None:
    async with side(1) as a, side(2) as b:
        a.manager.dial(b.peer, [b.address])
        await a.expect(Connected)
        await b.expect(Connected)
        b.blocked.add(a.peer)
        assert b.manager.enforce_peer_policy() == [a.peer]
        gone = await b.expect(Disconnected)
        assert gone == Disconnected(a.peer, "peer_blocklisted")
        await a.expect(Disconnected)


async def test_cidr_deny_refuses_before_handshake() -> None:
    async with side(1, policy=NetworkPolicy.build(deny_cidrs=["127.0.0.0/8"])) as a:
        stream = await trio.open_tcp_stream("127.0.0.1", a.address.tcp_endpoint()[1])  # type: ignore[index]
        async with stream:
            with trio.fail_after(5):
                assert await stream.receive_some(100) == b""
        assert a.manager.counters.get("conn.refused.denied_cidr") == 1


async def test_per_ip_limit_and_handshake_timeout() -> None:
    policy = NetworkPolicy(max_connections_per_ip=2)
    settings = ConnectionSettings(handshake_timeout_s=0.5)
    async with side(1, policy=policy, settings=settings) as a:
        port = a.address.tcp_endpoint()[1]  # type: ignore[index]
        silent = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(2)]
        refused = await trio.open_tcp_stream("127.0.0.1", port)
        async with refused:
            with trio.fail_after(5):
                assert await refused.receive_some(100) == b""
        assert a.manager.counters.get("conn.refused.max_connections_per_ip") == 1
        # The silent clients are dropped at the handshake timeout, freeing their slots.
        with trio.fail_after(5):
            for s in silent:
                async with s:
                    while await s.receive_some(100):
                        pass
        assert a.manager.counters.get("conn.handshake_failed") == 2


async def test_garbage_client_is_dropped() -> None:
    async with side(1) as a:
        port = a.address.tcp_endpoint()[1]  # type: ignore[index]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"\x00\x20" + b"\xff" * 32 + b"GET / HTTP/1.1\r\n\r\n" * 10)
            with trio.fail_after(5):
                while await stream.receive_some(1000):
                    pass
        assert a.manager.counters.get("conn.handshake_failed") == 1


async def test_simultaneous_dial_keeps_connection_of_smaller_peer() -> None:
    async with side(1) as a, side(2) as b:
        a.manager.dial(b.peer, [b.address])
        b.manager.dial(a.peer, [a.address])
        await a.expect(Connected)
        await b.expect(Connected)
        await wait_until(lambda: len(a.manager._all) == 1 and len(b.manager._all) == 1)
        smaller = min(a.peer, b.peer)
        a_info = a.manager.info(b.peer)
        b_info = b.manager.info(a.peer)
        assert a_info is not None
        assert b_info is not None
        expected_a = "outbound" if smaller == a.peer else "inbound"
        assert a_info["direction"] == expected_a
        assert b_info["direction"] == ("inbound" if expected_a == "outbound" else "outbound")
        # The survivor still carries frames.
        assert a.manager.send(b.peer, OutboundFrame(b"after"), []) is None
        assert await b.frames(1) == [(a.peer, b"after")]


async def test_send_queue_is_bounded() -> None:
    settings = ConnectionSettings(send_queue_frames=2, pending_dial_frames=2)
    async with side(1, settings=settings) as a, side(2) as b:
        assert a.manager.send(b.peer, OutboundFrame(b"1"), [b.address]) is None
        assert a.manager.send(b.peer, OutboundFrame(b"2"), [b.address]) is None
        assert a.manager.send(b.peer, OutboundFrame(b"3"), [b.address]) == "send_queue_full"
        assert a.manager.send(PeerId.from_u64(5), OutboundFrame(b"x"), []) == "no_address"


async def test_wrong_peer_at_address_fails_dial() -> None:
    async with side(1) as a, side(2) as b:
        impostor = IdentityKey.from_seed(b"\x07" * 32).peer_id
        a.manager.dial(impostor, [b.address])
        failed = await a.expect(DialFailedIn)
        assert isinstance(failed, DialFailedIn)
        assert failed.reason.startswith("handshake_failed")


async def test_raw_secure_client_can_talk() -> None:
    """A hand-driven SecureConnection client is served like any peer."""
    async with side(1) as a:
        key = IdentityKey.from_seed(b"\x05" * 32)
        secure = SecureConnection(key, initiator=True, expected_peer=a.peer)
        stream = await trio.open_tcp_stream("127.0.0.1", a.address.tcp_endpoint()[1])  # type: ignore[index]
        from bbnode.daemon._handshake import handshake

        assert await handshake(stream, secure, 5) == a.peer
        secure.send_frame(b"raw")
        await stream.send_all(secure.data_to_send())
        assert await a.frames(1) == [(key.peer_id, b"raw")]
        await stream.aclose()
        assert await a.expect(Disconnected) == Disconnected(key.peer_id, "eof")


async def test_frames_queued_on_a_closing_connection_are_reported_unsent() -> None:
    async with side(1) as a, side(2) as b:
        a.manager.dial(b.peer, [b.address])
        await a.expect(Connected)
        conn = a.manager.connection(b.peer)
        assert conn is not None
        # Queued, not yet flushed (the driver flushes at the end of its turn).
        queued = [OutboundFrame(b"q%d" % i, wire_req_id=i or None) for i in range(3)]
        for item in queued:
            assert conn.enqueue(item)
        conn.close("test_close")
        # Closing, not yet unregistered (that takes its tasks a checkpoint): a new frame is
        # refused, and counted like every send failure.
        assert a.manager.connection(b.peer) is conn
        assert a.manager.send(b.peer, OutboundFrame(b"late"), []) == "connection_closing"
        assert a.manager.counters.get("send.dropped_connection_closing") == 1
        unsent = await a.expect(UnsentIn)
        assert unsent == UnsentIn(b.peer, queued, "connection_test_close")
        assert await a.expect(Disconnected) == Disconnected(b.peer, "test_close")
        assert not a.manager.is_connected(b.peer)
        assert a.manager.counters.get("send.failed_on_close") == 3


async def test_sustained_transfer_outlives_many_idle_deadlines() -> None:
    """The reader's idle deadline passes every ``idle_timeout_s`` even on a busy connection
    (it is re-armed lazily); a read it interrupts must lose no bytes, or the next frame
    fails to decrypt and the connection drops."""
    idle_s = 0.1
    settings = ConnectionSettings(handshake_timeout_s=2.0, idle_timeout_s=idle_s)
    async with side(1, settings=settings) as a, side(2, settings=settings) as b:
        assert b.manager.send(a.peer, OutboundFrame(b"hello"), [a.address]) is None
        assert await a.frames(1) == [(b.peer, b"hello")]
        conn = b.manager.connection(a.peer)
        assert conn is not None
        padding = b"z" * 30_000  # large frames: the receiver's reads fill its buffer
        received: list[bytes] = []
        closed: list[str] = []

        async def drain() -> None:
            async for item in a.inbox:
                if isinstance(item, FramesIn):
                    received.extend(item.frames)
                elif isinstance(item, Disconnected):
                    closed.append(item.reason)

        sent = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            # Keep the socket full across many idle deadlines of the receiving reader.
            end = trio.current_time() + 10 * idle_s
            while trio.current_time() < end and not closed:
                while conn.queued < 50 and not conn.closing:
                    frame = OutboundFrame(b"%d:" % sent + padding)
                    assert b.manager.send(a.peer, frame, []) is None
                    sent += 1
                b.manager.sends.flush(trio.current_time())
                await trio.lowlevel.checkpoint()
            await wait_until(lambda: len(received) >= sent or bool(closed))
            nursery.cancel_scope.cancel()
        assert closed == []
        assert [frame.split(b":", 1)[0] for frame in received] == [b"%d" % i for i in range(sent)]
        assert a.manager.is_connected(b.peer)


async def test_cancelled_dial_gives_back_its_outbound_slot() -> None:
    """A dial cancelled during the handshake counts its socket out exactly once."""
    greeted = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        await stream.receive_some(1000)  # the dialer's first handshake message
        greeted.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery, side(1) as a:
        listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(5), trio.CancelScope() as dial:
            nursery.start_soon(_cancel_when, greeted, dial)
            await a.manager.dial_address(Address.tcp("127.0.0.1", port))
        assert dial.cancelled_caught
        assert a.manager.slots.total_outbound == 0
        assert a.manager.slots.total == 0
        nursery.cancel_scope.cancel()


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def test_frames_cut_short_on_a_replaced_connection_are_reported() -> None:
    """A connection replaced by a newer one to the same peer loses its write mid-way:
    the frames of that write go back to the driver; its queue moves to the survivor."""
    async with trio.open_nursery() as drains:
        async with side(1) as a, side(2) as b:
            a.manager.dial(b.peer, [b.address])
            await a.expect(Connected)
            old = a.manager.connection(b.peer)
            assert old is not None
            # b stops reading: its driver channel fills, then the sockets' buffers, and a's
            # writer blocks in the middle of a write with far more still queued behind it.
            frames = [OutboundFrame(b"x" * 256_000, wire_req_id=i + 1) for i in range(128)]
            for item in frames:
                assert old.enqueue(item)
            a.manager.sends.flush(trio.current_time())
            await wait_until(lambda: b.inbox.statistics().current_buffer_used == 100)
            assert old.in_flight
            assert old.outbox
            # A second dial to the same peer, same initiator: the newer connection wins.
            port = b.address.tcp_endpoint()[1]  # type: ignore[index]
            new = await a.manager.dial_address(Address.tcp("127.0.0.1", port))
            assert isinstance(new, PeerConnection)
            unsent = await a.expect(UnsentIn)
            # The frames of the write that was cut: the next ones after those written.
            written = old.frames_out
            assert isinstance(unsent, UnsentIn)
            cut = frames[written : written + len(unsent.frames)]
            assert cut
            assert unsent == UnsentIn(b.peer, cut, "connection_duplicate_connection")
            assert a.manager.counters.get("send.failed_on_close") == len(cut)
            assert a.manager.connection(b.peer) is new
            # Everything queued behind the cut write went to the survivor.
            moved = new.frames_out + len(new.in_flight) + new.queued
            assert moved == len(frames) - written - len(cut)
            # b's tasks report to its (full) channel as they close: keep it moving.
            drains.start_soon(_drain, b.inbox)
        drains.cancel_scope.cancel()


async def _drain(inbox: trio.MemoryReceiveChannel[DriverInput]) -> None:
    async for _ in inbox:
        pass


@dataclass
class _ReadsOutlastingTheIdleDeadline(trio.abc.Stream):
    """A socket stream (no ``socket`` attribute: the reader uses ``receive_some``) whose
    reads complete only after the reader's idle deadline has passed, as a read that
    finishes in a shielded checkpoint does."""

    inner: trio.SocketStream
    idle_s: float

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        with trio.CancelScope(shield=True):
            await trio.sleep(2 * self.idle_s)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_frames_waiting_for_a_full_driver_channel_survive_the_idle_deadline() -> None:
    idle_s = 0.05
    async with lone_connection(
        idle_s, wrap=lambda server: _ReadsOutlastingTheIdleDeadline(server, idle_s)
    ) as (conn, initiator, client):
        # No room in the driver's channel until the driver takes the item.
        ingress, driver = trio.open_memory_channel[DriverInput](0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run, ingress)
            initiator.send_frame(b"one")
            await client.send_all(initiator.data_to_send())
            await wait_until(lambda: conn.frames_in == 1)  # read, and the driver is not ready
            with trio.fail_after(5):
                item = await driver.receive()
            assert item == FramesIn(conn.peer, [b"one"])
            conn.close("test_done")
