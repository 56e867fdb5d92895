"""Decoding `NodeSnapshot` from its msgpack form, with errors naming the field.

Every struct is a map keyed by field name (a missing field takes its default, an unknown one
is ignored); every value is checked as it is converted, so malformed input raises
`SnapshotDecodeError` with the path of the field (``snapshot.transient.framework...``).
Per-peer row tables are only shaped into their row types here; the restore checks their
values, column-wise (see `_rows`).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any, Final, TypeVar

from bbnode.engine._snapshot_columns import decode_table
from bbnode.engine.errors import SnapshotDecodeError
from bbnode.engine.framework.rows import (
    AddressBookEntrySnapshot,
    BackoffEntry,
    BlockEntrySnapshot,
    HealthEntry,
)
from bbnode.engine.snapshot import (
    CURRENT_SNAPSHOT_SPEC_VERSION,
    ComponentSnapshot,
    ExecutionStateSnapshot,
    FrameworkSnapshot,
    NodeSnapshot,
    PeerGovernorSnapshot,
    PendingAsyncSnapshot,
    PendingCompletionSnapshot,
    PendingOutboundEntry,
    TransientSnapshot,
    TypedBusSnapshot,
)

__all__ = ["decode_node", "peek_version"]


def peek_version(raw: Any) -> int:
    """The `spec_version` in `raw`, checked before anything else is."""
    framework = _map("snapshot", raw).get("transient", {})
    framework = _map("snapshot.transient", framework).get("framework", {})
    framework = _map("snapshot.transient.framework", framework)
    version = framework.get("spec_version", CURRENT_SNAPSHOT_SPEC_VERSION)
    return _int("snapshot.transient.framework.spec_version", version)


# -- decoding --------------------------------------------------------------------------------------
T = TypeVar("T")


def _map(where: str, raw: Any) -> dict[Any, Any]:
    if not isinstance(raw, dict):
        raise SnapshotDecodeError(f"{where}: expected a map, got {type(raw).__name__}")
    return raw


def _list(where: str, raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise SnapshotDecodeError(f"{where}: expected an array, got {type(raw).__name__}")
    return raw


def _int(where: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise SnapshotDecodeError(f"{where}: expected an int, got {raw!r:.60}")
    return raw


def _opt_int(where: str, raw: Any) -> int | None:
    return None if raw is None else _int(where, raw)


def _bytes(where: str, raw: Any) -> bytes:
    if not isinstance(raw, bytes):
        raise SnapshotDecodeError(f"{where}: expected bytes, got {type(raw).__name__}")
    return raw


def _str(where: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise SnapshotDecodeError(f"{where}: expected a str, got {type(raw).__name__}")
    return raw


def _bool(where: str, raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise SnapshotDecodeError(f"{where}: expected a bool, got {raw!r:.60}")
    return raw


def _rows(where: str, raw: Any, row_type: Any) -> list[Any]:
    """Per-peer rows as NamedTuples; only the arity (or the columns' shape) is checked here.

    The field values are checked once, by the restore (`AddressBook.restore_state` and
    friends check whole columns at once and adopt the rows as they are). A columnar table (a
    map, what bbnode writes) is decoded by `decode_table`; an array of rows (the seed's form,
    and earlier builds') is built with `tuple.__new__` mapped in C when every row is a list
    of the right length (no Python call per row), otherwise `_make` row by row says what is
    wrong.
    """
    if isinstance(raw, dict):
        return decode_table(where, raw, row_type)
    rows = _list(where, raw)
    width = len(row_type._fields)
    if set(map(type, rows)) <= _LIST_ONLY and set(map(len, rows)) <= {width}:
        return list(map(tuple.__new__, repeat(row_type, len(rows)), rows))
    try:
        return list(map(row_type._make, rows))
    except TypeError as exc:
        raise SnapshotDecodeError(f"{where}: malformed row: {exc}") from None


_LIST_ONLY: Final = frozenset({list})


def _struct(
    cls: Callable[..., T], where: str, raw: Any, convert: dict[str, Callable[[str, Any], Any]]
) -> T:
    """Build `cls` from a map: known keys converted (named `where.key`), unknown keys ignored."""
    data = _map(where, raw)
    kwargs = {}
    for key, conv in convert.items():
        if key in data:
            kwargs[key] = conv(f"{where}.{key}", data[key])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise SnapshotDecodeError(f"{where}: {exc}") from None


_SCALAR_TYPES: dict[Any, type] = {}


def _list_of(conv: Callable[[str, Any], T]) -> Callable[[str, Any], list[T]]:
    scalar = _SCALAR_TYPES.get(conv)

    def run(where: str, raw: Any) -> list[T]:
        items = _list(where, raw)
        # Fast path for long scalar lists (e.g. 100 000 blocklist entries): one type scan,
        # and the per-item converter (which names the bad index) only when it fails.
        if scalar is not None and all(type(v) is scalar for v in items):
            return items
        return [conv(f"{where}[{i}]", v) for i, v in enumerate(items)]

    return run


_SCALAR_TYPES.update({_bytes: bytes, _str: str, _int: int})


def _opt(conv: Callable[[str, Any], T]) -> Callable[[str, Any], T | None]:
    def run(where: str, raw: Any) -> T | None:
        return None if raw is None else conv(where, raw)

    return run


def _governor(where: str, raw: Any) -> PeerGovernorSnapshot:
    return _struct(
        PeerGovernorSnapshot,
        where,
        raw,
        {
            "blocklist": _list_of(_bytes),
            "allowlist": _opt(_list_of(_bytes)),
            "health": lambda w, r: _rows(w, r, HealthEntry),
            "failure_threshold": _int,
            "block_entries": lambda w, r: _rows(w, r, BlockEntrySnapshot),
        },
    )


def _pending_outbound(where: str, raw: Any) -> PendingOutboundEntry:
    return _struct(
        PendingOutboundEntry,
        where,
        raw,
        {"envelope_bytes": _bytes, "redelivered": _bool, "peer": _bytes},
    )


def _framework(where: str, raw: Any) -> FrameworkSnapshot:
    return _struct(
        FrameworkSnapshot,
        where,
        raw,
        {
            "counters": lambda w, r: {
                _str(w, k): _int(f"{w}[{k}]", v) for k, v in _map(w, r).items()
            },
            "fired_phases": _list_of(_str),
            "address_book": lambda w, r: _rows(w, r, AddressBookEntrySnapshot),
            "peer_governor": _governor,
            "backoff_table": lambda w, r: _rows(w, r, BackoffEntry),
            "pending_outbound": _list_of(_pending_outbound),
            "peer_id_bytes": _bytes,
            "next_command_id": _int,
            "next_exec_id": _int,
            "spec_version": _int,
            "now_ns": _int,
            "rng_state": _opt(_list),
            "timers": _list_of(_list),
            "next_timer_handle": _int,
            "intervals": _list_of(_list),
            "inbound_dedup": _list_of(_bytes),
            "requests": _map,
            "rtt": _list_of(_list),
            "held_outbound": _list_of(_list),
            "held_dropped": _int,
            "src_address_cache": _list_of(_list),
        },
    )


def _int_keyed(conv: Callable[[str, Any], T]) -> Callable[[str, Any], dict[int, T]]:
    def run(where: str, raw: Any) -> dict[int, T]:
        return {
            _int(f"{where} key", k): conv(f"{where}[{k}]", v) for k, v in _map(where, raw).items()
        }

    return run


def _transient(where: str, raw: Any) -> TransientSnapshot:
    return _struct(
        TransientSnapshot,
        where,
        raw,
        {
            "frontier": lambda w, r: [tuple(p) for p in _list_of(_list)(w, r)],
            "slot_table": _list_of(_list),
            "pending_async": _int_keyed(
                lambda w, r: _struct(
                    PendingAsyncSnapshot,
                    w,
                    r,
                    {
                        "op_ref": _int,
                        "exec_id": _int,
                        "output_sites": _list_of(_int),
                        "deadline_ns": _opt_int,
                    },
                )
            ),
            "execution_state": _int_keyed(
                lambda w, r: _struct(
                    ExecutionStateSnapshot,
                    w,
                    r,
                    {
                        "outputs_written": _int,
                        "parent": _int,
                        "inbound": _opt(_list),
                        "finished": _bool,
                    },
                )
            ),
            "framework": _framework,
            "bus": lambda w, r: _struct(
                TypedBusSnapshot,
                w,
                r,
                {
                    "event_subscriptions": lambda w2, r2: {
                        _str(w2, k): _list_of(_int)(f"{w2}[{k}]", v)
                        for k, v in _map(w2, r2).items()
                    },
                    "queued": _list_of(_list),
                },
            ),
            "ingress": _list_of(_map),
            "wire_states": _int_keyed(_bytes),
            "pending_completions": _list_of(
                lambda w, r: _struct(
                    PendingCompletionSnapshot,
                    w,
                    r,
                    {
                        "cmd_id": _int,
                        "results": lambda w2, r2: [tuple(x) for x in _list_of(_list)(w2, r2)],
                        "failure": _opt(_str),
                    },
                )
            ),
            "ingress_sizes": _list_of(_int),
            "finished": _list_of(_int),
        },
    )


def _component(where: str, raw: Any) -> ComponentSnapshot:
    return _struct(
        ComponentSnapshot,
        where,
        raw,
        {"name": _str, "type_name": _str, "ref": _int, "state": _bytes},
    )


def decode_node(raw: Any) -> NodeSnapshot:
    """The `NodeSnapshot` in `raw` (unpacked msgpack); `SnapshotDecodeError` names the field."""
    return _struct(
        NodeSnapshot,
        "snapshot",
        raw,
        {
            "incarnation": _int,
            "config": _map,
            "components": _list_of(_component),
            "transient": _transient,
            "addresses": _list_of(_bytes),
        },
    )
