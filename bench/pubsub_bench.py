"""Pubsub across a 5-node mesh: messages/s and delivery latency.

Prints one JSON object per line:
  {"bench": "pubsub_engine", "nodes": 5, "messages": N, "deliveries": N*5,
   "msgs_per_s": ..., "deliveries_per_s": ...}
  {"bench": "pubsub_daemons", "nodes": 5, "messages": N, "deliveries": ..., "msgs_per_s": ...,
   "latency_ms_p50": ..., "latency_ms_p99": ..., "latency_ms_max": ...}

"engine": five real engine `Node`s in this process, fully meshed, envelopes really encoded
and decoded, no sockets and a manual clock: the protocol and engine cost per message (one
core). "daemons": five real `bbnode run` processes on 127.0.0.1 (the `bbnode demo` mesh,
bootstrapped through one node and converged by peer exchange); messages are published through
one node's control socket and latency is publish call → `ctl subscribe` event on each of the
other nodes. Usage: python bench/pubsub_bench.py [--messages N] [--mode engine|daemons|both]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bbnode.demo import TOPIC, Demo, DemoError, event_payload
from bbnode.engine import Node, NodeConfig, steps
from bbnode.engine.envelope import encode_envelope
from bbnode.ids import Address, PeerId
from bbnode.protocols.pubsub import Pubsub

NODES = 5


def bench_engine(messages: int) -> dict[str, Any]:
    peers = [PeerId.from_u64(i) for i in range(1, NODES + 1)]
    addresses = {p: Address.tcp("127.0.0.1", 7000 + i) for i, p in enumerate(peers)}
    nodes = {p: Node(p, (addresses[p],), NodeConfig(rng_seed=i)) for i, p in enumerate(peers)}
    for peer, node in nodes.items():
        node.install(Pubsub())
        for other in peers:
            if other != peer:
                node.add_peer(other, [addresses[other]])
    deliveries = 0
    start = time.perf_counter()
    for i in range(messages):
        nodes[peers[0]].invoke("pubsub", "publish", {"topic": "bench", "data": b"%08d" % i})
        busy = True
        while busy:
            busy = False
            for peer, node in nodes.items():
                for step in node.poll():
                    busy = True
                    if isinstance(step, steps.AppEvent):
                        deliveries += 1
                    elif isinstance(step, steps.SendEnvelope):
                        data = encode_envelope(step.envelope)
                        nodes[step.peer].deliver_inbound(peer, data)
    elapsed = time.perf_counter() - start
    return {
        "bench": "pubsub_engine",
        "nodes": NODES,
        "messages": messages,
        "deliveries": deliveries,
        "msgs_per_s": round(messages / elapsed, 1),
        "deliveries_per_s": round(deliveries / elapsed, 1),
    }


def bench_daemons(messages: int, timeout_s: float) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bbnode-bench-"))
    demo = Demo(root, NODES, timeout_s, sys.stderr)
    try:
        for node in demo.nodes:
            demo.start(node)
        demo.wait_for_mesh()
        for node in demo.nodes:
            demo.subscribe(node)
        publisher, others = demo.nodes[0], demo.nodes[1:]
        sent: dict[bytes, float] = {}
        start = time.monotonic()
        for i in range(messages):
            data = b"%08d" % i
            sent[data] = time.monotonic()
            publisher.ctl("publish", topic=TOPIC, data=data)
        deadline = time.monotonic() + timeout_s
        while sum(len(n.events) for n in others) < messages * len(others):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        elapsed = max(max((n.arrivals[-1] for n in others if n.arrivals), default=start), start)
        latencies = [
            (at - sent[got]) * 1000
            for node in others
            for event, at in zip(list(node.events), list(node.arrivals), strict=False)
            if (got := event_payload(event)) is not None and got in sent
        ]
    finally:
        demo.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "bench": "pubsub_daemons",
        "nodes": NODES,
        "messages": messages,
        "deliveries": len(latencies),
        "expected_deliveries": messages * (NODES - 1),
        "msgs_per_s": round(messages / max(elapsed - start, 1e-9), 1),
        "latency_ms_p50": round(quantiles[49], 2),
        "latency_ms_p99": round(quantiles[98], 2),
        "latency_ms_max": round(max(latencies, default=0.0), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--mode", choices=["engine", "daemons", "both"], default="both")
    parser.add_argument("--timeout-s", type=float, default=60.0)
    args = parser.parse_args()
    if args.mode in ("engine", "both"):
        print(json.dumps(bench_engine(args.messages)), flush=True)
    if args.mode in ("daemons", "both"):
        try:
            print(json.dumps(bench_daemons(args.messages, args.timeout_s)), flush=True)
        except DemoError as exc:
            print(json.dumps({"bench": "pubsub_daemons", "error": str(exc)}), flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
