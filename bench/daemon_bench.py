"""Daemon bench: two daemons on loopback, request/response and one-way through the engine.

Measures, through the engine and a ``bench`` component on each daemon: sequential
request/response round trips/s with p50/p99 latency (A pings B, B replies), then one-way
messages/s (A's ``blast`` op sends N messages; timed from the first send until B has them
all). In the same run the bare trio + Noise + msgpack pair of ``baseline.py`` does the same
work in the same mode, and the ratios are printed.

Modes (every line carries ``"processes": 1|2``, otherwise the same keys):

* default, two processes: daemon B runs in a child process (this file with the hidden
  ``--serve-b N`` flag), as real deployments run each daemon; it prints its address, then a
  ``received`` line once all N one-way messages are in. The bare pair's server end is a
  child process likewise. Children stop when their stdin closes and are killed if they
  linger, so none outlives the bench.
* ``--one-process``: both daemons (and both bare ends) in this process on one trio loop;
  one core does the sender's and the receiver's work.

Each daemon is a ``Daemon(..., tune_gc=True)``, as ``bbnode run`` makes it (the GC settings
of ``bbnode.daemon.gc_tuning``; the bare pair runs with Python's defaults).
JSON lines on stdout; logs go to stderr at warning level. ``BB_BENCH_PROFILE=PATH`` profiles
the daemon half with cProfile: this process (A, or both daemons) to ``PATH``, the child B to
``PATH.b``. Run under the shared lock: ``flock /tmp/bench.lock python bench/daemon_bench.py``.

Targets (issue 5): round trips >= 50 % of the bare pair, p99 <= 2x the bare pair, one-way
>= 100 000 messages/s.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import trio

from bbnode.config import parse_config
from bbnode.daemon.supervisor import Daemon
from bbnode.engine.component import Component, Immediate
from bbnode.ids import PeerId
from bbnode.logs import configure_logging

sys.path.insert(0, str(Path(__file__).parent))
from baseline import (
    ONE_WAY,
    ROUND_TRIPS,
    WARM_UP_ROUND_TRIPS,
    close_stdin,
    open_child,
    print_line,
    run_baseline,
    run_baseline_two_process,
    wait_stdin_eof,
)

#: Seconds to wait for B to receive the whole one-way blast before reporting what it has.
ONE_WAY_WAIT_S = 10.0
#: Seconds the daemon half may take in all before the bench fails (a run takes ~3).
BENCH_TIMEOUT_S = 120.0


class Bench(Component):
    """Sequential ping/pong chain and a one-way counter; timings use the host's clock."""

    TYPE_NAME: ClassVar[str] = "bench"
    OPS: ClassVar[tuple[str, ...]] = ("go", "ping", "pong", "blast", "msg")

    def __init__(self, expected: int = 0) -> None:
        super().__init__()
        self.target: PeerId | None = None
        self.remaining = 0
        self.sent_at = 0
        self.latencies: list[int] = []
        self.done = trio.Event()
        #: One-way messages to receive before ``one_way_done`` is set.
        self.expected = expected
        self.received = 0
        self.one_way_done = trio.Event()
        #: Process CPU seconds from the first one-way message in to the last.
        self.first_cpu = 0.0
        self.receive_cpu_s = 0.0

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
            if not self.received:
                self.first_cpu = time.process_time()
            self.received += 1
            if self.received >= self.expected:
                self.receive_cpu_s = time.process_time() - self.first_cpu
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


