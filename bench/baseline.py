"""Baseline: a bare trio + Noise (bbnode.wire.SecureConnection) + msgpack client/server pair.

Does the same work as ``daemon_bench.py`` without the engine: sequential request/response
round trips and a one-way stream. ``bare_pair(processes)`` connects a client to a server
that runs in this trio loop (``processes=1``: one core does both ends) or in a child process
(``processes=2``: this file run with the hidden ``--serve N`` flag, as real peers are; the
child tells us on stdout when it has received all ``N`` one-way messages). The client
(``BareClient``) runs round trips and the one-way stream in whatever portions its caller
asks for, so ``daemon_bench.py`` can interleave them with the daemons' under the same
machine conditions.

Also home of the small child-process helpers ``daemon_bench.py`` shares (``open_child``,
``wait_stdin_eof``): a child prints JSON lines on stdout and stops at EOF on its stdin, so it
never outlives the bench, even one killed outright.

Run alone, prints the bare pair's figures in both modes as JSON lines.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import trio

from bbnode.daemon._handshake import handshake
from bbnode.daemon.clock import PerfCounterClock
from bbnode.daemon.gc_tuning import tune_gc_for_serving
from bbnode.wire import FrameReceived, IdentityKey, SecureConnection

#: Seconds a child gets to stop after its stdin closes before it is killed.
CHILD_STOP_S = 5.0


#: The work both the daemon bench and this bare pair measure, so their ratios compare like
#: with like: sequential round trips after ``WARM_UP_ROUND_TRIPS`` untimed ones, then a
#: one-way blast. Their p99 is the 100th slowest of 10 000: of 2 000 it was the 20th, and
#: one burst of host noise (dozens of slow round trips in a row, here) in either pair's
#: portions then decided it.
ROUND_TRIPS = 10_000
WARM_UP_ROUND_TRIPS = 50
ONE_WAY = 100_000


class JsonLines:
    """JSON objects, one per line, read from a child's stdout."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def next(self) -> dict[str, Any]:
        """The next line; raises ``EOFError`` if the child closed its stdout first."""
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some()
            if not chunk:
                raise EOFError("child process closed its stdout")
            self._buffer += chunk
        line, _, rest = self._buffer.partition(b"\n")
        self._buffer = rest
        parsed: dict[str, Any] = json.loads(line)
        return parsed


