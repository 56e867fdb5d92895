"""Prometheus metrics: ``[metrics] listen = "host:port"`` serves ``GET /metrics``.

Nothing here costs the hot path. :class:`DaemonCollector` reads state the daemon keeps
anyway (the :class:`~.counters.Counters` registry, the connection manager, the
checkpointer, the ingress channel) when Prometheus scrapes. Engine-owned state (peer
health, bans) is sampled through one :class:`~.driver.ControlCall`, so the Node is still
touched only by the driver; when the driver does not answer within
:data:`ENGINE_SAMPLE_TIMEOUT_S` the scrape still succeeds, without those series and with
``bbnode_driver_responsive 0``. The one thing fed from a loop is the driver-turn histogram:
two clock reads and a bisect per turn (:class:`TurnHistogram`, lock-free: the daemon is one
trio thread).

The endpoint is a tiny HTTP/1.0 server running as a trio task in the supervisor nursery,
not prometheus_client's threaded server: scrape-time reads then never race the driver, and
shutdown is just a cancel. One request per connection, a bounded request head and deadline,
at most :data:`MAX_CLIENTS` concurrent scrapers. It must never write to the engine.
``[metrics] listen`` is read at start only: a SIGHUP reload does not move the endpoint.

Every counter the daemon increments is exported: known names map to named metrics through
the tables below; an unknown name still appears as ``bbnode_daemon_events_total{event=...}``.
"""

from __future__ import annotations

import contextlib
import math
import platform
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
import trio
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bbnode import __version__
from bbnode.daemon.checkpoint import Checkpointer
from bbnode.daemon.connections import ConnectionManager
from bbnode.daemon.counters import Counters
from bbnode.ids import PeerId

if TYPE_CHECKING:  # the driver imports the engine; metrics only reads it
    from bbnode.daemon.driver import EngineDriver

__all__ = [
    "CONTENT_TYPE",
    "TURN_BUCKETS_S",
    "DaemonCollector",
    "EngineSample",
    "MetricsState",
    "TurnHistogram",
    "build_registry",
    "sample_engine",
    "serve_metrics",
]

log = structlog.get_logger(component="metrics")

#: The Prometheus text format 0.0.4, which ``generate_latest`` writes (spelled out because
#: prometheus_client's own ``CONTENT_TYPE_LATEST`` became 1.0.0 in 0.22).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds of the driver-turn histogram: a quiet turn is ~10 µs, a turn over 100 ms
#: is a driver stall that delays every peer.
TURN_BUCKETS_S = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
#: How long a scrape waits for the driver to sample engine state (below Prometheus's
#: default 10 s scrape timeout, so a stuck driver still yields a scrape that says so).
ENGINE_SAMPLE_TIMEOUT_S = 2.0
#: Concurrent scrape connections; more wait for a slot (the listener's backlog holds them).
MAX_CLIENTS = 8
#: Bytes and seconds a client gets to send its request head.
MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0

#: Counter name -> (metric, labels): exact names.
_EXACT: dict[str, tuple[str, dict[str, str]]] = {
    "frames.in": ("bbnode_envelopes", {"direction": "in"}),
    "frames.out": ("bbnode_envelopes", {"direction": "out"}),
    "peers.down": ("bbnode_peer_down", {}),
    "peers.up": ("bbnode_peer_up", {}),
    "conn.established": ("bbnode_connections_established", {}),
    "conn.handshake_failed": ("bbnode_handshake_failures", {}),
    "conn.duplicate_closed": ("bbnode_connections_duplicate_closed", {}),
    "dial.attempts": ("bbnode_dial_attempts", {}),
    "dial.failed": ("bbnode_dial_failures", {}),
    "snapshot.written": ("bbnode_snapshot_writes", {}),
    "snapshot.write_failed": ("bbnode_snapshot_failures", {}),
    "config.reloaded": ("bbnode_config_reloads", {"result": "applied"}),
    "config.reload_failed": ("bbnode_config_reloads", {"result": "rejected"}),
    "ingress.rejected": ("bbnode_ingress_rejected", {}),
}
#: Counter name prefix -> (metric, label): the rest of the name is the label value.
_PREFIXED: tuple[tuple[str, str, str], ...] = (
    ("conn.refused.", "bbnode_connections_refused", "reason"),
    ("conn.closed.", "bbnode_connections_closed", "reason"),
    ("send.dropped_", "bbnode_send_failures", "reason"),
    ("send.failed_", "bbnode_send_failures", "reason"),
    ("step.", "bbnode_engine_steps", "step"),
)
#: Byte totals, exported with the live connections' bytes (see ``wire_bytes``).
_SKIP = ("bytes.in", "bytes.out")

