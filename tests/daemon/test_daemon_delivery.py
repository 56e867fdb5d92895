"""Two in-process daemons: bursts arrive whole, and frames that never reach a socket go back
to the engine (``SendFailed``, or ``requeue_outbound`` for a replaced connection).

Regression for the one-way loss (issue 5): a burst larger than a connection's send queue
used to overflow it; each refused frame was reported as ``SendFailed``, the engine counted
them as peer failures and declared ``PeerDown``, the driver closed the connection, and the
1 024 frames queued on it were dropped with only a counter to show for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trio

from bbnode.daemon._send_queue import OutboundFrame
from bbnode.daemon.driver import EngineDriver
from bbnode.daemon.events import FramesIn, UnsentIn
from bbnode.daemon.supervisor import Daemon
from bbnode.engine import steps
from bbnode.engine.component import Component, Immediate
from bbnode.engine.errors import InvalidInput
from bbnode.ids import PeerId
from tests.daemon._pair import WAIT_S, connected_daemons


class Sink(Component):
    """``blast`` sends ``count`` one-way messages to ``peer``; ``msg`` counts arrivals."""

    TYPE_NAME: ClassVar[str] = "sink"
    OPS: ClassVar[tuple[str, ...]] = ("blast", "msg")

    def __init__(self) -> None:
        super().__init__()
        self.received: list[int] = []
        self.expected = 0
        self.all_in = trio.Event()

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: Any) -> Immediate:
        if op == "blast":
            target = PeerId.from_bytes(inputs["peer"])
            pad = bytes(int(inputs.get("pad", 0)))
            for i in range(int(inputs["first"]), int(inputs["first"]) + int(inputs["count"])):
                ctx.send(target, "sink", "msg", [i, pad] if pad else i)
        elif op == "msg":
            payload = inputs["payload"]
            self.received.append(int(payload[0] if isinstance(payload, list) else payload))
            if len(self.received) >= self.expected:
                self.all_in.set()
        return Immediate()


@dataclass
class Pair:
    a: Daemon
    b: Daemon
    a_sink: Sink
    b_sink: Sink

    @property
    def b_peer(self) -> PeerId:
        assert self.b.backend is not None
        return self.b.backend.driver.manager.local_peer

    async def on_a(self, run: Any) -> Any:
        assert self.a.backend is not None
        return await self.a.backend.call(run)


@asynccontextmanager
async def two_daemons(tmp_path: Path, heartbeat: bool = True) -> AsyncIterator[Pair]:
    """Daemon ``b`` listening, daemon ``a`` bootstrapped to it and connected."""
    a_sink, b_sink = Sink(), Sink()
    async with connected_daemons(tmp_path, [a_sink], [b_sink], heartbeat) as (a, b):
        yield Pair(a, b, a_sink, b_sink)


def _losses(daemon: Daemon) -> dict[str, int]:
    return {
        name: value
        for name, value in daemon.counters.as_dict().items()
        if "dropped" in name or name.startswith("send.failed")
    }


async def test_one_way_bursts_arrive_without_loss(tmp_path: Path) -> None:
    async with two_daemons(tmp_path) as pair:
        peer = pair.b_peer.to_bytes()
        # 5 000 frames from one op: five times a connection's high-water mark, all queued
        # in one poll; then four more ops back to back without waiting for the socket.
        bursts = [(0, 5000), (5000, 1000), (6000, 1000), (7000, 1000), (8000, 1000)]
        pair.b_sink.expected = 9000
        for first, count in bursts:
            inputs = {"peer": peer, "first": first, "count": count}
            await pair.on_a(lambda d, i=inputs: d.node.invoke("sink", "blast", i))
        with trio.fail_after(WAIT_S):
            await pair.b_sink.all_in.wait()
        assert sorted(pair.b_sink.received) == list(range(9000))
        assert _losses(pair.a) == {}
        assert await pair.on_a(lambda d: d.manager.is_connected(pair.b_peer))
        assert pair.a.counters.get("peers.down") == 0


async def test_a_frame_the_engine_refuses_costs_the_others_of_its_read_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Node.deliver_inbound`` refusing one frame (a ``DeliveryError``) is counted as
    ``ingress.rejected``; the frames read with it are delivered all the same."""
    async with two_daemons(tmp_path, heartbeat=False) as pair:
        assert pair.b.backend is not None
        b_driver = pair.b.backend.driver
        deliver = b_driver.node.deliver_inbound

        def refusing(src: PeerId, data: bytes, observed: Any = None) -> None:
            if data == b"refused":
                raise InvalidInput("refused by the test")
            deliver(src, data, observed)

        monkeypatch.setattr(b_driver.node, "deliver_inbound", refusing)
        reads: list[list[bytes]] = []
        in_frames = b_driver._in_frames

        def recorded(item: FramesIn) -> None:
            reads.append(list(item.frames))
            in_frames(item)

        monkeypatch.setattr(b_driver, "_in_frames", recorded)
        pair.b_sink.expected = 1
        b_peer = pair.b_peer

        def refused_then_a_message(d: EngineDriver) -> None:
            # Queued in this control call, flushed with the message the turn after it
            # sends: one write, so one read on b.
            conn = d.manager.connection(b_peer)
            assert conn is not None
            assert conn.enqueue(OutboundFrame(b"refused"))
            d.node.invoke("sink", "blast", {"peer": b_peer.to_bytes(), "first": 7, "count": 1})

        await pair.on_a(refused_then_a_message)
        with trio.fail_after(WAIT_S):
            await pair.b_sink.all_in.wait()
        assert pair.b_sink.received == [7]
        assert pair.b.counters.get("ingress.rejected") == 1
        assert [len(frames) for frames in reads] == [2]
        assert reads[0][0] == b"refused"


