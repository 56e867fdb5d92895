"""The snapshot schema (`NodeSnapshot`) and its msgpack encoding (SPEC §3.7).

Field names are the seed's (`seeds/transient_snapshot.rs`): `NodeSnapshot{incarnation,
config, components, transient}`, `TransientSnapshot{frontier, slot_table, pending_async,
execution_state, framework, bus, ingress, wire_states, pending_completions}` and
`FrameworkSnapshot{counters, fired_phases, address_book, peer_governor, backoff_table,
pending_outbound, peer_id_bytes, next_command_id, next_exec_id, spec_version}`. Fields bbnode
adds for the full in-flight snapshot (timers, dedup window, in-flight requests, held
envelopes, RNG state, engine clock, ...) are *new* fields with defaults, like the seed's
`#[serde(default)]` ones; no seed field is renamed.

Encoding: msgpack. Structs are maps keyed by field name, so a missing (older) field takes its
default and an unknown (newer) one is ignored. Per-peer rows (address book, health, backoff,
block entries) are compact arrays in the seed's field order, held as `NamedTuple`s in memory
(defined in `bbnode.engine.framework.rows`: the framework tables store these very rows, so
capture and restore hand them over instead of converting 100 000 of them). `slot_table` is a list of
`[site, exec_id, bytes | None]` (msgpack maps cannot key by tuple). Engine values inside
(op inputs, timer payloads) use the ext types of `bbnode.engine._codec` (PeerId = 1,
Address = 2, Correlation = 3). `decode` raises `SnapshotDecodeError` naming the field for
malformed input and `SpecVersionMismatch` for another `spec_version`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from itertools import repeat
from typing import Any, Final, TypeVar

import msgpack

from bbnode.engine._codec import pack, unpack
from bbnode.engine._gcpause import gc_paused
from bbnode.engine.errors import SnapshotDecodeError, SpecVersionMismatch
from bbnode.engine.framework.rows import (
    AddressBookEntrySnapshot,
    BackoffEntry,
    BlockEntrySnapshot,
    HealthEntry,
)
from bbnode.ids import Address, IdError

__all__ = [
    "CURRENT_SNAPSHOT_SPEC_VERSION",
    "AddressBookEntrySnapshot",
    "BackoffEntry",
    "BlockEntrySnapshot",
    "ComponentSnapshot",
    "ExecutionStateSnapshot",
    "FrameworkSnapshot",
    "HealthEntry",
    "IngressEventSnapshot",
    "NodeSnapshot",
    "PeerGovernorSnapshot",
    "PendingAsyncSnapshot",
    "PendingCompletionSnapshot",
    "PendingOutboundEntry",
    "TransientSnapshot",
    "TypedBusSnapshot",
]

#: Snapshot schema version this build restores (seed constant).
CURRENT_SNAPSHOT_SPEC_VERSION: Final = 1

#: An ingress event in the seed's externally tagged form, e.g. ``{"TimerMatured": {...}}``.
IngressEventSnapshot = dict[str, Any]


# -- structs ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PeerGovernorSnapshot:
    """Seed `PeerGovernorSnapshot`, plus `block_entries` (expiry and source of each ban)."""

    blocklist: list[bytes] = field(default_factory=list)
    allowlist: list[bytes] | None = None
    health: list[HealthEntry] = field(default_factory=list)
    failure_threshold: int = 5
    block_entries: list[BlockEntrySnapshot] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PendingOutboundEntry:
    """An envelope handed back by the host, replayed as `SendEnvelope(redelivered=True)`.

    `peer` (bbnode) is the destination; the seed infers it from the envelope.
    """

    envelope_bytes: bytes
    redelivered: bool
    peer: bytes = b""


@dataclass(frozen=True, slots=True)
class TypedBusSnapshot:
    """Seed bus snapshot plus `queued`: `[topic, module, value_bytes]` not yet routed."""

    event_subscriptions: dict[str, list[int]] = field(default_factory=dict)
    queued: list[list[Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PendingCompletionSnapshot:
    """A completion waiting for phase 5 (`failure` set for `Node.fail`)."""

    cmd_id: int
    results: list[tuple[str, bytes]] = field(default_factory=list)
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class PendingAsyncSnapshot:
    """An op suspended on a command; `output_sites` holds the resume op's NodeSiteId."""

    op_ref: int
    exec_id: int
    output_sites: list[int] = field(default_factory=list)
    deadline_ns: int | None = None


@dataclass(frozen=True, slots=True)
class ExecutionStateSnapshot:
    """Seed `ExecutionStateSnapshot` plus lineage (`parent`), `inbound` context and
    `finished` (dropped at the next cycle's phase 0).

    `inbound` = `[src_peer, wire_req_id, arrival_ns, remaining_deadline_ns, reply_suffix]`.
    """

    outputs_written: int = 0
    parent: int = 0
    inbound: list[Any] | None = None
    finished: bool = False


