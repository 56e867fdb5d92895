"""The Prometheus endpoint: real daemons scraped over real HTTP, plus the server's edges."""

from __future__ import annotations

import signal
import sys
import urllib.request
from pathlib import Path

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from bbnode import __version__
from bbnode.daemon.checkpoint import Checkpointer
from bbnode.daemon.connections import ConnectionManager, ConnectionSettings
from bbnode.daemon.counters import Counters
from bbnode.daemon.events import DriverInput
from bbnode.daemon.metrics import EngineSample, MetricsState, TurnHistogram
from bbnode.daemon.metrics_http import CONTENT_TYPE, serve_metrics
from bbnode.daemon.policy import NetworkPolicy
from bbnode.store import SnapshotStore
from bbnode.wire import IdentityKey
from tests.daemon._harness import DaemonProcess, free_port, make_node, running, wait_for

# Heartbeat 0.25 s, timeout 0.2 s, failure_threshold 2 (the harness config): as in
# test_daemon_cluster, room for a loaded CI machine.
PEER_DOWN_BOUND_S = 8.0

#: (sample name, sorted label pairs) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series is absent (counters not yet incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(port: int) -> Samples:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE
        return parse(response.read().decode())


def with_metrics(node: DaemonProcess, port: int | None = None, **overrides: object) -> int:
    """(Re)write ``node``'s config with a ``[metrics]`` section; returns the metrics port."""
    port = port or free_port()
    node.write_config(**overrides)
    with node.config_path.open("a") as config:
        config.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    return port


@pytest.mark.slow
def test_metrics_move_with_traffic_block_and_snapshot(tmp_path: Path) -> None:
    a = make_node(tmp_path, "a", 1)
    b = make_node(tmp_path, "b", 2)
    a_port = with_metrics(a)
    b_port = with_metrics(b, bootstrap=[a.address])
    with running(a, b):
        wait_for(lambda: str(b.peer) in a.connected(), 10, "b connected to a")

        first = scrape(a_port)
        assert value(first, "bbnode_build_info", **build_labels(first)) == 1
        assert build_labels(first)["version"] == __version__
        assert value(first, "bbnode_node_info", peer_id=str(a.peer)) == 1
        assert value(first, "bbnode_connections", direction="inbound") == 1
        assert value(first, "bbnode_connections", direction="outbound") == 0
        assert value(first, "bbnode_driver_responsive") == 1
        assert value(first, "bbnode_peers_known") >= 1
        assert value(scrape(b_port), "bbnode_connections", direction="outbound") == 1

        # Heartbeats flow every 0.25 s: every traffic counter grows between scrapes.
        grown = ("bbnode_envelopes_total", "bbnode_wire_bytes_total")

        def traffic_grew() -> bool:
            now = scrape(a_port)
            return all(
                value(now, name, direction=d) > value(first, name, direction=d)
                for name in grown
                for d in ("in", "out")
            )

        wait_for(traffic_grew, 10, "envelopes and bytes in/out to grow on a")
        turns = scrape(a_port)
        assert value(turns, "bbnode_engine_poll_duration_seconds_count") > 0
        assert value(turns, "bbnode_engine_poll_duration_seconds_bucket", le="+Inf") == value(
            turns, "bbnode_engine_poll_duration_seconds_count"
        )
        if sys.platform == "linux":  # ProcessCollector reads /proc
            assert value(turns, "process_resident_memory_bytes") > 0

        # b dies: a's engine declares it down (heartbeat 0.25 s, threshold 2; the bound is
        # the one test_daemon_cluster uses), then counts it up again when b comes back.
        b.signal(signal.SIGKILL)
        b.wait_exit()
        wait_for(
            lambda: (
                value(scrape(a_port), "bbnode_peer_down_total") >= 1
                and value(scrape(a_port), "bbnode_peers_down") == 1
            ),
            PEER_DOWN_BOUND_S,
            "a counts a PeerDown for b",
        )
        assert value(scrape(a_port), "bbnode_connections", direction="inbound") == 0
        b.start()
        wait_for(
            lambda: (
                value(scrape(a_port), "bbnode_peer_up_total") >= 1
                and value(scrape(a_port), "bbnode_peers_down") == 0
                and value(scrape(a_port), "bbnode_connections", direction="inbound") == 1
            ),
            10,
            "a counts b up again",
        )

        # Block b on a: a closes b's connection for policy, then refuses b's redials.
        a.ctl("block", peer=str(b.peer))
        wait_for(
            lambda: (
                value(scrape(a_port), "bbnode_peers_blocked") == 1
                and value(
                    scrape(a_port), "bbnode_connections_closed_total", reason="peer_blocklisted"
                )
                == 1
            ),
            10,
            "a counts the block and the close",
        )
        # b redials after its backoff (bbnode.daemon.redial) and is refused again.
        wait_for(
            lambda: (
                value(scrape(a_port), "bbnode_connections_refused_total", reason="peer_blocklisted")
                >= 1
            ),
            30,
            "a counts a refused redial",
        )
        assert value(scrape(a_port), "bbnode_connections", direction="inbound") == 0

        # ctl snapshot: one more write, with its duration, size and age.
        before = scrape(a_port)
        a.ctl("snapshot")
        after = scrape(a_port)
        assert value(after, "bbnode_snapshot_writes_total") > value(
            before, "bbnode_snapshot_writes_total"
        )
        assert value(after, "bbnode_snapshot_size_bytes") > 0
        assert value(after, "bbnode_snapshot_duration_seconds") > 0
        assert value(after, "bbnode_snapshot_age_seconds") >= 0
        assert value(after, "bbnode_snapshot_last_success_timestamp_seconds") >= value(
            before, "bbnode_snapshot_last_success_timestamp_seconds"
        )
        assert value(after, "bbnode_snapshot_failures_total") == 0
        assert value(after, "bbnode_snapshot_write_failing") == 0


