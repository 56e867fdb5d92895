"""Baseline: a bare trio + Noise (bbnode.wire.SecureConnection) + msgpack client/server pair.

Does the same work as ``daemon_bench.py`` without the engine: sequential request/response
round trips and a one-way stream. Two modes, the same work per message in both:

* ``run_baseline()``: both ends in this process, one trio loop (one core does both ends).
* ``run_baseline_two_process()``: the server end in a child process (this file run with the
  hidden ``--serve N`` flag), as real peers are; the child tells us on stdout when it has
  received all ``N`` one-way messages.

Also home of the small child-process helpers ``daemon_bench.py`` shares (``open_child``,
``wait_stdin_eof``): a child prints JSON lines on stdout and stops at EOF on its stdin, so it
never outlives the bench, even one killed outright.

Prints JSON lines; importable (``run_baseline``, ``run_baseline_two_process``).
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
from bbnode.wire import FrameReceived, IdentityKey, SecureConnection

#: Seconds a child gets to stop after its stdin closes before it is killed.
CHILD_STOP_S = 5.0


#: The work both the daemon bench and this bare pair measure, so their ratios compare like
#: with like: sequential round trips after ``WARM_UP_ROUND_TRIPS`` untimed ones, then a
#: one-way blast.
ROUND_TRIPS = 2000
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
                conn.send_frame(msgpack.packb({"k": "resp", "id": msg["id"]}))
                await stream.send_all(conn.data_to_send())
            else:
                received += 1
                if received == one_way:
                    on_all_received()

    return serve


async def _client(
    port: int, round_trips: int, one_way: int, all_received: Callable[[], Awaitable[None]]
) -> dict[str, Any]:
    """The client end: round trips, then the one-way stream until ``all_received`` returns."""
    client_key = IdentityKey.from_seed(b"\x02" * 32)
    results: dict[str, Any] = {}
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = SecureConnection(client_key, initiator=True)
    await handshake(stream, conn, 5)
    frames = _frames(stream, conn)

    async def round_trip(i: int) -> None:
        conn.send_frame(msgpack.packb({"k": "req", "id": i, "v": b"x" * 64}))
        await stream.send_all(conn.data_to_send())
        await frames.__anext__()

    for i in range(WARM_UP_ROUND_TRIPS):  # untimed, as the daemon bench warms up
        await round_trip(i)
    latencies = []
    start = time.perf_counter()
    for i in range(round_trips):
        t0 = time.perf_counter_ns()
        await round_trip(i)
        latencies.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - start
    latencies.sort()
    results["round_trips_per_s"] = round(round_trips / elapsed)
    results["p50_us"] = latencies[len(latencies) // 2] / 1000
    results["p99_us"] = latencies[int(len(latencies) * 0.99)] / 1000
    start = time.perf_counter()
    batch = 256
    for i in range(0, one_way, batch):
        for j in range(min(batch, one_way - i)):
            conn.send_frame(msgpack.packb({"k": "msg", "id": i + j}))
        await stream.send_all(conn.data_to_send())
    await all_received()
    results["one_way_per_s"] = round(one_way / (time.perf_counter() - start))
    await stream.aclose()
    return results


async def run_baseline(round_trips: int = ROUND_TRIPS, one_way: int = ONE_WAY) -> dict[str, Any]:
    """Measure with both ends in this process (one trio loop); returns the figures."""
    done_one_way = trio.Event()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(
                trio.serve_tcp, _server(one_way, done_one_way.set), 0, host="127.0.0.1"
            )
        )
        port = listeners[0].socket.getsockname()[1]
        results = await _client(port, round_trips, one_way, done_one_way.wait)
        nursery.cancel_scope.cancel()
    return results


async def run_baseline_two_process(
    round_trips: int = ROUND_TRIPS, one_way: int = ONE_WAY
) -> dict[str, Any]:
    """Measure with the server end in a child process; returns the figures.

    The one-way time runs until the child's ``received`` line arrives here (one pipe hop
    more than the in-process event: microseconds).
    """
    async with open_child([__file__, "--serve", str(one_way)]) as (_, lines):
        port = int((await lines.next())["port"])

        async def all_received() -> None:
            await lines.next()

        return await _client(port, round_trips, one_way, all_received)


async def _serve_child(one_way: int) -> None:
    """The child of ``run_baseline_two_process``: serve until stdin closes."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(
                trio.serve_tcp,
                _server(one_way, lambda: print_line(received=one_way)),
                0,
                host="127.0.0.1",
            )
        )
        print_line(port=listeners[0].socket.getsockname()[1])
        await wait_stdin_eof()
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    """Print the baseline figures (both modes) as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--serve", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        trio.run(_serve_child, args.serve)
        return 0
    for processes, run in ((1, run_baseline), (2, run_baseline_two_process)):
        figures = trio.run(run)
        print(
            json.dumps({"bench": "baseline_trio_noise_msgpack", "processes": processes, **figures})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
