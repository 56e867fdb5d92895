"""A readable, JSON-able summary of a `NodeSnapshot` (for `bbnode snapshot inspect`).

Pure: takes a decoded snapshot, returns plain dicts/lists/str/int. PeerIds and addresses are
shown in their text forms. Field names are the snapshot schema's (SPEC §3.7, seed
`transient_snapshot.rs`); rows may be objects with those attributes, mappings with those
keys, or positional rows in the seed's field order, so the summary does not depend on which
of those the engine chose for each table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bbnode.ids import Address, IdError, PeerId

__all__ = ["format_summary", "summarize_snapshot"]


def _field(row: Any, name: str, position: int | None = None, default: Any = None) -> Any:
    if hasattr(row, name):
        return getattr(row, name)
    if isinstance(row, Mapping):
        return row.get(name, default)
    if position is not None and isinstance(row, Sequence) and not isinstance(row, str | bytes):
        return row[position] if position < len(row) else default
    return default


def _peer(value: Any) -> str:
    if isinstance(value, PeerId):
        return str(value)
    if isinstance(value, bytes | bytearray):
        try:
            return str(PeerId.from_bytes(bytes(value)))
        except IdError:
            return f"<invalid peer id {bytes(value).hex()}>"
    return str(value)


def _address(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        try:
            return str(Address.from_bytes(bytes(value)))
        except IdError:
            return f"<invalid address {bytes(value).hex()}>"
    return str(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _ban(row: Any) -> dict[str, Any]:
    if isinstance(row, bytes | bytearray | PeerId):  # the seed's plain list of peer ids
        return {"peer": _peer(row), "until_ns": None, "source": None}
    return {
        "peer": _peer(_field(row, "peer", 0)),
        "until_ns": _int_or_none(_field(row, "until_ns", 1)),
        "source": _field(row, "source", 2),
    }


def summarize_snapshot(snapshot: Any) -> dict[str, Any]:
    """Summarise a decoded `NodeSnapshot`: identity, peers, bans, backoff, outbound, counters."""
    framework = snapshot.transient.framework
    governor = framework.peer_governor
    peer_id_bytes = _field(framework, "peer_id_bytes")
    allowlist = _field(governor, "allowlist", 1)
    pending = list(_field(framework, "pending_outbound", default=[]) or [])
    pending_bytes = [_field(entry, "envelope_bytes", 0, b"") or b"" for entry in pending]
    return {
        "incarnation": int(snapshot.incarnation),
        "spec_version": int(framework.spec_version),
        "peer_id": _peer(peer_id_bytes) if peer_id_bytes else None,
        "next_command_id": _int_or_none(_field(framework, "next_command_id")),
        "next_exec_id": _int_or_none(_field(framework, "next_exec_id")),
        "peers": [
            {
                "peer": _peer(_field(row, "peer_id", 0)),
                "addresses": [_address(a) for a in _field(row, "addresses", 1, []) or []],
                "ref_count": int(_field(row, "ref_count", 2, 0) or 0),
            }
            for row in framework.address_book
        ],
        "failure_threshold": _int_or_none(_field(governor, "failure_threshold", 3)),
        "health": [
            {
                "peer": _peer(_field(row, "peer", 0)),
                "consecutive_failures": int(_field(row, "consecutive_failures", 1, 0)),
                "last_event_ns": int(_field(row, "last_event_ns", 2, 0)),
                "down": bool(_field(row, "down", 3, False)),
            }
            for row in _field(governor, "health", 2, []) or []
        ],
        # bbnode's `block_entries` carry expiry and source; the seed's `blocklist` is ids only.
        "bans": [
            _ban(row)
            for row in _field(governor, "block_entries", 4)
            or _field(governor, "blocklist", 0, [])
            or []
        ],
        "allowlist": None if allowlist is None else [_peer(p) for p in allowlist],
        "backoff": [
            {
                "peer": _peer(_field(row, "peer", 0)),
                "attempts": int(_field(row, "attempts", 1, 0)),
                "last_attempt_ns": int(_field(row, "last_attempt_ns", 2, 0)),
                "next_retry_ns": int(_field(row, "next_retry_ns", 3, 0)),
            }
            for row in framework.backoff_table
        ],
        "pending_outbound": {
            "count": len(pending),
            "bytes": sum(len(data) for data in pending_bytes),
        },
        "counters": {str(k): int(v) for k, v in sorted(dict(framework.counters).items())},
    }


def _rows(title: str, rows: list[str], limit: int) -> list[str]:
    lines = [f"{title} ({len(rows)})"]
    lines += [f"  {row}" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"  ... and {len(rows) - limit} more (use --limit or --json)")
    return lines


def format_summary(summary: Mapping[str, Any], limit: int = 20) -> str:
    """Render `summarize_snapshot` output for a terminal; lists show at most `limit` rows."""
    lines = [
        f"incarnation      {summary['incarnation']}",
        f"spec_version     {summary['spec_version']}",
        f"peer id          {summary['peer_id'] or '(none)'}",
        f"next ids         command {summary['next_command_id']}, exec {summary['next_exec_id']}",
    ]
    lines += _rows(
        "peers",
        [
            f"{p['peer']}  refs={p['ref_count']}  {' '.join(p['addresses']) or '(no address)'}"
            for p in summary["peers"]
        ],
        limit,
    )
    lines += _rows(
        "bans",
        [
            f"{b['peer']}  "
            + ("permanent" if b["until_ns"] is None else f"until_ns={b['until_ns']}")
            + (f"  source={b['source']}" if b["source"] else "")
            for b in summary["bans"]
        ],
        limit,
    )
    allow = summary["allowlist"]
    lines.append("allowlist        " + ("(open)" if allow is None else f"{len(allow)} peers"))
    lines += _rows(
        "health",
        [
            f"{h['peer']}  failures={h['consecutive_failures']}  "
            f"last_event_ns={h['last_event_ns']}  {'DOWN' if h['down'] else 'up'}"
            for h in summary["health"]
        ],
        limit,
    )
    lines += _rows(
        "backoff",
        [
            f"{b['peer']}  attempts={b['attempts']}  next_retry_ns={b['next_retry_ns']}"
            for b in summary["backoff"]
        ],
        limit,
    )
    pending = summary["pending_outbound"]
    lines.append(f"pending outbound {pending['count']} envelopes, {pending['bytes']} bytes")
    lines += _rows("counters", [f"{k} = {v}" for k, v in summary["counters"].items()], limit)
    return "\n".join(lines)