def build_labels(samples: Samples) -> dict[str, str]:
    for (name, labels), _ in samples.items():
        if name == "bbnode_build_info":
            return dict(labels)
    raise AssertionError("no bbnode_build_info")


def test_metrics_port_in_use_fails_start(tmp_path: Path) -> None:
    a = make_node(tmp_path, "a", 1)
    b = make_node(tmp_path, "b", 2)
    port = with_metrics(a)
    with running(a):
        with_metrics(b, port)
        with pytest.raises(AssertionError, match="exited early"):
            b.start()
        assert b.wait_exit() == 1
        assert value(scrape(port), "bbnode_driver_responsive") == 1


# -- the HTTP server on its own --------------------------------------------------------------


def fake_state(tmp_path: Path) -> MetricsState:
    key = IdentityKey.from_seed(bytes([7]) * 32)
    send, _receive = trio.open_memory_channel[DriverInput](1)
    manager = ConnectionManager(
        key, ConnectionSettings(), NetworkPolicy(), send, lambda p: None, Counters()
    )
    counters = manager.counters
    counters.incr("frames.in", 3)
    counters.incr("conn.refused.denied_cidr")
    counters.incr("something.new")
    counters.incr("send.failed_dial", 2)
    return MetricsState(
        key.peer_id, counters, manager, Checkpointer(SnapshotStore(tmp_path), counters), lambda: 5
    )


async def http(port: int, request: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def test_server_paths_methods_and_unresponsive_driver(tmp_path: Path) -> None:
    state = fake_state(tmp_path)
    answers = [EngineSample(4, 1, 2, 0.5)]

    async def sample() -> EngineSample:
        if not answers:
            raise RuntimeError("the engine driver did not answer in time (stuck?)")
        return answers.pop()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            _host, port = await nursery.start(serve_metrics, ("127.0.0.1", 0), state, sample)
            raw = await http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 200 OK")
            samples = parse(body.decode())
            assert value(samples, "bbnode_peers_known") == 4
            assert value(samples, "bbnode_peers_up") == 3
            assert value(samples, "bbnode_peers_down") == 1
            assert value(samples, "bbnode_peers_blocked") == 2
            assert value(samples, "bbnode_envelopes_total", direction="in") == 3
            assert value(samples, "bbnode_envelopes_total", direction="out") == 0
            assert value(samples, "bbnode_connections_refused_total", reason="denied_cidr") == 1
            assert value(samples, "bbnode_daemon_events_total", event="something.new") == 1
            assert value(samples, "bbnode_ingress_queue_depth") == 5
            assert value(samples, "bbnode_send_failures_total", reason="dial") == 2
            assert value(samples, "bbnode_send_failures_total", reason="queue_full") == 0
            # Nothing written yet: no snapshot age to report (rather than a made-up one).
            assert ("bbnode_snapshot_age_seconds", ()) not in samples

            # The sampler now fails: the scrape still works and says the driver is stuck.
            samples = parse(
                (await http(port, b"GET /metrics HTTP/1.0\r\n\r\n"))
                .partition(b"\r\n\r\n")[2]
                .decode()
            )
            assert value(samples, "bbnode_driver_responsive") == 0
            assert ("bbnode_peers_known", ()) not in samples

            assert (await http(port, b"GET /nope HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.0 404")
            assert (await http(port, b"POST /metrics HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.0 405")
            head_only = await http(port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
            assert head_only.startswith(b"HTTP/1.0 200")
            assert head_only.endswith(b"\r\n\r\n")
            assert (await http(port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.0 400")
            assert (await http(port, b"GET /" + b"x" * 9000)).startswith(b"HTTP/1.0 431")
            assert await http(port, b"") == b""  # a client that connects and leaves
            nursery.cancel_scope.cancel()


def test_turn_histogram_buckets_are_cumulative_le() -> None:
    hist = TurnHistogram((0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.005, 0.5):
        hist.observe(seconds)
    assert hist.buckets() == [("0.001", 2.0), ("0.01", 3.0), ("+Inf", 4.0)]
    assert hist.sum_s == pytest.approx(0.5065)
