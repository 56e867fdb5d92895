"""When the driver turns: engine timers fire in order however their deadlines move, and
engine work left at the end of a turn goes on without waiting for input.

The driver keeps one cancel scope across waits and only moves its deadline earlier (see
``EngineDriver.run``); the timer tests check the three cases that arise: a timer armed
*earlier* than the one already waited for, a deadline left behind by a cancelled timer (a
spare turn, after which the next deadline must still be armed), and a later timer outliving
both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trio

from bbnode.daemon import node_factory
from bbnode.daemon.driver import EngineDriver
from bbnode.daemon.supervisor import Daemon
from bbnode.engine.component import Component, Immediate
from tests.daemon._inprocess import inprocess_config

#: Generous bound for every wait (a loaded CI machine), never a timing assertion.
WAIT_S = 60
_MS = 1_000_000


class Timers(Component):
    """``arm`` sets named timers, ``cancel`` cancels them; ``fire`` records which one ran."""

    TYPE_NAME: ClassVar[str] = "timers"
    OPS: ClassVar[tuple[str, ...]] = ("arm", "cancel", "fire")

    def __init__(self) -> None:
        super().__init__()
        self.timers: dict[str, int] = {}
        self.fired: list[str] = []
        self.fired_at: dict[str, float] = {}
        self.first_fired = trio.Event()
        self.all_fired = trio.Event()
        self.expected = 0

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: Any) -> Immediate:
        if op == "arm":
            for name, delay_ms in inputs["plan"]:
                self.timers[name] = ctx.after(delay_ms * _MS, "fire", {"name": name})
        elif op == "cancel":
            assert ctx.cancel(self.timers[inputs["name"]])
        elif op == "fire":
            self.fired.append(inputs["name"])
            self.fired_at[inputs["name"]] = trio.current_time()
            self.first_fired.set()
            if len(self.fired) >= self.expected:
                self.all_fired.set()
        return Immediate()


@asynccontextmanager
async def serving(tmp_path: Path, component: Component) -> AsyncIterator[Daemon]:
    """A daemon with ``component`` installed, ready; stopped on exit. The whole block runs
    under the ``WAIT_S`` guard."""
    daemon = Daemon(inprocess_config(tmp_path), extra_components=[component])
    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon.serve)
            await daemon.ready.wait()
            yield daemon
            daemon.request_stop()


async def _run(daemon: Daemon, op: str, inputs: dict[str, Any]) -> None:
    """Run ``op`` at the current time: the engine's clock only moves when it is ticked."""

    def run(driver: EngineDriver) -> None:
        driver.node.tick(driver.clock.now_ns())
        driver.node.invoke("timers", op, inputs)

    assert daemon.backend is not None
    await daemon.backend.call(run)


async def test_timers_fire_in_deadline_order_as_the_wake_deadline_moves(tmp_path: Path) -> None:
    timers = Timers()
    timers.expected = 3
    async with serving(tmp_path, timers) as daemon:
        # "late" first, so the driver waits for it; "early" must pull the wait forward.
        await _run(daemon, "arm", {"plan": [("late", 1500)]})
        await _run(daemon, "arm", {"plan": [("early", 30)]})
        await timers.first_fired.wait()
        # The driver now waits for "cancelled"; cancelling it leaves that deadline behind:
        # the driver turns for nothing then, and must still arm "middle" afterwards.
        await _run(daemon, "arm", {"plan": [("cancelled", 1000), ("middle", 1200)]})
        await _run(daemon, "cancel", {"name": "cancelled"})
        await timers.all_fired.wait()
    assert timers.fired == ["early", "middle", "late"]


async def test_timer_armed_after_idle_counts_from_now(tmp_path: Path) -> None:
    """The engine's clock is kept current while no timer is due, so a timer armed after a
    quiet spell never fires early (it would if it counted from the last tick)."""
    timers = Timers()
    timers.expected = 1
    async with serving(tmp_path, timers) as daemon:
        await trio.sleep(0.5)  # idle: heartbeat off, no timer due, no ticks needed
        assert daemon.backend is not None
        armed_at = trio.current_time()
        await daemon.backend.call(
            lambda d: d.node.invoke("timers", "arm", {"plan": [("after_idle", 300)]})
        )
        await timers.all_fired.wait()
    # A lower bound only (firing late on a loaded machine is fine); the driver lets the
    # engine's clock lag by at most TICK_SLACK_NS (1 ms).
    assert timers.fired_at["after_idle"] - armed_at >= 0.3 - 0.002


class Chain(Component):
    """``step`` calls itself locally until ``left`` reaches 0, then sets ``done``."""

    TYPE_NAME: ClassVar[str] = "chain"
    OPS: ClassVar[tuple[str, ...]] = ("step",)

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0
        self.done = trio.Event()

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: Any) -> Immediate:
        self.steps += 1
        if inputs["left"]:
            ctx.call("step", {"left": inputs["left"] - 1})
        else:
            self.done.set()
        return Immediate()


async def test_work_left_after_a_turn_goes_on_without_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn polls at most 64 times, so a component that keeps its node busy still lets
    other tasks run; the work left must then go on at once, not wait for an input that
    may never come (here none does: no peers, no heartbeat, no timers)."""
    # One op per poll, so the chain outlasts several turns.
    engine_config = node_factory.node_config
    monkeypatch.setattr(
        node_factory,
        "node_config",
        lambda cfg: dataclasses.replace(engine_config(cfg), cycle_op_budget=1),
    )
    chain = Chain()
    async with serving(tmp_path, chain) as daemon:
        assert daemon.backend is not None
        await daemon.backend.call(lambda d: d.node.invoke("chain", "step", {"left": 300}))
        await chain.done.wait()
    assert chain.steps == 301