#: Help text and label names of every counter family.
_COUNTER_HELP: dict[str, tuple[str, tuple[str, ...]]] = {
    "bbnode_envelopes": ("Envelopes received from / handed to peers.", ("direction",)),
    "bbnode_peer_down": ("PeerDown steps: the engine declared a peer down.", ()),
    "bbnode_peer_up": ("PeerUp steps: a peer that was down answered again.", ()),
    "bbnode_connections_established": ("Authenticated connections registered.", ()),
    "bbnode_handshake_failures": ("Noise handshakes that failed or timed out.", ()),
    "bbnode_connections_duplicate_closed": (
        "Connections closed by the one-connection-per-peer tie-break.",
        (),
    ),
    "bbnode_dial_attempts": ("Outbound TCP connection attempts.", ()),
    "bbnode_dial_failures": ("Dials that failed on every address.", ()),
    "bbnode_snapshot_writes": ("Snapshots written to disk.", ()),
    "bbnode_snapshot_failures": ("Snapshot writes that failed (retried).", ()),
    "bbnode_config_reloads": ("SIGHUP config reloads by result.", ("result",)),
    "bbnode_ingress_rejected": ("Inputs the engine rejected (malformed frames...).", ()),
    "bbnode_connections_refused": (
        "Connections refused before or right after the handshake, by reason "
        "(denied_cidr, max_connections, peer_blocklisted...).",
        ("reason",),
    ),
    "bbnode_connections_closed": (
        "Authenticated connections closed, by reason (eof, idle_timeout, peer_down, "
        "peer_blocklisted...).",
        ("reason",),
    ),
    "bbnode_send_failures": (
        "Outbound envelopes that never reached a socket, by reason (queue_full, "
        "no_address, dial, on_close).",
        ("reason",),
    ),
    "bbnode_engine_steps": ("Engine steps executed, by step type.", ("step",)),
    "bbnode_daemon_events": ("Other daemon event counters, by name.", ("event",)),
}
#: Series present from the first scrape, so ``rate()`` and alerts see a zero, not nothing.
_SEEDED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bbnode_envelopes", ("in",)),
    ("bbnode_envelopes", ("out",)),
    ("bbnode_peer_down", ()),
    ("bbnode_peer_up", ()),
    ("bbnode_connections_established", ()),
    ("bbnode_handshake_failures", ()),
    ("bbnode_dial_failures", ()),
    ("bbnode_snapshot_writes", ()),
    ("bbnode_snapshot_failures", ()),
    ("bbnode_ingress_rejected", ()),
    ("bbnode_connections_refused", ("peer_blocklisted",)),
    ("bbnode_send_failures", ("queue_full",)),
)


class TurnHistogram:
    """Cumulative-on-render histogram of driver turn durations; ``observe`` is O(log n)."""

    __slots__ = ("bounds", "counts", "sum_s")

    def __init__(self, bounds: tuple[float, ...] = TURN_BUCKETS_S) -> None:
        self.bounds = bounds
        #: Per-bucket (not cumulative) counts; the last one is ``+Inf``.
        self.counts = [0] * (len(bounds) + 1)
        self.sum_s = 0.0

    def observe(self, seconds: float) -> None:
        """Record one turn of ``seconds``."""
        # bisect_left: the first bound >= seconds, i.e. Prometheus's ``le`` bucket.
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum_s += seconds

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs ending with ``+Inf``."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == math.inf else repr(bound), float(total)))
        return out


@dataclass(frozen=True, slots=True)
class EngineSample:
    """Engine-owned state, sampled in the driver task for one scrape."""

    peers_known: int
    peers_down: int
    peers_blocked: int
    #: Seconds since the driver loop last turned.
    driver_turn_age_s: float


def sample_engine(driver: EngineDriver) -> EngineSample:
    """Read peer counts from an :class:`~.driver.EngineDriver` (call it in the driver)."""
    known: set[PeerId] = set(driver.known_peers) | set(driver.manager.connected_peers())
    down = 0
    for peer in known:
        health = driver.node.peer_health(peer)
        if health is not None and health.down:
            down += 1
    return EngineSample(
        peers_known=len(known),
        peers_down=down,
        peers_blocked=len(driver.policy.blocked()),
        driver_turn_age_s=max(0.0, trio.current_time() - driver.last_turn_s),
    )


@dataclass
class MetricsState:
    """What the collector reads; owned by the supervisor, read only at scrape time."""

    peer_id: PeerId
    counters: Counters
    manager: ConnectionManager
    checkpointer: Checkpointer
    #: Returns the driver input channel's fill level.
    ingress_depth: Callable[[], int]
    turns: TurnHistogram = field(default_factory=TurnHistogram)
    #: Set per scrape by :func:`serve_metrics`; None when the driver did not answer.
    engine: EngineSample | None = None
    started_unix: float = field(default_factory=time.time)