async def _measure(
    daemon_a: Daemon,
    a_bench: Bench,
    b_peer: PeerId,
    round_trips: int,
    one_way: int,
    all_received: Callable[[], Awaitable[tuple[int, float]]],
) -> dict[str, Any]:
    """Round trips then the one-way blast from daemon A to B; ``all_received`` waits for B
    (at most ``ONE_WAY_WAIT_S``) and returns how many one-way messages B got and the CPU
    seconds B spent between the first and the last."""
    backend = daemon_a.backend
    assert backend is not None
    peer = b_peer.to_bytes()
    # Warm up (connects), then measure.
    warm_up = {"peer": peer, "count": WARM_UP_ROUND_TRIPS}
    await backend.call(lambda d: d.node.invoke("bench", "go", warm_up))
    await a_bench.done.wait()
    a_bench.done = trio.Event()
    a_bench.latencies.clear()
    start = time.perf_counter()
    await backend.call(lambda d: d.node.invoke("bench", "go", {"peer": peer, "count": round_trips}))
    await a_bench.done.wait()
    elapsed = time.perf_counter() - start
    lat = sorted(a_bench.latencies)
    start = time.perf_counter()
    start_cpu = time.process_time()
    # Blast in chunks (one op must stay under the engine's outbound queue of 10 000).
    # No waiting here: the driver itself stops taking input (these calls included)
    # while a socket's queue is above its high-water mark.
    chunk = 1000
    for i in range(0, one_way, chunk):
        n = min(chunk, one_way - i)
        await backend.call(
            lambda d, n=n: d.node.invoke("bench", "blast", {"peer": peer, "count": n})
        )
    delivered, receiver_cpu_s = await all_received()
    one_way_s = time.perf_counter() - start
    process_cpu_s = time.process_time() - start_cpu
    dropped = daemon_a.counters.as_dict()
    return {
        "round_trips_per_s": round(round_trips / elapsed),
        "p50_us": lat[len(lat) // 2] / 1000,
        "p99_us": lat[int(len(lat) * 0.99)] / 1000,
        "one_way_per_s": round(delivered / one_way_s),
        "one_way_delivered": delivered,
        "one_way_sent": one_way,
        # CPU per one-way message: this process's (the sender's, or both daemons' with
        # --one-process) over the whole blast, and the receiving daemon's from its first
        # message to its last (in the same process with --one-process, so included above).
        "one_way_cpu_us_per_msg": round(process_cpu_s / one_way * 1e6, 2),
        "one_way_receiver_cpu_us_per_msg": round(receiver_cpu_s / one_way * 1e6, 2),
        "sender_losses": {
            k: v for k, v in dropped.items() if "dropped" in k or k.startswith("send.failed")
        },
    }


async def _serve(daemon: Daemon, bench_over: trio.Event) -> None:
    """Serve; a daemon stopping before the bench is over (a signal, say) fails the bench
    rather than leaving it waiting for replies that never come."""
    await daemon.serve()
    if not bench_over.is_set():
        raise RuntimeError("a daemon stopped before the bench was over")


def _address(port: int, peer: PeerId) -> str:
    return f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer}"


async def _started(
    nursery: trio.Nursery,
    serve: Callable[[Daemon], Awaitable[Any]],
    state: Path,
    port: int,
    bench: Bench,
    bootstrap: str = "",
) -> tuple[Daemon, PeerId]:
    """A daemon as ``bbnode run`` makes it (GC tuned) with ``bench`` installed, serving
    through ``serve(daemon)`` in ``nursery``, once ready; and its PeerId."""
    daemon = Daemon(_config(state, port, bootstrap), extra_components=[bench], tune_gc=True)
    nursery.start_soon(serve, daemon)
    await daemon.ready.wait()
    assert daemon.backend is not None
    return daemon, daemon.backend.driver.manager.local_peer


def _received(line: dict[str, Any]) -> tuple[int, float]:
    """B's report: one-way messages received, and the CPU seconds spent receiving them."""
    return int(line["received"]), float(line["cpu_s"])


async def run_daemon_bench(
    round_trips: int = ROUND_TRIPS, one_way: int = ONE_WAY
) -> dict[str, Any]:
    """Measure through two daemons in this process (one trio loop); returns the figures."""
    bench_over = trio.Event()
    with trio.fail_after(BENCH_TIMEOUT_S), tempfile.TemporaryDirectory() as tmp:
        port_b = _free_port()
        a_bench, b_bench = Bench(), Bench(expected=one_way)
        serve = functools.partial(_serve, bench_over=bench_over)
        async with trio.open_nursery() as nursery:
            daemon_b, b_peer = await _started(nursery, serve, Path(tmp) / "b", port_b, b_bench)
            boot = _address(port_b, b_peer)
            daemon_a, _ = await _started(
                nursery, serve, Path(tmp) / "a", _free_port(), a_bench, boot
            )

            async def all_received() -> tuple[int, float]:
                with trio.move_on_after(ONE_WAY_WAIT_S):
                    await b_bench.one_way_done.wait()
                return b_bench.received, b_bench.receive_cpu_s

            figures = await _measure(daemon_a, a_bench, b_peer, round_trips, one_way, all_received)
            bench_over.set()
            daemon_a.request_stop()
            daemon_b.request_stop()
    return figures


