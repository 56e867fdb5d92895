"""The typed configuration object: one frozen dataclass per TOML table (SPEC §7).

Every field has a default, and that default *is* the documentation of the schema: a config
file only needs the keys it changes. Units are in the names (`_s` seconds, `_ms`
milliseconds, `_bytes`). Paths held here are absolute: `bbnode.config` resolves relative
paths while parsing (see `load_config`), so code that uses a `Config` never guesses a base.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from bbnode.ids import Address, PeerId

__all__ = [
    "DEFAULT_LISTEN",
    "Config",
    "ControlSection",
    "HeartbeatSection",
    "IpNetwork",
    "LogSection",
    "MetricsSection",
    "NetworkSection",
    "NodeSection",
    "PeerExchangeSection",
    "PeersSection",
    "ProtocolsSection",
    "PubsubSection",
    "SnapshotSection",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# SPEC §7: with no config file a node listens on loopback only, never on all interfaces.
DEFAULT_LISTEN = Address.from_string("/ip4/127.0.0.1/tcp/7400")


@dataclass(frozen=True, slots=True)
class NodeSection:
    """`[node]`: identity, state directory, addresses."""

    key_file: Path = Path("identity.key")
    """Identity key (libp2p PrivateKey protobuf, mode 0600), created on first start.
    Relative paths are resolved against `state_dir`."""
    state_dir: Path = Path(".bbnode")
    """Snapshots, key and control socket live here. Relative paths are resolved against the
    config file's directory, or the working directory when there is no file."""
    listen: tuple[Address, ...] = (DEFAULT_LISTEN,)
    """TCP multiaddrs to listen on (no `/p2p`: the identity comes from `key_file`)."""
    bootstrap: tuple[Address, ...] = ()
    """Peers dialled at start. `/p2p/<id>` is optional: without it the peer's identity is
    learned (and authenticated) in the Noise handshake instead of checked against a pin."""
    shutdown_grace_s: float = 10.0
    """How long a SIGTERM/SIGINT shutdown waits for in-flight work before closing."""


@dataclass(frozen=True, slots=True)
class PeersSection:
    """`[peers]`: PeerId policy and failure handling (the PeerGovernor and BackoffTable)."""

    allow: tuple[PeerId, ...] = ()
    """If non-empty, only these peers may talk to us (an allowlist). Empty = open."""
    block: tuple[PeerId, ...] = ()
    """Peers always refused. Replaced on reload; runtime bans (`ctl block`) are kept."""
    failure_threshold: int = 5
    """Consecutive failures before a peer is marked down (upstream default 5, min 1)."""
    backoff_base_ms: int = 10
    """First redial delay; doubles per failure (upstream 10 ms)."""
    backoff_max_ms: int = 60_000
    """Cap on the redial delay (upstream 60 s)."""


@dataclass(frozen=True, slots=True)
class NetworkSection:
    """`[network]`: connection limits and IP policy, checked before the handshake."""

    allow_cidrs: tuple[IpNetwork, ...] = ()
    """If non-empty, only these networks may connect. Empty = any address."""
    deny_cidrs: tuple[IpNetwork, ...] = ()
    """Networks always refused (checked after `allow_cidrs`)."""
    max_connections: int = 256
    """Total open connections, inbound and outbound."""
    max_connections_per_ip: int = 8
    """Open connections from one remote IP."""
    handshake_timeout_s: float = 10.0
    """A Noise handshake not finished in this time is dropped."""
    idle_timeout_s: float = 300.0
    """A connection with no traffic for this long is closed."""
    max_frame_bytes: int = 16 * 1024 * 1024
    """Largest bbnode frame accepted or sent (SPEC §4 default 16 MiB)."""


@dataclass(frozen=True, slots=True)
class SnapshotSection:
    """`[snapshot]`: periodic checkpoints (SPEC §5)."""

    interval_s: float = 60.0
    """Seconds between periodic checkpoints (policy changes and shutdown also checkpoint)."""
    keep: int = 2
    """Generations kept on disk."""
    directory: Path = Path("snapshots")
    """Where generations are written; relative paths are resolved against `state_dir`."""


@dataclass(frozen=True, slots=True)
class ControlSection:
    """`[control]`: the local control socket used by `bbnode ctl`."""

    socket: Path = Path("control.sock")
    """Unix socket path (mode 0660); relative paths are resolved against `state_dir`."""


@dataclass(frozen=True, slots=True)
class MetricsSection:
    """`[metrics]`: the Prometheus endpoint."""

    listen: tuple[str, int] | None = None
    """`(host, port)` to serve `/metrics` on, from `"host:port"` (`"[::1]:9464"` for IPv6);
    None (the empty string in TOML) turns metrics off."""


@dataclass(frozen=True, slots=True)
class LogSection:
    """`[log]`: structured logging."""

    level: str = "info"
    """One of debug, info, warning, error, critical."""
    format: str = "auto"
    """json, console, or auto (console on a TTY, JSON otherwise)."""


@dataclass(frozen=True, slots=True)
class HeartbeatSection:
    """`[protocols.heartbeat]`: liveness pings to connected peers."""

    enabled: bool = True
    """Run the heartbeat component."""
    interval_s: float = 5.0
    """Seconds between pings to each peer."""
    timeout_s: float = 2.0
    """A ping unanswered this long counts as a failure; must be below `interval_s`."""


@dataclass(frozen=True, slots=True)
class PeerExchangeSection:
    """`[protocols.peer_exchange]`: learning peers' addresses from neighbours."""

    enabled: bool = True
    """Run the peer-exchange component."""
    interval_s: float = 30.0
    """Seconds between exchanges."""


@dataclass(frozen=True, slots=True)
class PubsubSection:
    """`[protocols.pubsub]`: topic publish/subscribe between nodes."""

    enabled: bool = True
    """Run the pubsub component."""


@dataclass(frozen=True, slots=True)
class ProtocolsSection:
    """`[protocols.*]`: the built-in components."""

    heartbeat: HeartbeatSection = field(default_factory=HeartbeatSection)
    """`[protocols.heartbeat]`."""
    peer_exchange: PeerExchangeSection = field(default_factory=PeerExchangeSection)
    """`[protocols.peer_exchange]`."""
    pubsub: PubsubSection = field(default_factory=PubsubSection)
    """`[protocols.pubsub]`."""


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. Compare sections with `==` to see what a reload changed."""

    node: NodeSection = field(default_factory=NodeSection)
    """`[node]`."""
    peers: PeersSection = field(default_factory=PeersSection)
    """`[peers]`."""
    network: NetworkSection = field(default_factory=NetworkSection)
    """`[network]`."""
    snapshot: SnapshotSection = field(default_factory=SnapshotSection)
    """`[snapshot]`."""
    control: ControlSection = field(default_factory=ControlSection)
    """`[control]`."""
    metrics: MetricsSection = field(default_factory=MetricsSection)
    """`[metrics]`."""
    log: LogSection = field(default_factory=LogSection)
    """`[log]`."""
    protocols: ProtocolsSection = field(default_factory=ProtocolsSection)
    """`[protocols.*]`."""
    source: Path | None = None
    """The file this was loaded from (None for `default_config()` / `parse_config`)."""