class DaemonCollector(Collector):
    """Builds every ``bbnode_*`` family from a :class:`MetricsState` at scrape time."""

    def __init__(self, state: MetricsState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        """Yield the families (prometheus_client calls this on ``generate_latest``)."""
        yield from self._info()
        yield from self._counters()
        yield from self._connections()
        yield from self._engine()
        yield from self._snapshots()

    def _info(self) -> Iterator[Metric]:
        s = self.state
        build = GaugeMetricFamily(
            "bbnode_build_info",
            "Always 1; labels carry the bbnode and Python versions.",
            labels=["version", "python_version", "python_implementation"],
        )
        build.add_metric(
            [__version__, platform.python_version(), platform.python_implementation()], 1
        )
        yield build
        node = GaugeMetricFamily(
            "bbnode_node_info", "Always 1; the node's PeerId.", labels=["peer_id"]
        )
        node.add_metric([str(s.peer_id)], 1)
        yield node
        yield GaugeMetricFamily(
            "bbnode_start_time_seconds", "Unix time the daemon started.", value=s.started_unix
        )

    def _counters(self) -> Iterator[Metric]:
        values: dict[str, dict[tuple[str, ...], float]] = {}
        for name, labels in _SEEDED:
            values.setdefault(name, {})[labels] = 0.0
        for key, value in self.state.counters.as_dict().items():
            if key in _SKIP:
                continue
            metric, labels = _classify(key)
            series = values.setdefault(metric, {})
            series[labels] = series.get(labels, 0.0) + value
        for metric, series in sorted(values.items()):
            help_text, label_names = _COUNTER_HELP[metric]
            family = CounterMetricFamily(metric, help_text, labels=list(label_names))
            for labels, total in sorted(series.items()):
                family.add_metric(list(labels), total)
            yield family

    def _connections(self) -> Iterator[Metric]:
        manager = self.state.manager
        by_direction = {"inbound": 0, "outbound": 0}
        for peer in manager.connected_peers():
            info = manager.info(peer)
            if info is not None:
                by_direction[info["direction"]] += 1
        conns = GaugeMetricFamily(
            "bbnode_connections",
            "Authenticated peer connections, by direction.",
            labels=["direction"],
        )
        for direction, count in by_direction.items():
            conns.add_metric([direction], count)
        yield conns
        yield GaugeMetricFamily(
            "bbnode_connection_slots_used",
            "Sockets counted against max_connections (including ones mid-handshake).",
            value=manager.connection_count,
        )
        received, sent = manager.wire_bytes()
        wire = CounterMetricFamily(
            "bbnode_wire_bytes",
            "Encrypted bytes read from / written to peer sockets after the handshake.",
            labels=["direction"],
        )
        wire.add_metric(["in"], received)
        wire.add_metric(["out"], sent)
        yield wire
        yield GaugeMetricFamily(
            "bbnode_outbound_queue_frames",
            "Frames waiting for a socket (per-connection queues plus pending dials).",
            value=manager.queued_frames(),
        )
        yield GaugeMetricFamily(
            "bbnode_ingress_queue_depth",
            "Inputs waiting for the engine driver (frames, connection news, control calls).",
            value=self.state.ingress_depth(),
        )

    def _engine(self) -> Iterator[Metric]:
        s = self.state
        engine = s.engine
        yield GaugeMetricFamily(
            "bbnode_driver_responsive",
            "1 when the engine driver answered this scrape's sample in time.",
            value=0 if engine is None else 1,
        )
        if engine is not None:
            yield GaugeMetricFamily(
                "bbnode_peers_known", "Peers seen this run or connected.", value=engine.peers_known
            )
            yield GaugeMetricFamily(
                "bbnode_peers_up",
                "Known peers the engine does not consider down.",
                value=engine.peers_known - engine.peers_down,
            )
            yield GaugeMetricFamily(
                "bbnode_peers_down",
                "Known peers the engine considers down (failure streak at threshold).",
                value=engine.peers_down,
            )
            yield GaugeMetricFamily(
                "bbnode_peers_blocked",
                "Peers blocked right now (config and runtime bans).",
                value=engine.peers_blocked,
            )
            yield GaugeMetricFamily(
                "bbnode_driver_last_turn_age_seconds",
                "Seconds since the engine driver loop last turned.",
                value=engine.driver_turn_age_s,
            )
        turns = HistogramMetricFamily(
            "bbnode_engine_poll_duration_seconds",
            "Wall time of one engine driver turn: tick due timers, poll, execute the steps.",
        )
        turns.add_metric([], s.turns.buckets(), sum_value=s.turns.sum_s)
        yield turns

    def _snapshots(self) -> Iterator[Metric]:
        cp = self.state.checkpointer
        yield GaugeMetricFamily(
            "bbnode_snapshot_write_failing",
            "1 while the most recent snapshot write failed (the node reports unhealthy).",
            value=0 if cp.healthy else 1,
        )
        if cp.last_written_unix is None:
            return  # nothing written this run: no duration, size or age to report
        yield GaugeMetricFamily(
            "bbnode_snapshot_last_success_timestamp_seconds",
            "Unix time of the last successful snapshot write.",
            value=cp.last_written_unix,
        )
        yield GaugeMetricFamily(
            "bbnode_snapshot_age_seconds",
            "Seconds since the last successful snapshot write.",
            value=max(0.0, time.time() - cp.last_written_unix),
        )
        yield GaugeMetricFamily(
            "bbnode_snapshot_duration_seconds",
            "Duration of the last successful snapshot write (encode, write, fsync).",
            value=cp.last_duration_s,
        )
        yield GaugeMetricFamily(
            "bbnode_snapshot_size_bytes",
            "Size of the last snapshot file written.",
            value=cp.last_size_bytes,
        )


def _classify(key: str) -> tuple[str, tuple[str, ...]]:
    exact = _EXACT.get(key)
    if exact is not None:
        metric, labels = exact
        return metric, tuple(labels.values())
    for prefix, metric, _label in _PREFIXED:
        if key.startswith(prefix):
            return metric, (key[len(prefix) :],)
    return "bbnode_daemon_events", (key,)


def build_registry(state: MetricsState) -> CollectorRegistry:
    """A per-daemon registry (never the global one) with the daemon and process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(state))
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, RSS, open fds...
    return registry


#: Samples engine state for one scrape (raises on timeout; see ``serve_metrics``).
EngineSampler = Callable[[], Awaitable[EngineSample]]


async def serve_metrics(
    listen: tuple[str, int],
    state: MetricsState,
    sample: EngineSampler,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``GET /metrics`` on ``listen`` until cancelled; reports the bound address."""
    registry = build_registry(state)
    host, port = listen
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    log.info("metrics_listening", address=f"{host}:{bound[1]}", path="/metrics")
    limiter = trio.CapacityLimiter(MAX_CLIENTS)

    async def scrape() -> bytes:
        engine: EngineSample | None = None
        with trio.move_on_after(ENGINE_SAMPLE_TIMEOUT_S):
            try:
                engine = await sample()
            except Exception as exc:  # a stuck or failing driver must not fail the scrape
                log.warning("metrics_engine_sample_failed", reason=str(exc))
        # No await between these two: concurrent scrapes cannot swap samples.
        state.engine = engine
        return generate_latest(registry)

    async def handle(stream: trio.SocketStream) -> None:
        # A scraper that goes away mid-response leaves nothing to clean up.
        async with limiter, stream:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await _handle_request(stream, scrape)

    async with trio.open_nursery() as nursery:
        task_status.started((host, bound[1]))
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)