@asynccontextmanager
async def open_child(argv: list[str]) -> AsyncIterator[tuple[trio.Process, JsonLines]]:
    """Run ``python argv...`` with piped stdin/stdout; yields the process and its lines.

    On exit (normal or not) closes the child's stdin, which asks it to stop, and kills it if
    it has not exited within ``CHILD_STOP_S``: no stray process outlives the bench.
    """
    process = await trio.lowlevel.open_process(
        [sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        yield process, JsonLines(process.stdout)
    finally:
        with trio.CancelScope(shield=True):
            if process.stdin is not None:
                await process.stdin.aclose()
            with trio.move_on_after(CHILD_STOP_S):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def close_stdin(process: trio.Process) -> None:
    """Ask a child from ``open_child`` to stop now (it reports, then exits)."""
    if process.stdin is not None:
        await process.stdin.aclose()


async def wait_stdin_eof() -> None:
    """Return once this process's stdin reaches EOF (the parent closed it, or died)."""
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        while await stream.receive_some():
            pass


def print_line(**fields: Any) -> None:
    """One JSON line on stdout, flushed (the parent is waiting for it)."""
    print(json.dumps(fields), flush=True)


async def _frames(stream: trio.SocketStream, conn: SecureConnection) -> Any:
    while True:
        event = conn.next_event()
        if isinstance(event, FrameReceived):
            yield event.frame
            continue
        data = await stream.receive_some(65536)
        if not data:
            return
        conn.receive_data(bytes(data))


def _server(one_way: int, on_all_received: Callable[[], None]) -> Any:
    """The server end's connection handler: answer requests, count one-way messages."""
    server_key = IdentityKey.from_seed(b"\x01" * 32)

    async def serve(stream: trio.SocketStream) -> None:
        conn = SecureConnection(server_key, initiator=False)
        await handshake(stream, conn, 5)
        received = 0
        async for frame in _frames(stream, conn):
            msg = msgpack.unpackb(frame)
            if msg["k"] == "req":
                # The payload comes back, as the daemons' bench component replies with it.
                conn.send_frame(msgpack.packb({"k": "resp", "id": msg["id"], "v": msg["v"]}))
                await stream.send_all(conn.data_to_send())
            else:
                received += 1
                if received == one_way:
                    on_all_received()

    return serve


class BareClient:
    """The client end of the bare pair, connected and handshaken."""

    def __init__(self, stream: trio.SocketStream, conn: SecureConnection) -> None:
        self._stream = stream
        self._conn = conn
        self._frames = _frames(stream, conn)

    @classmethod
    async def connect(cls, port: int) -> BareClient:
        """Connect to the server end on 127.0.0.1:``port``."""
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        conn = SecureConnection(IdentityKey.from_seed(b"\x02" * 32), initiator=True)
        await handshake(stream, conn, 5)
        return cls(stream, conn)

    async def round_trips(self, count: int) -> tuple[float, list[int]]:
        """``count`` sequential round trips: the seconds they took and each one's ns."""
        conn, stream, frames = self._conn, self._stream, self._frames
        latencies = []
        start = time.perf_counter()
        for i in range(count):
            t0 = time.perf_counter_ns()
            conn.send_frame(msgpack.packb({"k": "req", "id": i, "v": b"x" * 64}))
            await stream.send_all(conn.data_to_send())
            msgpack.unpackb(await frames.__anext__())  # decoded, as daemon A's engine does
            latencies.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - start
        return elapsed, latencies

    async def one_way(self, count: int, all_received: Callable[[], Awaitable[None]]) -> int:
        """Send ``count`` one-way messages; messages/s until ``all_received`` returns."""
        conn, stream = self._conn, self._stream
        start = time.perf_counter()
        batch = 256
        for i in range(0, count, batch):
            for j in range(min(batch, count - i)):
                conn.send_frame(msgpack.packb({"k": "msg", "id": i + j}))
            await stream.send_all(conn.data_to_send())
        await all_received()
        return round(count / (time.perf_counter() - start))

    async def aclose(self) -> None:
        await self._stream.aclose()


def latency_figures(elapsed_s: float, latencies: list[int]) -> dict[str, Any]:
    """Round trips/s and p50/p99 (us) of sequential round trips."""
    ordered = sorted(latencies)
    return {
        "round_trips_per_s": round(len(ordered) / elapsed_s),
        "p50_us": ordered[len(ordered) // 2] / 1000,
        "p99_us": ordered[int(len(ordered) * 0.99)] / 1000,
    }


#: What starting the server end gives the client: its port and ``all_received``.
_Server = tuple[int, Callable[[], Awaitable[None]]]


@asynccontextmanager
async def _listening(one_way: int, on_all_received: Callable[[], None]) -> AsyncIterator[int]:
    """The server end serving on 127.0.0.1 in this trio loop: yields its port; stops on
    exit."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(
                trio.serve_tcp, _server(one_way, on_all_received), 0, host="127.0.0.1"
            )
        )
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def _server_here(one_way: int) -> AsyncIterator[_Server]:
    """The server end in this trio loop; stopped on exit."""
    done_one_way = trio.Event()
    async with _listening(one_way, done_one_way.set) as port:
        yield port, done_one_way.wait


@asynccontextmanager
async def _server_child(one_way: int) -> AsyncIterator[_Server]:
    """The server end in a child process (this file with ``--serve``); it stops on exit."""
    async with open_child([__file__, "--serve", str(one_way)]) as (_, lines):
        port = int((await lines.next())["port"])

        async def all_received() -> None:
            await lines.next()

        yield port, all_received


@asynccontextmanager
async def bare_pair(
    processes: int, one_way: int = ONE_WAY
) -> AsyncIterator[tuple[BareClient, Callable[[], Awaitable[None]]]]:
    """The bare pair, connected: the client and ``all_received`` (returns once the server
    has all ``one_way`` one-way messages). The server runs in this trio loop
    (``processes=1``) or in a child process (``processes=2``)."""
    server = _server_here(one_way) if processes == 1 else _server_child(one_way)
    async with server as (port, all_received):
        client = await BareClient.connect(port)
        yield client, all_received
        await client.aclose()


async def run_baseline_pair(
    processes: int, round_trips: int = ROUND_TRIPS, one_way: int = ONE_WAY
) -> dict[str, Any]:
    """The bare pair alone: warm-up, round trips, then the one-way stream; the figures."""
    async with bare_pair(processes, one_way) as (client, all_received):
        await client.round_trips(WARM_UP_ROUND_TRIPS)
        figures = latency_figures(*await client.round_trips(round_trips))
        figures["one_way_per_s"] = await client.one_way(one_way, all_received)
    return figures


async def _serve_child(one_way: int) -> None:
    """The child of ``_server_child``: serve until stdin closes."""
    async with _listening(one_way, lambda: print_line(received=one_way)) as port:
        # The GC settings the daemon bench's processes run with (see its docstring).
        tune_gc_for_serving()
        print_line(port=port)
        await wait_stdin_eof()


def main(argv: list[str] | None = None) -> int:
    """Print the baseline figures (both modes) as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--serve", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        trio.run(_serve_child, args.serve, clock=PerfCounterClock())  # as the daemons run
        return 0
    # The GC settings the daemon bench's processes run with (see its docstring).
    tune_gc_for_serving()
    for processes in (1, 2):
        figures = trio.run(run_baseline_pair, processes, clock=PerfCounterClock())
        print(
            json.dumps({"bench": "baseline_trio_noise_msgpack", "processes": processes, **figures})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
