"""Engine throughput: envelopes/s through deliver_inbound -> poll -> component -> AppEvent.

Prints one JSON line per scenario: {"bench", "peers", "blocklist", "envelopes",
"envelopes_per_s", "ns_per_envelope"}. Envelopes (100-byte payloads, sender addresses
included) are pre-encoded; the timed loop delivers them and polls every `--batch` envelopes,
on one core; the best of `--repeat` timed runs is reported. Scenarios: 10 known peers, and
100 000 known peers plus 100 000 blocklist entries (senders cycle over all known peers, so
per-peer lookups see the whole table).
Target (issue item 9): >= 100 000 envelopes/s, and the 100 000-peer figure within 20 % of
the 10-peer figure. `--profile` prints a cProfile of the 10-peer run instead.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from typing import Any

import msgpack

from bbnode.engine import Async, Component, Immediate, Node, NodeConfig, OpContext
from bbnode.engine.component import op_suffixes
from bbnode.engine.envelope import SlotFill, WireEnvelope, encode_envelope
from bbnode.engine.steps import AppEvent
from bbnode.ids import Address, PeerId


class Sink(Component):
    """Emits one AppEvent per inbound envelope."""

    TYPE_NAME = "sink"
    OPS = ("in",)

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: OpContext) -> Immediate | Async:
        ctx.emit("in", inputs["payload"])
        return Immediate()


def _setup(peers: int, blocked: int) -> tuple[Node, list[tuple[PeerId, bytes]]]:
    cap = max(16_384, peers + 1)
    node = Node(
        PeerId.from_u64(0),
        [Address.tcp("127.0.0.1", 7400)],
        NodeConfig(rng_seed=1, address_book_cap=cap, max_inflight_bytes=1 << 31),
    )
    sink = Sink()
    ref = node.install(sink)
    suffix = op_suffixes(ref, "in")[0]
    payload = msgpack.packb(b"x" * 98)  # 100 bytes of msgpack
    assert len(payload) == 100
    senders = [PeerId.from_u64(i) for i in range(1, peers + 1)]
    for i, peer in enumerate(senders):
        node.add_peer(peer, [Address.tcp("10.0.0.1", 1000 + i % 60000, peer)])
    for i in range(blocked):
        node.block_peer(PeerId.from_u64(10_000_000 + i))
    frames = []
    for i, peer in enumerate(senders):
        src = Address.tcp("10.0.0.1", 1000 + i % 60000, peer).to_bytes()
        env = WireEnvelope((SlotFill(suffix, payload, False, 1),), src_peer_addresses=(src,))
        frames.append((peer, encode_envelope(env)))
    return node, frames


def _run(node: Node, frames: list[tuple[PeerId, bytes]], count: int, batch: int) -> int:
    events = 0
    deliver = node.deliver_inbound
    n = len(frames)
    for i in range(count):
        peer, data = frames[i % n]
        deliver(peer, data)
        if (i + 1) % batch == 0:
            events += sum(1 for s in node.poll() if s.__class__ is AppEvent)
    events += sum(1 for s in node.poll() if s.__class__ is AppEvent)
    return events


def scenario(peers: int, blocked: int, count: int, batch: int, repeat: int) -> dict[str, Any]:
    node, frames = _setup(peers, blocked)
    _run(node, frames, max(len(frames), 10_000), batch)  # warm-up: every sender seen once
    elapsed = float("inf")  # best of `repeat` runs: other processes only ever slow one down
    for _ in range(repeat):
        start = time.perf_counter()
        events = _run(node, frames, count, batch)
        elapsed = min(elapsed, time.perf_counter() - start)
        assert events == count, (events, count)
    return {
        "bench": "engine_throughput",
        "peers": peers,
        "blocklist": blocked,
        "envelopes": count,
        "envelopes_per_s": round(count / elapsed),
        "ns_per_envelope": round(elapsed * 1e9 / count),
    }


def snapshot_scenario(peers: int) -> dict[str, Any]:
    """encode/decode of a node knowing `peers` peers, all banned, half with failures."""
    from bbnode.engine import NodeSnapshot

    node = Node(
        PeerId.from_u64(0),
        [Address.tcp("127.0.0.1", 7400)],
        NodeConfig(rng_seed=1, address_book_cap=peers, failure_threshold=1),
    )
    for i in range(1, peers + 1):
        peer = PeerId.from_u64(i)
        node.add_peer(peer, [Address.tcp("10.0.0.1", 1 + i % 60000)])
        node.block_peer(peer)
        if i % 2:
            node.dial_failed(peer, None, "refused")
    node.poll()
    snap = node.snapshot()
    start = time.perf_counter()
    data = snap.encode()
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    NodeSnapshot.decode(data)
    decode_s = time.perf_counter() - start
    raw = msgpack.unpackb(data, strict_map_key=False)
    start = time.perf_counter()
    plain = msgpack.packb(raw)
    plain_encode_s = time.perf_counter() - start
    start = time.perf_counter()
    msgpack.unpackb(plain, strict_map_key=False)
    plain_decode_s = time.perf_counter() - start
    return {
        "bench": "engine_snapshot",
        "peers": peers,
        "bytes": len(data),
        "bytes_per_peer": round(len(data) / peers, 1),
        "encode_s": round(encode_s, 4),
        "decode_s": round(decode_s, 4),
        "encode_vs_plain_msgpack": round(encode_s / plain_encode_s, 2),
        "decode_vs_plain_msgpack": round(decode_s / plain_decode_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:
        node, frames = _setup(10, 0)
        profiler = cProfile.Profile()
        profiler.enable()
        _run(node, frames, args.count, args.batch)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    small = scenario(10, 0, args.count, args.batch, args.repeat)
    print(json.dumps(small), flush=True)
    large = scenario(100_000, 100_000, args.count, args.batch, args.repeat)
    print(json.dumps(large), flush=True)
    ratio = large["envelopes_per_s"] / small["envelopes_per_s"]
    print(json.dumps({"bench": "engine_throughput_ratio", "large_over_small": round(ratio, 3)}))
    print(json.dumps(snapshot_scenario(100_000)), flush=True)


if __name__ == "__main__":
    main()