async def run_daemon_bench_two_process(
    round_trips: int = ROUND_TRIPS, one_way: int = ONE_WAY
) -> dict[str, Any]:
    """Measure with daemon B in a child process (``--serve-b``); returns the figures.

    The one-way time runs until B's ``received`` line arrives here (one pipe hop more than
    the in-process event: microseconds). If B has not got everything within
    ``ONE_WAY_WAIT_S``, its stdin is closed and it reports what it has before stopping.
    """
    bench_over = trio.Event()
    with trio.fail_after(BENCH_TIMEOUT_S), tempfile.TemporaryDirectory() as tmp:
        async with open_child([__file__, "--serve-b", str(one_way)]) as (child, lines):
            ready = await lines.next()
            b_peer = PeerId.from_string(ready["peer"])
            a_bench = Bench()
            serve = functools.partial(_serve, bench_over=bench_over)
            async with trio.open_nursery() as nursery:
                daemon_a, _ = await _started(
                    nursery,
                    serve,
                    Path(tmp) / "a",
                    _free_port(),
                    a_bench,
                    _address(ready["port"], b_peer),
                )

                async def all_received() -> tuple[int, float]:
                    with trio.move_on_after(ONE_WAY_WAIT_S):
                        return _received(await lines.next())
                    await close_stdin(child)
                    return _received(await lines.next())

                figures = await _measure(
                    daemon_a, a_bench, b_peer, round_trips, one_way, all_received
                )
                bench_over.set()
                daemon_a.request_stop()
    return figures


async def _serve_b(one_way: int) -> None:
    """The child of ``run_daemon_bench_two_process``: daemon B until stdin closes.

    Prints ``{"peer", "port"}`` once serving, then ``{"received"}`` once all ``one_way``
    messages are in, or at stdin EOF if they never were.
    """
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        bench = Bench(expected=one_way)
        async with trio.open_nursery() as nursery:
            daemon, peer = await _started(nursery, Daemon.serve, Path(tmp) / "b", port, bench)
            print_line(peer=str(peer), port=port)
            report_scope = trio.CancelScope()
            reported = False

            async def report_when_done() -> None:
                nonlocal reported
                with report_scope:
                    await bench.one_way_done.wait()
                    reported = True
                    print_line(received=bench.received, cpu_s=bench.receive_cpu_s)

            nursery.start_soon(report_when_done)
            await wait_stdin_eof()
            report_scope.cancel()
            if not reported:
                print_line(received=bench.received, cpu_s=bench.receive_cpu_s)
            daemon.request_stop()


def _profiled(run: Callable[[], Any], path: str | None) -> Any:
    """``run()``, under cProfile (stats written to ``path``) when ``path`` is set.

    Profiling slows everything: read the profile's proportions, not the figures it prints.
    """
    if not path:
        return run()
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return run()
    finally:
        profiler.disable()
        profiler.dump_stats(path)


def main(argv: list[str] | None = None) -> int:
    """Run the daemon and baseline benches in one mode; print JSON lines with the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="run both daemons (and both baseline ends) in this process, on one trio loop",
    )
    parser.add_argument("--serve-b", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_logging("warning", "json", stream=sys.stderr)
    profile = os.environ.get("BB_BENCH_PROFILE")
    if args.serve_b is not None:
        _profiled(lambda: trio.run(_serve_b, args.serve_b), profile and f"{profile}.b")
        return 0
    processes = 1 if args.one_process else 2
    run_daemons = run_daemon_bench if args.one_process else run_daemon_bench_two_process
    daemon = _profiled(lambda: trio.run(run_daemons), profile)
    print(json.dumps({"bench": "daemon", "processes": processes, **daemon}), flush=True)
    base = trio.run(run_baseline if args.one_process else run_baseline_two_process)
    print(
        json.dumps({"bench": "baseline_trio_noise_msgpack", "processes": processes, **base}),
        flush=True,
    )
    print(
        json.dumps(
            {
                "bench": "ratios",
                "processes": processes,
                "round_trips_vs_bare": round(
                    daemon["round_trips_per_s"] / base["round_trips_per_s"], 3
                ),
                "p99_vs_bare": round(daemon["p99_us"] / base["p99_us"], 3),
                "one_way_target_met": daemon["one_way_per_s"] >= 100_000,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