async def _handle_request(
    stream: trio.SocketStream, scrape: Callable[[], Awaitable[bytes]]
) -> None:
    head = b""
    with trio.move_on_after(REQUEST_TIMEOUT_S):
        while b"\r\n\r\n" not in head and b"\n\n" not in head:
            if len(head) > MAX_REQUEST_BYTES:
                await _respond(stream, 431, b"request head too large\n")
                return
            data = await stream.receive_some(4096)
            if not data:
                return
            head += data
    if b"\n" not in head:
        return  # timed out before a request line
    parts = head.split(b"\n", 1)[0].decode("latin-1").strip().split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        await _respond(stream, 400, b"bad request\n")
        return
    method, target = parts[0], parts[1]
    path = target.split("?", 1)[0]
    if path not in ("/metrics", "/"):
        await _respond(stream, 404, b"not found; try /metrics\n")
        return
    if method not in ("GET", "HEAD"):
        await _respond(stream, 405, b"method not allowed\n", extra=b"Allow: GET, HEAD\r\n")
        return
    if path == "/":
        body = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
        await _respond(stream, 200, body, "text/html; charset=utf-8", head_only=method == "HEAD")
        return
    await _respond(stream, 200, await scrape(), CONTENT_TYPE, head_only=method == "HEAD")


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
}


async def _respond(
    stream: trio.SocketStream,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    head_only: bool = False,
    extra: bytes = b"",
) -> None:
    header = (
        f"HTTP/1.0 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
    ).encode("latin-1")
    await stream.send_all(header + extra + b"\r\n" + (b"" if head_only else body))
