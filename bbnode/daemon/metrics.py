"""Prometheus metrics: what the daemon exports (served by :mod:`.metrics_http`).

Nothing here costs the hot path. :class:`DaemonCollector` reads state the daemon keeps
anyway (the :class:`~.counters.Counters` registry, the connection manager, the
checkpointer, the ingress channel) when Prometheus scrapes. Engine-owned state (peer
health, bans) is sampled through one :class:`~.driver.ControlCall`, so the Node is still
touched only by the driver; when the driver does not answer in time the scrape still
succeeds, without those series and with ``bbnode_driver_responsive 0``. The one thing fed
from a loop is the driver-turn histogram: two clock reads and a bisect per turn
(:class:`TurnHistogram`, lock-free: the daemon is one trio thread).

Every counter the daemon increments is exported: known names map to named metrics through
the tables below; an unknown name still appears as ``bbnode_daemon_events_total{event=...}``.
"""

from __future__ import annotations

import math
import platform
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
from prometheus_client import CollectorRegistry, ProcessCollector
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
    "TURN_BUCKETS_S",
    "DaemonCollector",
    "EngineSample",
    "MetricsState",
    "TurnHistogram",
    "build_registry",
    "sample_engine",
]

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
            "Wall time of one engine driver turn: apply the waiting inputs, tick due timers, "
            "poll, execute the steps.",
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
