"""Counts the daemon folds into its counters when they are read (``Counters.add_folder``):
the driver's ``frames.in`` and the step executor's ``step.<Type>`` and ``frames.out``.

Two in-process daemons over loopback, heartbeat off: every envelope counted is one the
test sent, so the counts are exact, and reading them again (which folds again) must not
change them.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import structlog
import trio

from bbnode.daemon.driver import EngineDriver
from bbnode.daemon.supervisor import Daemon
from bbnode.engine.component import Async, Component, Immediate
from bbnode.ids import PeerId
from bbnode.logs import configure_logging
from tests.daemon._pair import WAIT_S, connected_daemons

#: One-way messages sent, one per engine cycle (so none are merged into one envelope).
MESSAGES = 20


class OneWay(Component):
    """``send`` sends one one-way ``msg`` to ``peer``; ``msg`` counts arrivals."""

    TYPE_NAME: ClassVar[str] = "oneway"
    OPS: ClassVar[tuple[str, ...]] = ("send", "msg")

    def __init__(self) -> None:
        super().__init__()
        self.received = 0
        self.arrived = trio.Event()

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: Any) -> Immediate:
        if op == "send":
            ctx.send(PeerId.from_bytes(inputs["peer"]), "oneway", "msg", inputs["n"])
        elif op == "msg":
            self.received += 1
            self.arrived.set()
        return Immediate()


@asynccontextmanager
async def two_daemons(tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon, OneWay]]:
    """``a`` bootstrapped to ``b`` and connected; the component receiving on ``b``."""
    receiver = OneWay()
    async with connected_daemons(tmp_path, [OneWay()], [receiver]) as (a, b):
        yield a, b, receiver


def _folded(counters: dict[str, int]) -> dict[str, int]:
    return {
        name: value
        for name, value in counters.items()
        if name.startswith("step.") or name in ("frames.in", "frames.out")
    }


async def test_folded_counts_are_exact_and_a_read_does_not_change_them(tmp_path: Path) -> None:
    async with two_daemons(tmp_path) as (a, b, receiver):
        assert a.backend is not None
        assert b.backend is not None
        b_peer = b.backend.driver.manager.local_peer.to_bytes()
        # Connecting produced no steps (heartbeat off) and no envelopes.
        assert _folded(a.counters.as_dict()) == {}
        assert _folded(b.counters.as_dict()) == {}
        for n in range(1, MESSAGES + 1):
            receiver.arrived = trio.Event()

            def send(d: EngineDriver, n: int = n) -> None:
                d.node.invoke("oneway", "send", {"peer": b_peer, "n": n})

            await a.backend.call(send)
            with trio.fail_after(WAIT_S):
                await receiver.arrived.wait()
            # Read (and so fold) as traffic goes on, on both sides, each counter twice.
            for _ in range(2):
                assert a.counters.get("step.SendEnvelope") == n
                assert a.counters.get("frames.out") == n
                assert b.counters.get("frames.in") == n
        assert receiver.received == MESSAGES

        # Each `send` and each `msg` completed once; folding again adds nothing.
        for _ in range(2):
            assert _folded(a.counters.as_dict()) == {
                "frames.out": MESSAGES,
                "step.OpCompleted": MESSAGES,
                "step.SendEnvelope": MESSAGES,
            }
            assert _folded(b.counters.as_dict()) == {
                "frames.in": MESSAGES,
                "step.OpCompleted": MESSAGES,
            }


class Suspends(Component):
    """``wait`` suspends on a command it completes at once; ``resume`` then finishes."""

    TYPE_NAME: ClassVar[str] = "suspends"
    OPS: ClassVar[tuple[str, ...]] = ("wait", "resume")

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: Any) -> Immediate | Async:
        if op == "wait":
            command = ctx.allocate_command()
            ctx.complete_command(command, {})
            return Async(command, "resume")
        return Immediate()


async def test_every_step_kind_is_counted_and_those_without_a_handler_logged_at_debug(
    tmp_path: Path,
) -> None:
    """``OpCompleted`` and ``SendEnvelope`` are counted on their own fast path, any other
    kind (here ``AsyncSuspended``) on the general one; with debug logging on, each step
    that has no handler gets an ``engine_step`` line, in order, and a send gets none."""
    lines = io.StringIO()
    configure_logging("debug", "json", stream=lines)
    receiver = OneWay()
    try:
        async with connected_daemons(tmp_path, [OneWay(), Suspends()], [receiver]) as (a, b):
            assert a.backend is not None
            assert b.backend is not None
            b_peer = b.backend.driver.manager.local_peer.to_bytes()
            lines.truncate(0)
            lines.seek(0)

            def suspend_then_send(d: EngineDriver) -> None:
                d.node.invoke("suspends", "wait", {})
                d.node.invoke("oneway", "send", {"peer": b_peer, "n": 1})

            await a.backend.call(suspend_then_send)
            with trio.fail_after(WAIT_S):
                await receiver.arrived.wait()
            step_lines = [
                entry["step"]
                for entry in map(json.loads, lines.getvalue().splitlines())
                if entry["event"] == "engine_step" and entry.get("component") == "driver"
            ]
            counted = _folded(a.counters.as_dict())
    finally:
        structlog.reset_defaults()
    assert counted == {
        "frames.out": 1,
        "step.AsyncSuspended": 1,
        "step.OpCompleted": 2,  # `resume` (which finished `wait`) and `send`
        "step.SendEnvelope": 1,
    }
    # a's poll (logged at the end of its turn, before b's turn reads the envelope), then
    # b's `msg`.
    assert step_lines == ["AsyncSuspended", "OpCompleted", "OpCompleted", "OpCompleted"]


async def test_a_turn_writes_after_its_first_poll_and_again_for_what_later_polls_sent(
    tmp_path: Path,
) -> None:
    """The driver flushes right after a turn's first poll (a peer may be waiting for that
    reply), and at the end of the turn what a later poll of the same turn sent."""
    async with two_daemons(tmp_path) as (a, b, receiver):
        assert a.backend is not None
        assert b.backend is not None
        b_peer = b.backend.driver.manager.local_peer.to_bytes()
        calls: list[str] = []

        def arm(d: EngineDriver) -> None:
            node, sends = d.node, d.manager.sends
            poll, flush = node.poll, sends.flush

            def logged_poll() -> Any:
                out = poll()
                calls.append("poll")
                if calls.count("poll") == 1:  # work for a second poll of the same turn
                    node.invoke("oneway", "send", {"peer": b_peer, "n": 2})
                return out

            def logged_flush(now: float) -> None:
                calls.append("flush")
                flush(now)

            node.poll = logged_poll  # type: ignore[method-assign]
            sends.flush = logged_flush  # type: ignore[method-assign]
            node.invoke("oneway", "send", {"peer": b_peer, "n": 1})

        await a.backend.call(arm)
        with trio.fail_after(WAIT_S):
            while receiver.received < 2:  # noqa: ASYNC110 - b's tasks count arrivals
                await trio.sleep(0.01)
        assert calls[:4] == ["poll", "flush", "poll", "flush"]