@dataclass(frozen=True, slots=True)
class FrameworkSnapshot:
    """Seed `FrameworkSnapshot` plus bbnode's in-flight framework state (new fields)."""

    counters: dict[str, int] = field(default_factory=dict)
    fired_phases: list[str] = field(default_factory=list)
    address_book: list[AddressBookEntrySnapshot] = field(default_factory=list)
    peer_governor: PeerGovernorSnapshot = field(default_factory=PeerGovernorSnapshot)
    backoff_table: list[BackoffEntry] = field(default_factory=list)
    pending_outbound: list[PendingOutboundEntry] = field(default_factory=list)
    peer_id_bytes: bytes = b""
    next_command_id: int = 0
    next_exec_id: int = 0
    spec_version: int = CURRENT_SNAPSHOT_SPEC_VERSION
    # -- bbnode additions --
    now_ns: int = 0
    rng_state: list[Any] | None = None
    timers: list[list[Any]] = field(default_factory=list)  # [handle, at_ns, payload bytes]
    next_timer_handle: int = 1
    intervals: list[list[int]] = field(default_factory=list)  # [timer id, current handle]
    inbound_dedup: list[bytes] = field(default_factory=list)
    requests: dict[str, Any] = field(default_factory=dict)  # RequestTracker.export_state()
    rtt: list[list[Any]] = field(default_factory=list)
    held_outbound: list[list[Any]] = field(default_factory=list)  # [peer, timer, [[env, op, exec]]]
    held_dropped: int = 0
    src_address_cache: list[list[Any]] = field(default_factory=list)  # [peer, [address bytes]]


@dataclass(frozen=True, slots=True)
class TransientSnapshot:
    """Seed `TransientSnapshot`, populated (bbnode: the full in-flight state)."""

    frontier: list[tuple[int, int]] = field(default_factory=list)
    slot_table: list[list[Any]] = field(default_factory=list)
    pending_async: dict[int, PendingAsyncSnapshot] = field(default_factory=dict)
    execution_state: dict[int, ExecutionStateSnapshot] = field(default_factory=dict)
    framework: FrameworkSnapshot = field(default_factory=FrameworkSnapshot)
    bus: TypedBusSnapshot = field(default_factory=TypedBusSnapshot)
    ingress: list[IngressEventSnapshot] = field(default_factory=list)
    wire_states: dict[int, bytes] = field(default_factory=dict)
    pending_completions: list[PendingCompletionSnapshot] = field(default_factory=list)
    # -- bbnode additions --
    ingress_sizes: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ComponentSnapshot:
    """One installed component: `state` is the msgpack of its `serialize()`."""

    name: str
    type_name: str
    ref: int
    state: bytes


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """Everything a Node needs to continue: see the module docstring."""

    incarnation: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    components: list[ComponentSnapshot] = field(default_factory=list)
    transient: TransientSnapshot = field(default_factory=TransientSnapshot)
    addresses: list[bytes] = field(default_factory=list)  # bbnode: the node's own addresses

    def node_addresses(self) -> list[Address]:
        """The node's own addresses, parsed."""
        return [Address.from_bytes(a) for a in self.addresses]

    def encode(self) -> bytes:
        """msgpack bytes of this snapshot."""
        with gc_paused():
            return pack(_to_wire(self))

    @classmethod
    def decode(cls, data: bytes) -> NodeSnapshot:
        """Parse `encode()` output; `SnapshotDecodeError` / `SpecVersionMismatch`."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SnapshotDecodeError(f"snapshot: expected bytes, got {type(data).__name__}")
        with gc_paused(promote=True):
            try:
                raw = unpack(bytes(data))
            except (ValueError, TypeError, IdError, msgpack.UnpackException) as exc:
                raise SnapshotDecodeError(f"snapshot: not valid msgpack: {exc}") from None
            # The version is checked before the structure: a future layout must be reported as
            # a version mismatch, not as whatever field it happens to break first.
            version = _peek_version(raw)
            if version != CURRENT_SNAPSHOT_SPEC_VERSION:
                raise SpecVersionMismatch(version, CURRENT_SNAPSHOT_SPEC_VERSION)
            return _decode_node(raw)


def _peek_version(raw: Any) -> int:
    framework = _map("snapshot", raw).get("transient", {})
    framework = _map("snapshot.transient", framework).get("framework", {})
    framework = _map("snapshot.transient.framework", framework)
    version = framework.get("spec_version", CURRENT_SNAPSHOT_SPEC_VERSION)
    return _int("snapshot.transient.framework.spec_version", version)


# -- encoding --------------------------------------------------------------------------------------
def _to_wire(obj: Any) -> Any:
    """Dataclasses become maps (recursively); NamedTuples and lists pass as arrays."""
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _to_wire(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {k: _to_wire(v) for k, v in obj.items()}
    if isinstance(obj, list) and obj and hasattr(obj[0], "__dataclass_fields__"):
        return [_to_wire(v) for v in obj]
    return obj


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
    """Per-peer rows as NamedTuples; only the arity is checked here.

    The field values are checked once, by the restore (`AddressBook.restore_state` and
    friends check whole columns at once and adopt the rows as they are). When every row is a
    list of the right length, `tuple.__new__` mapped in C builds them (no Python call per
    row); otherwise `_make` row by row says what is wrong.
    """
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


def _any(where: str, raw: Any) -> Any:
    return raw


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


def _decode_node(raw: Any) -> NodeSnapshot:
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
