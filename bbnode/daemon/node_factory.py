"""Build the daemon's Node from the config: engine settings, built-in components, restore.

Kept apart from the supervisor so the mapping config → engine is one readable table and
can be tested without sockets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from bbnode.config import Config
from bbnode.daemon.policy import NetworkPolicy
from bbnode.engine.component import Component
from bbnode.engine.errors import EngineError
from bbnode.engine.node import Node, NodeConfig
from bbnode.ids import Address, PeerId
from bbnode.protocols.heartbeat import Heartbeat
from bbnode.protocols.peer_exchange import PeerExchange
from bbnode.protocols.pubsub import Pubsub

__all__ = ["BuiltNode", "build_components", "build_node", "network_policy", "node_config"]

log = structlog.get_logger(component="node_factory")

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000


@dataclass
class BuiltNode:
    """The Node plus what the supervisor needs to start it."""

    node: Node
    module_names: list[str]
    #: Components whose ``start`` op must be invoked at every daemon start.
    start_ops: list[str]
    static_addresses: dict[PeerId, list[Address]] = field(default_factory=dict)
    #: Bootstrap addresses without /p2p: the daemon keeps links to them (see `bootstrap`).
    bootstrap_links: list[Address] = field(default_factory=list)
    #: True when a snapshot existed but could not be restored (fresh start instead).
    failed: bool = False


def network_policy(cfg: Config) -> NetworkPolicy:
    """The ``[network]`` admission policy."""
    return NetworkPolicy(
        allow_cidrs=tuple(cfg.network.allow_cidrs),
        deny_cidrs=tuple(cfg.network.deny_cidrs),
        max_connections=cfg.network.max_connections,
        max_connections_per_ip=cfg.network.max_connections_per_ip,
    )


def node_config(cfg: Config) -> NodeConfig:
    """Engine settings from ``[peers]`` and the heartbeat timeout."""
    return NodeConfig(
        failure_threshold=cfg.peers.failure_threshold,
        backoff_base_ns=cfg.peers.backoff_base_ms * _NS_PER_MS,
        backoff_max_ns=cfg.peers.backoff_max_ms * _NS_PER_MS,
        max_input_bytes=min(cfg.network.max_frame_bytes, 16 * 1024 * 1024),
        blocklist=frozenset(cfg.peers.block),
        allowlist=frozenset(cfg.peers.allow) if cfg.peers.allow else None,
    )


def build_components(cfg: Config, peer: PeerId, listen: Sequence[Address]) -> list[Component]:
    """The built-in components ``[protocols]`` enables."""
    out: list[Component] = []
    hb = cfg.protocols.heartbeat
    if hb.enabled:
        out.append(Heartbeat(int(hb.interval_s * _NS_PER_S), int(hb.timeout_s * _NS_PER_S)))
    pex = cfg.protocols.peer_exchange
    if pex.enabled:
        out.append(PeerExchange(peer, listen, interval_ns=int(pex.interval_s * _NS_PER_S)))
    if cfg.protocols.pubsub.enabled:
        out.append(Pubsub())
    return out


def build_node(
    cfg: Config,
    peer: PeerId,
    listen: Sequence[Address],
    snapshot: Any | None,
    extra: Sequence[Component] = (),
) -> BuiltNode:
    """Restore from ``snapshot`` when it fits, else a fresh Node; bootstrap peers added.

    ``extra`` components are installed after the built-ins (restored by name, too).
    """
    components = build_components(cfg, peer, listen) + list(extra)
    failed = False
    node: Node | None = None
    if snapshot is not None:
        try:
            node = Node.from_snapshot(
                snapshot,
                config=node_config(cfg),
                components=components,
                peer_id=peer,
                addresses=tuple(listen),
            )
            log.info("snapshot_restored", incarnation=getattr(snapshot, "incarnation", None))
        except EngineError as exc:
            failed = True
            log.error("snapshot_restore_failed", reason=str(exc))
            components = build_components(cfg, peer, listen) + list(extra)
    if node is None:
        node = Node(peer, addresses=tuple(listen), config=node_config(cfg))
        for component in components:
            node.install(component)
    static: dict[PeerId, list[Address]] = {}
    links: list[Address] = []
    for address in cfg.node.bootstrap:
        target = address.peer_id
        if target is None:
            links.append(address)
            continue
        if target == peer:
            continue
        static.setdefault(target, []).append(address)
    for target, addresses in static.items():
        node.add_peer(target, addresses)
    names = [c.name for c in components]
    starts = [c.name for c in components if "start" in c.OPS]
    return BuiltNode(node, names, starts, static, links, failed)
