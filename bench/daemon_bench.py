"""Daemon bench: two daemons on loopback, request/response and one-way through the engine.

Measures, through the engine and a ``bench`` component on each daemon: sequential
request/response round trips/s with p50/p99 latency (A pings B, B replies), then one-way
messages/s (A's ``blast`` op sends N messages; timed from the first send until B has them
all). In the same run the bare trio + Noise + msgpack pair of ``baseline.py`` does the same
work in the same mode (its server echoes the payload as B does, its client decodes the
reply as A's engine does), and the ratios are printed. The round trips of both are timed
in ``PORTIONS`` alternating portions, so a machine whose speed changes during the run (a
busy host: this one's varies up to 2x) slows both alike; the ratio of each pair of adjacent
portions is printed too. The one-way blasts run one after the other, the daemons' first.

Modes (every line carries ``"processes": 1|2``, otherwise the same keys):

* default, two processes: daemon B runs in a child process (this file with the hidden
  ``--serve-b N`` flag), as real deployments run each daemon; it prints its address, then a
  ``received`` line once all N one-way messages are in. The bare pair's server end is a
  child process likewise. Children stop when their stdin closes and are killed if they
  linger, so none outlives the bench.
* ``--one-process``: both daemons (and both bare ends) in this process on one trio loop;
  one core does the sender's and the receiver's work.

Each daemon is a ``Daemon(..., tune_gc=True)`` under ``trio.run(..., clock=PerfCounterClock())``,
as ``bbnode run`` makes it (the GC settings of ``bbnode.daemon.gc_tuning``, trio's clock of
``bbnode.daemon.clock``). Both are process-wide, so the bare client here runs with them too,
and so does the bare server's child process, for the same conditions.
JSON lines on stdout; logs go to stderr at warning level. ``BB_BENCH_PROFILE=PATH`` profiles
this process with cProfile (daemon A, or both daemons, and the bare pair's ends here) to
``PATH``, the child B to ``PATH.b``. Run under the shared lock:
``flock /tmp/bench.lock python bench/daemon_bench.py``.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import trio

from bbnode.config import parse_config
from bbnode.daemon.clock import PerfCounterClock
from bbnode.daemon.supervisor import Daemon
from bbnode.engine.component import Component, Immediate
from bbnode.ids import PeerId
from bbnode.logs import configure_logging

sys.path.insert(0, str(Path(__file__).parent))
from baseline import (
    ONE_WAY,
    ROUND_TRIPS,
    WARM_UP_ROUND_TRIPS,
    BareClient,
    bare_pair,
    close_stdin,
    latency_figures,
    open_child,
    print_line,
    wait_stdin_eof,
)

#: Seconds to wait for B to receive the whole one-way blast before reporting what it has.
ONE_WAY_WAIT_S = 10.0
#: Seconds a whole run may take before the bench fails (a run takes ~5).
BENCH_TIMEOUT_S = 120.0
#: Round trips are timed in this many portions, alternating between the daemons and the
#: bare pair (daemons, bare, bare, daemons, ...): a change in the machine's speed during
#: the run (a busy host) then hits both alike instead of skewing their ratio.
PORTIONS = 20


class Bench(Component):
    """Sequential ping/pong chain and a one-way counter; timings use the host's clock."""

    TYPE_NAME: ClassVar[str] = "bench"
    OPS: ClassVar[tuple[str, ...]] = ("go", "ping", "pong", "blast", "msg")

    def __init__(self, expected: int = 0) -> None:
        super().__init__()
        self.target: PeerId | None = None
        self.remaining = 0
        self.sent_at = 0
        #: When ``go`` sent the first ping and the last pong came back (perf_counter ns): a
        #: portion is timed in here, as the bare client times its own (not the control call
        #: that starts it, nor the wake-up of the task waiting for ``done``).
        self.started_at = 0
        self.finished_at = 0
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
            self.started_at = self.sent_at
        elif op == "ping":
            ctx.reply(inputs["payload"])
        elif op == "pong":
            self.latencies.append(time.perf_counter_ns() - self.sent_at)
            self.remaining -= 1
            if self.remaining > 0:
                self._send(ctx)
            else:
                self.finished_at = time.perf_counter_ns()
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


