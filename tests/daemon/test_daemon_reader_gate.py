"""Readers wait for the end of the driver's turn after forwarding (``_reader_gate``).

The gate on its own (who it lets go, and that a cancelled reader leaves it), then a real
connection over loopback: after forwarding one read, its reader reads nothing more until
the gate is released, and then reads what arrived meanwhile; and the daemon's connections
wait at the gate its driver releases.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio
import trio.testing

from bbnode.daemon._peer_conn import PeerConnection
from bbnode.daemon._reader_gate import ReaderGate
from bbnode.daemon._send_queue import OutboundFrame
from bbnode.daemon.driver import EngineDriver
from bbnode.daemon.events import DriverInput, FramesIn
from bbnode.ids import PeerId
from tests.daemon._pair import connected_daemons
from tests.daemon._sides import lone_connection, wait_until


async def test_release_lets_go_the_readers_parked_before_it() -> None:
    gate = ReaderGate()
    woken: list[str] = []

    async def reader(name: str) -> None:
        await gate.wait_for_turn()
        woken.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader, "a")
        nursery.start_soon(reader, "b")
        await trio.testing.wait_all_tasks_blocked()
        assert gate.parked == 2
        assert woken == []
        gate.release()
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(woken) == ["a", "b"]
        assert gate.parked == 0
        # One parking after that release waits for the next one.
        nursery.start_soon(reader, "c")
        await trio.testing.wait_all_tasks_blocked()
        assert gate.parked == 1
        assert "c" not in woken
        gate.release()
    assert sorted(woken) == ["a", "b", "c"]


async def test_a_cancelled_reader_leaves_the_gate() -> None:
    gate = ReaderGate()
    async with trio.open_nursery() as nursery:
        cancel_scope = trio.CancelScope()

        async def reader() -> None:
            with cancel_scope:
                await gate.wait_for_turn()

        async def stays() -> None:
            await gate.wait_for_turn()

        nursery.start_soon(reader)
        nursery.start_soon(stays)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.parked == 2
        cancel_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert gate.parked == 1  # the other one is still waiting
        gate.release()
    assert gate.parked == 0


async def test_a_reader_reads_on_only_after_the_driver_turned() -> None:
    gate = ReaderGate()
    async with lone_connection(60, readers=gate) as (conn, initiator, client):
        ingress, driver = trio.open_memory_channel[DriverInput](10)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run, ingress)
            initiator.send_frame(b"one")
            await client.send_all(initiator.data_to_send())
            await wait_until(lambda: gate.parked == 1)
            assert driver.receive_nowait() == FramesIn(conn.peer, [b"one"])
            # Sent while the reader waits for the turn: it stays in the socket.
            initiator.send_frame(b"two")
            await client.send_all(initiator.data_to_send())
            await trio.testing.wait_all_tasks_blocked()
            assert conn.frames_in == 1
            assert gate.parked == 1
            gate.release()  # the driver's turn ended
            with trio.fail_after(5):
                assert await driver.receive() == FramesIn(conn.peer, [b"two"])
            conn.close("test_done")


async def test_a_daemons_connections_wait_at_the_gate_its_driver_releases(
    tmp_path: Path,
) -> None:
    """Each read a connection forwards parks its reader until the driver's turn ends: if
    the driver never let it go, the second frame sent would never be read."""
    async with connected_daemons(tmp_path) as (a, b):
        for daemon, remote in ((a, b), (b, a)):
            assert daemon.backend is not None
            assert remote.backend is not None
            driver = daemon.backend.driver
            remote_peer = remote.backend.driver.manager.local_peer
            conn = driver.manager.connection(remote_peer)
            assert conn is not None
            assert driver.manager.readers is not None
            assert conn.readers is driver.manager.readers
            reads = conn.frames_in
            for sent in range(1, 4):  # one frame per write, so one per read
                frame = b"not an envelope %d" % sent
                await remote.backend.call(_queue_raw(driver.manager.local_peer, frame))
                await wait_until(_has_read(conn, reads + sent))


def _queue_raw(peer: PeerId, frame: bytes) -> Callable[[EngineDriver], None]:
    """A driver call queueing ``frame`` as it is on the connection to ``peer`` (the turn
    that runs the call writes it)."""

    def queue(driver: EngineDriver) -> None:
        conn = driver.manager.connection(peer)
        assert conn is not None
        assert conn.enqueue(OutboundFrame(frame))

    return queue


def _has_read(conn: PeerConnection, frames: int) -> Callable[[], bool]:
    return lambda: conn.frames_in == frames