async def test_wire_byte_counts_agree_after_writes_the_socket_took_in_part(
    tmp_path: Path,
) -> None:
    async with two_daemons(tmp_path, heartbeat=False) as pair:
        a_peer = pair.a.backend.driver.manager.local_peer  # type: ignore[union-attr]
        # 8 MB in one poll: more than a loopback socket takes at once, so the direct
        # write is partial and the writer task sends the rest.
        pair.b_sink.expected = 500
        inputs = {"peer": pair.b_peer.to_bytes(), "first": 0, "count": 500, "pad": 16_000}
        await pair.on_a(lambda d: d.node.invoke("sink", "blast", inputs))
        with trio.fail_after(WAIT_S):
            await pair.b_sink.all_in.wait()
        assert sorted(pair.b_sink.received) == list(range(500))

        def sent(d: EngineDriver) -> int:
            conn = d.manager.connection(pair.b_peer)
            assert conn is not None
            return conn.bytes_out

        assert pair.b.backend is not None
        received_conn = pair.b.backend.driver.manager.connection(a_peer)
        assert received_conn is not None
        with trio.fail_after(WAIT_S):  # the writer counts its part once send_all returns
            while await pair.on_a(sent) != received_conn.bytes_in:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert received_conn.bytes_in > 8_000_000


def _take_sends(driver: EngineDriver, peer: bytes, count: int) -> list[steps.SendEnvelope]:
    """Invoke ``blast`` once per message and poll by hand each time (so that each message
    is an envelope of its own, not merged with the others): the SendEnvelope steps, not
    executed (every other step of those polls is)."""
    ours: list[steps.SendEnvelope] = []
    for first in range(count):
        driver.node.invoke("sink", "blast", {"peer": peer, "first": first, "count": 1})
        others = []
        for step in driver.node.poll():
            if isinstance(step, steps.SendEnvelope):  # heartbeat is off: only blast sends
                ours.append(step)
            else:
                others.append(step)
        driver._steps.execute_all(others)
    driver.manager.sends.flush(trio.current_time())
    assert len(ours) == count
    return ours


async def test_unsent_frames_of_a_closed_connection_fail_back_to_the_engine(
    tmp_path: Path,
) -> None:
    async with two_daemons(tmp_path, heartbeat=False) as pair:
        b_peer = pair.b_peer

        def queue_then_close(d: EngineDriver) -> int:
            # Frames queued but not flushed when the connection closes.
            conn = d.manager.connection(b_peer)
            assert conn is not None
            for step in _take_sends(d, b_peer.to_bytes(), 3):
                assert conn.enqueue(OutboundFrame(b"unsent", None, step.envelope))
            conn.close("test_close")
            health = d.node.peer_health(b_peer)
            return 0 if health is None else health.consecutive_failures

        before = await pair.on_a(queue_then_close)

        def failures(d: EngineDriver) -> int:
            health = d.node.peer_health(b_peer)
            return 0 if health is None else health.consecutive_failures

        with trio.fail_after(WAIT_S):
            while await pair.on_a(failures) < before + 3:  # noqa: ASYNC110 - engine state
                await trio.sleep(0.01)
        assert pair.a.counters.get("send.failed_on_close") == 3
        assert pair.b_sink.received == []


async def test_a_send_refused_by_a_closing_connection_fails_back_and_is_counted(
    tmp_path: Path,
) -> None:
    """The step executor's own refusal path (a live connection that takes no more frames),
    not ``ConnectionManager.send``'s: the engine hears ``SendFailed``, the counter moves."""
    async with two_daemons(tmp_path, heartbeat=False) as pair:
        b_peer = pair.b_peer

        def send_on_closing(d: EngineDriver) -> tuple[int, int]:
            (step,) = _take_sends(d, b_peer.to_bytes(), 1)
            conn = d.manager.connection(b_peer)
            assert conn is not None
            conn.close("test_close")  # still registered: its tasks have not ended yet
            health = d.node.peer_health(b_peer)
            before = 0 if health is None else health.consecutive_failures
            d._steps.execute_all([step])
            d.node.poll()  # applies the SendFailed the refusal queued
            health = d.node.peer_health(b_peer)
            assert health is not None
            return health.consecutive_failures - before, _losses(pair.a).get(
                "send.dropped_connection_closing", 0
            )

        assert await pair.on_a(send_on_closing) == (1, 1)


async def test_frames_of_a_replaced_connection_are_requeued(tmp_path: Path) -> None:
    async with two_daemons(tmp_path, heartbeat=False) as pair:
        b_peer = pair.b_peer
        pair.b_sink.expected = 2

        def hand_back(d: EngineDriver) -> None:
            frames = [
                OutboundFrame(b"", None, step.envelope)
                for step in _take_sends(d, b_peer.to_bytes(), 2)
            ]
            d.handle_input(UnsentIn(b_peer, frames, "duplicate_connection", requeue=True))

        await pair.on_a(hand_back)
        # Requeued, the engine emits both again (redelivered) and they reach b.
        with trio.fail_after(WAIT_S):
            await pair.b_sink.all_in.wait()
        assert sorted(pair.b_sink.received) == [0, 1]
        assert _losses(pair.a) == {}