class DaemonPair:
    """Daemon A (in this process) connected to daemon B; A's ``bench`` component drives."""

    def __init__(
        self,
        daemon_a: Daemon,
        a_bench: Bench,
        b_peer: PeerId,
        all_received: Callable[[], Awaitable[tuple[int, float]]],
    ) -> None:
        self.daemon_a = daemon_a
        self.a_bench = a_bench
        self.b_peer = b_peer
        #: Waits for B (at most ``ONE_WAY_WAIT_S``); how many one-way messages B got and
        #: the CPU seconds B spent between the first and the last.
        self.all_received = all_received

    async def _invoke(self, op: str, inputs: dict[str, Any]) -> None:
        backend = self.daemon_a.backend
        assert backend is not None
        await backend.call(lambda d: d.node.invoke("bench", op, inputs))

    async def round_trips(self, count: int) -> tuple[float, list[int]]:
        """``count`` sequential round trips A -> B -> A through both engines: the seconds
        they took and each one's ns."""
        bench = self.a_bench
        bench.done = trio.Event()
        bench.latencies = []
        await self._invoke("go", {"peer": self.b_peer.to_bytes(), "count": count})
        await bench.done.wait()
        return (bench.finished_at - bench.started_at) / 1e9, bench.latencies

    async def one_way(self, count: int) -> dict[str, Any]:
        """A's ``blast`` of ``count`` one-way messages, timed until B has them all."""
        start = time.perf_counter()
        start_cpu = time.process_time()
        # Blast in chunks (one op must stay under the engine's outbound queue of 10 000).
        # No waiting here: the driver itself stops taking input (these calls included)
        # while a socket's queue is above its high-water mark.
        chunk = 1000
        peer = self.b_peer.to_bytes()
        for i in range(0, count, chunk):
            await self._invoke("blast", {"peer": peer, "count": min(chunk, count - i)})
        delivered, receiver_cpu_s = await self.all_received()
        one_way_s = time.perf_counter() - start
        process_cpu_s = time.process_time() - start_cpu
        dropped = self.daemon_a.counters.as_dict()
        return {
            "one_way_per_s": round(delivered / one_way_s),
            "one_way_delivered": delivered,
            "one_way_sent": count,
            # CPU per one-way message: this process's (the sender's, or both daemons' with
            # --one-process) over the whole blast, and the receiving daemon's from its
            # first message to its last (in this process with --one-process, so included
            # above).
            "one_way_cpu_us_per_msg": round(process_cpu_s / count * 1e6, 2),
            "one_way_receiver_cpu_us_per_msg": round(receiver_cpu_s / count * 1e6, 2),
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


#: What starting daemon B gives daemon A: B's port and PeerId, and ``all_received``.
_DaemonB = tuple[int, PeerId, Callable[[], Awaitable[tuple[int, float]]]]


@asynccontextmanager
async def _daemon_b_here(
    nursery: trio.Nursery, serve: Callable[[Daemon], Awaitable[Any]], state: Path, one_way: int
) -> AsyncIterator[_DaemonB]:
    """Daemon B in this trio loop, serving in ``nursery``; asked to stop on exit."""
    b_bench = Bench(expected=one_way)
    port = _free_port()
    daemon_b, b_peer = await _started(nursery, serve, state, port, b_bench)

    async def all_received() -> tuple[int, float]:
        with trio.move_on_after(ONE_WAY_WAIT_S):
            await b_bench.one_way_done.wait()
        return b_bench.received, b_bench.receive_cpu_s

    yield port, b_peer, all_received
    daemon_b.request_stop()


@asynccontextmanager
async def _daemon_b_child(one_way: int) -> AsyncIterator[_DaemonB]:
    """Daemon B in a child process (this file with ``--serve-b``); it stops on exit."""
    async with open_child([__file__, "--serve-b", str(one_way)]) as (child, lines):
        ready = await lines.next()

        async def all_received() -> tuple[int, float]:
            # One pipe hop more than the in-process event: microseconds. If B has not got
            # everything in time, closing its stdin makes it report what it has.
            with trio.move_on_after(ONE_WAY_WAIT_S):
                return _received(await lines.next())
            await close_stdin(child)
            return _received(await lines.next())

        yield int(ready["port"]), PeerId.from_string(ready["peer"]), all_received


@asynccontextmanager
async def daemon_pair(processes: int, one_way: int = ONE_WAY) -> AsyncIterator[DaemonPair]:
    """Daemon A in this process connected to daemon B, which runs in this trio loop too
    (``processes=1``) or in a child process (``processes=2``); B expects ``one_way``
    one-way messages. Both stop on exit."""
    bench_over = trio.Event()
    serve = functools.partial(_serve, bench_over=bench_over)
    a_bench = Bench()
    with tempfile.TemporaryDirectory() as tmp:
        async with trio.open_nursery() as nursery:
            if processes == 1:
                daemon_b = _daemon_b_here(nursery, serve, Path(tmp) / "b", one_way)
            else:
                daemon_b = _daemon_b_child(one_way)
            async with daemon_b as (port_b, b_peer, all_received):
                daemon_a, _ = await _started(
                    nursery, serve, Path(tmp) / "a", _free_port(), a_bench, _address(port_b, b_peer)
                )
                yield DaemonPair(daemon_a, a_bench, b_peer, all_received)
                bench_over.set()  # before B stops: see `_serve`
                daemon_a.request_stop()


async def run_benches(
    processes: int, round_trips: int = ROUND_TRIPS, one_way: int = ONE_WAY
) -> tuple[dict[str, Any], dict[str, Any], list[float]]:
    """Both pairs side by side: warm-up, round trips in alternating portions, then each
    one-way blast (the daemons' first). The daemons' figures, the bare pair's, and the
    round-trip rate ratio of each pair of adjacent portions (how much it moved during the
    run)."""
    if round_trips < PORTIONS:
        raise ValueError(f"round_trips: at least {PORTIONS} (one per portion), got {round_trips}")
    per_portion = round_trips // PORTIONS
    daemon_runs: list[tuple[float, list[int]]] = []
    bare_runs: list[tuple[float, list[int]]] = []
    with trio.fail_after(BENCH_TIMEOUT_S):
        async with (
            daemon_pair(processes, one_way) as daemons,
            bare_pair(processes, one_way) as (bare, bare_received),
        ):
            sides: tuple[tuple[DaemonPair | BareClient, list[tuple[float, list[int]]]], ...]
            sides = ((daemons, daemon_runs), (bare, bare_runs))
            for side, _ in sides:
                await side.round_trips(WARM_UP_ROUND_TRIPS)  # connects, warms caches
            for portion in range(PORTIONS):
                for side, runs in sides if portion % 2 == 0 else sides[::-1]:
                    # Untimed: the first round trip after the other pair ran pays for the
                    # switch. Timed, those 1 % of the round trips would be the p99.
                    await side.round_trips(1)
                    runs.append(await side.round_trips(per_portion))
            daemon_figures = _combined(daemon_runs) | await daemons.one_way(one_way)
            bare_figures = _combined(bare_runs)
            bare_figures["one_way_per_s"] = await bare.one_way(one_way, bare_received)
    portion_ratios = [
        round(bare_s / daemon_s, 3)
        for (daemon_s, _), (bare_s, _) in zip(daemon_runs, bare_runs, strict=True)
    ]
    return daemon_figures, bare_figures, portion_ratios


def _combined(portions: list[tuple[float, list[int]]]) -> dict[str, Any]:
    elapsed = sum(seconds for seconds, _ in portions)
    return latency_figures(elapsed, [ns for _, latencies in portions for ns in latencies])


async def _serve_b(one_way: int) -> None:
    """The child of ``_daemon_b_child``: daemon B until stdin closes.

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
        _profiled(
            lambda: trio.run(_serve_b, args.serve_b, clock=PerfCounterClock()),
            profile and f"{profile}.b",
        )
        return 0
    processes = 1 if args.one_process else 2
    daemon, base, portion_ratios = _profiled(
        lambda: trio.run(run_benches, processes, clock=PerfCounterClock()), profile
    )
    print(json.dumps({"bench": "daemon", "processes": processes, **daemon}), flush=True)
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
                "round_trips_vs_bare_by_portion": portion_ratios,
                "p99_vs_bare": round(daemon["p99_us"] / base["p99_us"], 3),
                "one_way_target_met": daemon["one_way_per_s"] >= 100_000,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
