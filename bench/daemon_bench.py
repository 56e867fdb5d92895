"""Daemon bench: two daemons on loopback, request/response and one-way through the engine.

Both daemons run in this process (one trio loop, as the baseline's two ends do) with a
bench component; then the bare trio + Noise + msgpack pair of ``baseline.py`` does the same
work, and the ratios are printed. JSON lines on stdout; logs go to stderr at warning level.
``BB_BENCH_PROFILE=PATH`` profiles the daemon half with cProfile (see ``_run_daemons``).

Targets (issue 5): round trips ≥ 50 % of the bare pair, p99 ≤ 2x the bare pair, one-way
≥ 100 000 messages/s.
"""

from __future__ import annotations

import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import trio

from bbnode.config import parse_config
from bbnode.daemon.supervisor import Daemon
from bbnode.engine.component import Component, Immediate
from bbnode.ids import PeerId
from bbnode.logs import configure_logging

sys.path.insert(0, str(Path(__file__).parent))
from baseline import run_baseline


class Bench(Component):
    """Sequential ping/pong chain and a one-way counter; timings use the host's clock."""

    TYPE_NAME: ClassVar[str] = "bench"
    OPS: ClassVar[tuple[str, ...]] = ("go", "ping", "pong", "blast", "msg")

    def __init__(self) -> None:
        super().__init__()
        self.target: PeerId | None = None
        self.remaining = 0
        self.sent_at = 0
        self.latencies: list[int] = []
        self.done = trio.Event()
        self.expected = 0
        self.received = 0
        self.one_way_done = trio.Event()

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: Any) -> Immediate:
        if op == "go":
            self.target = PeerId.from_bytes(inputs["peer"])
            self.remaining = int(inputs["count"])
            self._send(ctx)
        elif op == "ping":
            ctx.reply(inputs["payload"])
        elif op == "pong":
            self.latencies.append(time.perf_counter_ns() - self.sent_at)
            self.remaining -= 1
            if self.remaining > 0:
                self._send(ctx)
            else:
                self.done.set()
        elif op == "blast":
            target = PeerId.from_bytes(inputs["peer"])
            for i in range(int(inputs["count"])):
                ctx.send(target, "bench", "msg", i)
        elif op == "msg":
            self.received += 1
            if self.received >= self.expected:
                self.one_way_done.set()
        return Immediate()

    def _send(self, ctx: Any) -> None:
        self.sent_at = time.perf_counter_ns()
        assert self.target is not None
        ctx.send(self.target, "bench", "ping", b"x" * 64, request=True, reply_op="pong")


def _config(state: Path, port: int, bootstrap: str = "") -> Any:
    boot = f'bootstrap = ["{bootstrap}"]' if bootstrap else ""
    text = f"""
[node]
state_dir = "{state}"
listen = ["/ip4/127.0.0.1/tcp/{port}"]
{boot}
[snapshot]
interval_s = 3600
[log]
level = "warning"
format = "json"
[protocols.heartbeat]
enabled = false
[protocols.peer_exchange]
enabled = false
[protocols.pubsub]
enabled = false
"""
    return parse_config(text)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def run_daemon_bench(round_trips: int = 2000, one_way: int = 20000) -> dict[str, Any]:
    """Measure through two in-process daemons; returns the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        port_a, port_b = _free_port(), _free_port()
        a_bench, b_bench = Bench(), Bench()
        daemon_b = Daemon(_config(Path(tmp) / "b", port_b), extra_components=[b_bench])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon_b.serve)
            await daemon_b.ready.wait()
            assert daemon_b.backend is not None
            b_peer = daemon_b.backend.driver.manager.local_peer
            addr = f"/ip4/127.0.0.1/tcp/{port_b}/p2p/{b_peer}"
            daemon_a = Daemon(_config(Path(tmp) / "a", port_a, addr), extra_components=[a_bench])
            nursery.start_soon(daemon_a.serve)
            await daemon_a.ready.wait()
            backend = daemon_a.backend
            assert backend is not None
            peer = b_peer.to_bytes()
            # Warm up (connects), then measure.
            await backend.call(lambda d: d.node.invoke("bench", "go", {"peer": peer, "count": 50}))
            await a_bench.done.wait()
            a_bench.done = trio.Event()
            a_bench.latencies.clear()
            start = time.perf_counter()
            await backend.call(
                lambda d: d.node.invoke("bench", "go", {"peer": peer, "count": round_trips})
            )
            await a_bench.done.wait()
            elapsed = time.perf_counter() - start
            lat = sorted(a_bench.latencies)
            b_bench.expected = one_way
            start = time.perf_counter()
            # Blast in chunks (one op must stay under the engine's outbound queue of 10 000).
            # No waiting here: the driver itself stops taking input (these calls included)
            # while a socket's queue is above its high-water mark.
            chunk = 1000
            for i in range(0, one_way, chunk):
                n = min(chunk, one_way - i)
                await backend.call(
                    lambda d, n=n: d.node.invoke("bench", "blast", {"peer": peer, "count": n})
                )
            with trio.move_on_after(10):
                await b_bench.one_way_done.wait()
            one_way_s = time.perf_counter() - start
            delivered = b_bench.received
            dropped = daemon_a.counters.as_dict()
            daemon_a.request_stop()
            daemon_b.request_stop()
    return {
        "round_trips_per_s": round(round_trips / elapsed),
        "p50_us": lat[len(lat) // 2] / 1000,
        "p99_us": lat[int(len(lat) * 0.99)] / 1000,
        "one_way_per_s": round(delivered / one_way_s),
        "one_way_delivered": delivered,
        "one_way_sent": one_way,
        "sender_losses": {
            k: v for k, v in dropped.items() if "dropped" in k or k.startswith("send.failed")
        },
    }


def _run_daemons() -> dict[str, Any]:
    """The daemon half; under cProfile (stats written there) when ``BB_BENCH_PROFILE`` is set.

    Profiling slows everything: read the profile's proportions, not the figures it prints.
    """
    profile_path = os.environ.get("BB_BENCH_PROFILE")
    if not profile_path:
        return trio.run(run_daemon_bench)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        figures = trio.run(run_daemon_bench)
    finally:
        profiler.disable()
    profiler.dump_stats(profile_path)
    return figures


def main() -> None:
    """Run both benches and print JSON lines with the ratios."""
    configure_logging("warning", "json", stream=sys.stderr)
    daemon = _run_daemons()
    print(json.dumps({"bench": "daemon", **daemon}), flush=True)
    base = trio.run(run_baseline)
    print(json.dumps({"bench": "baseline_trio_noise_msgpack", **base}), flush=True)
    print(
        json.dumps(
            {
                "bench": "ratios",
                "round_trips_vs_bare": round(
                    daemon["round_trips_per_s"] / base["round_trips_per_s"], 3
                ),
                "p99_vs_bare": round(daemon["p99_us"] / base["p99_us"], 3),
                "one_way_target_met": daemon["one_way_per_s"] >= 100_000,
            }
        )
    )


if __name__ == "__main__":
    main()
