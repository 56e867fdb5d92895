"""Baseline: a bare trio + Noise (bbnode.wire.SecureConnection) + msgpack client/server pair.

Does the same work as ``daemon_bench.py`` without the engine: sequential request/response
round trips and a one-way stream. Prints JSON lines; importable (``run_baseline``).
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import msgpack
import trio

from bbnode.daemon._handshake import handshake
from bbnode.wire import FrameReceived, IdentityKey, SecureConnection


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


async def run_baseline(round_trips: int = 2000, one_way: int = 20000) -> dict[str, Any]:
    """Measure; returns the figures."""
    server_key = IdentityKey.from_seed(b"\x01" * 32)
    client_key = IdentityKey.from_seed(b"\x02" * 32)
    results: dict[str, Any] = {}
    done_one_way = trio.Event()

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
                    done_one_way.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        conn = SecureConnection(client_key, initiator=True)
        await handshake(stream, conn, 5)
        frames = _frames(stream, conn)
        latencies = []
        start = time.perf_counter()
        for i in range(round_trips):
            t0 = time.perf_counter_ns()
            conn.send_frame(msgpack.packb({"k": "req", "id": i, "v": b"x" * 64}))
            await stream.send_all(conn.data_to_send())
            await frames.__anext__()
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
        await done_one_way.wait()
        results["one_way_per_s"] = round(one_way / (time.perf_counter() - start))
        await stream.aclose()
        nursery.cancel_scope.cancel()
    return results


def main() -> None:
    """Print the baseline figures as one JSON line."""
    figures = trio.run(run_baseline)
    print(json.dumps({"bench": "baseline_trio_noise_msgpack", **figures}))


if __name__ == "__main__":
    main()
