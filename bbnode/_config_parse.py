"""Turn a parsed TOML document into a `Config`, collecting every problem on the way.

The schema is the `TABLES` map below: table path → (section dataclass, key → parser). Walking
the document checks unknown tables and keys (with a difflib suggestion, or the table a
misplaced key belongs to), runs each key's parser, then applies cross-field rules and
resolves paths. Nothing raises until the end, so one run reports every mistake.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from bbnode._config_schema import (
    Config,
    ControlSection,
    HeartbeatSection,
    LogSection,
    MetricsSection,
    NetworkSection,
    NodeSection,
    PeerExchangeSection,
    PeersSection,
    ProtocolsSection,
    PubsubSection,
    SnapshotSection,
)
from bbnode._config_values import (
    INVALID,
    Parser,
    Problems,
    address_list,
    boolean,
    choice,
    cidr_list,
    host_port,
    integer,
    path,
    peer_id_list,
    seconds,
    toml_type_name,
)
from bbnode.logs import LOG_FORMATS, LOG_LEVELS

__all__ = ["TABLES", "build_config"]

# Linux sun_path is 108 bytes including the terminating NUL.
_MAX_UNIX_SOCKET_PATH: Final = 107

TABLES: Final[Mapping[str, tuple[type, Mapping[str, Parser]]]] = {
    "node": (
        NodeSection,
        {
            "key_file": path,
            "state_dir": path,
            "listen": address_list(allow_peer=False),
            "bootstrap": address_list(allow_peer=True),
            "shutdown_grace_s": seconds,
        },
    ),
    "peers": (
        PeersSection,
        {
            "allow": peer_id_list,
            "block": peer_id_list,
            "failure_threshold": integer(1),
            "backoff_base_ms": integer(1, unit="ms"),
            "backoff_max_ms": integer(1, unit="ms"),
        },
    ),
    "network": (
        NetworkSection,
        {
            "allow_cidrs": cidr_list,
            "deny_cidrs": cidr_list,
            "max_connections": integer(1),
            "max_connections_per_ip": integer(1),
            "handshake_timeout_s": seconds,
            "idle_timeout_s": seconds,
            # A frame must hold at least a small envelope; 1 GiB keeps a typo from letting a
            # peer make us buffer the address space.
            "max_frame_bytes": integer(1024, 1 << 30, unit="bytes"),
        },
    ),
    "snapshot": (
        SnapshotSection,
        {"interval_s": seconds, "keep": integer(1), "directory": path},
    ),
    "control": (ControlSection, {"socket": path}),
    "metrics": (MetricsSection, {"listen": host_port}),
    "log": (LogSection, {"level": choice(tuple(LOG_LEVELS)), "format": choice(LOG_FORMATS)}),
    "protocols.heartbeat": (
        HeartbeatSection,
        {"enabled": boolean, "interval_s": seconds, "timeout_s": seconds},
    ),
    "protocols.peer_exchange": (PeerExchangeSection, {"enabled": boolean, "interval_s": seconds}),
    "protocols.pubsub": (PubsubSection, {"enabled": boolean}),
}
# Tables that only hold other tables.
_PARENTS: Final = {"protocols": ("heartbeat", "peer_exchange", "pubsub")}


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_key(table: str, key: str, known: Mapping[str, Parser], problems: Problems) -> None:
    hint = _suggest(key, list(known))
    if not hint:
        homes = [name for name, (_, keys) in TABLES.items() if key in keys and name != table]
        if homes:
            hint = f" (it belongs in [{homes[0]}])"
    valid = ", ".join(known)
    problems.add(f"{table}.{key}", f"unknown key{hint}; valid keys in [{table}]: {valid}")


def _section(table: str, raw: object, problems: Problems) -> Any:
    cls, parsers = TABLES[table]
    if not isinstance(raw, dict):
        problems.add(table, f"expected a table, got {toml_type_name(raw)}")
        return cls()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        parser = parsers.get(key)
        if parser is None:
            _unknown_key(table, key, parsers, problems)
            continue
        parsed = parser(value, f"{table}.{key}", problems)
        if parsed is not INVALID:
            values[key] = parsed
    return cls(**values)


def _protocols(raw: object, problems: Problems) -> ProtocolsSection:
    if not isinstance(raw, dict):
        problems.add("protocols", f"expected a table, got {toml_type_name(raw)}")
        return ProtocolsSection()
    sections: dict[str, Any] = {}
    children = list(_PARENTS["protocols"])
    for name, value in raw.items():
        if name not in children:
            hint = _suggest(name, children)
            problems.add(
                f"protocols.{name}",
                f"unknown protocol table{hint}; valid: {', '.join(children)}",
            )
            continue
        sections[name] = _section(f"protocols.{name}", value, problems)
    return ProtocolsSection(**sections)


def _check_cross_fields(config: Config, problems: Problems) -> None:
    peers, network, heartbeat = config.peers, config.network, config.protocols.heartbeat
    if peers.backoff_max_ms < peers.backoff_base_ms:
        problems.add(
            "peers.backoff_max_ms",
            f"must be at least backoff_base_ms ({peers.backoff_base_ms}), "
            f"got {peers.backoff_max_ms}",
        )
    if network.max_connections_per_ip > network.max_connections:
        problems.add(
            "network.max_connections_per_ip",
            f"must not exceed max_connections ({network.max_connections}), "
            f"got {network.max_connections_per_ip}",
        )
    if heartbeat.timeout_s >= heartbeat.interval_s:
        problems.add(
            "protocols.heartbeat.timeout_s",
            f"must be less than interval_s ({heartbeat.interval_s:g}), got {heartbeat.timeout_s:g}",
        )


def _resolve_paths(config: Config, base_dir: Path) -> Config:
    state_dir = base_dir / config.node.state_dir
    return replace(
        config,
        node=replace(config.node, state_dir=state_dir, key_file=state_dir / config.node.key_file),
        snapshot=replace(config.snapshot, directory=state_dir / config.snapshot.directory),
        control=replace(config.control, socket=state_dir / config.control.socket),
    )


def _check_paths(config: Config, problems: Problems) -> None:
    state_dir, key_file = config.node.state_dir, config.node.key_file
    if state_dir.exists() and not state_dir.is_dir():
        problems.add("node.state_dir", f"{state_dir} exists and is not a directory")
    if key_file.is_dir():
        problems.add("node.key_file", f"{key_file} is a directory, not a key file")
    elif key_file.exists() and not os.access(key_file, os.R_OK):
        problems.add("node.key_file", f"{key_file} is not readable by this user")
    elif (
        not key_file.exists()
        and not key_file.parent.is_relative_to(state_dir)  # the daemon creates state_dir
        and not key_file.parent.is_dir()
    ):
        problems.add(
            "node.key_file",
            f"directory {key_file.parent} does not exist, so the key cannot be created",
        )
    socket_bytes = len(os.fsencode(config.control.socket))
    if socket_bytes > _MAX_UNIX_SOCKET_PATH:
        problems.add(
            "control.socket",
            f"{config.control.socket} is {socket_bytes} bytes; Unix socket paths are "
            f"limited to {_MAX_UNIX_SOCKET_PATH} (use a shorter state_dir or socket path)",
        )


def build_config(
    document: Mapping[str, Any], problems: Problems, base_dir: Path, source: Path | None
) -> Config:
    """Build a `Config` from a TOML document; problems are appended to `problems`.

    Relative `state_dir` is resolved against `base_dir`; relative `key_file`,
    `control.socket` and `snapshot.directory` against the resolved `state_dir`.
    """
    sections: dict[str, Any] = {}
    top = [name for name in TABLES if "." not in name] + list(_PARENTS)
    for name, value in document.items():
        if name == "protocols":
            sections[name] = _protocols(value, problems)
        elif name in TABLES:
            sections[name] = _section(name, value, problems)
        else:
            kind = "table" if isinstance(value, dict) else "top-level key"
            problems.add(name, f"unknown {kind}{_suggest(name, top)}; valid: {', '.join(top)}")
    config = Config(**sections, source=source)
    _check_cross_fields(config, problems)
    config = _resolve_paths(config, base_dir)
    _check_paths(config, problems)
    return config
