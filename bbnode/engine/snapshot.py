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
block entries) are held as `NamedTuple`s in memory (defined in `bbnode.engine.framework.rows`:
the framework tables store these very rows, so capture and restore hand them over instead of
converting 100 000 of them) and encoded as columns, one per row field (`_snapshot_columns`);
tables as arrays of rows in the seed's field order (what earlier builds wrote) still decode.
`slot_table` is a list of `[site, exec_id, bytes | None]` (msgpack maps cannot key by tuple).
Engine values inside (op inputs, timer payloads) use the ext types of `bbnode.engine._codec`
(PeerId = 1, Address = 2, Correlation = 3). `decode` (the decoders are in `_snapshot_decode`) raises
`SnapshotDecodeError` naming the field for malformed input and `SpecVersionMismatch` for
another `spec_version`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Final

import msgpack

from bbnode.engine._codec import pack, unpack
from bbnode.engine._gcpause import gc_paused
from bbnode.engine._snapshot_columns import TABLE_ROW_TYPES, encode_table
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
        # Imported here: the decoders build these very classes (an import cycle otherwise).
        from bbnode.engine._snapshot_decode import decode_node, peek_version

        with gc_paused(promote=True):
            try:
                raw = unpack(bytes(data))
            except (ValueError, TypeError, IdError, msgpack.UnpackException) as exc:
                raise SnapshotDecodeError(f"snapshot: not valid msgpack: {exc}") from None
            # The version is checked before the structure: a future layout must be reported as
            # a version mismatch, not as whatever field it happens to break first.
            version = peek_version(raw)
            if version != CURRENT_SNAPSHOT_SPEC_VERSION:
                raise SpecVersionMismatch(version, CURRENT_SNAPSHOT_SPEC_VERSION)
            return decode_node(raw)


# -- encoding --------------------------------------------------------------------------------------
def _to_wire(obj: Any) -> Any:
    """Dataclasses become maps (recursively); per-peer row tables become columnar maps (see
    `_snapshot_columns`); other NamedTuples and lists pass as arrays."""
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _to_wire(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {k: _to_wire(v) for k, v in obj.items()}
    if isinstance(obj, list) and obj:
        if type(obj[0]) in TABLE_ROW_TYPES:
            return encode_table(obj, type(obj[0]))
        if hasattr(obj[0], "__dataclass_fields__"):
            return [_to_wire(v) for v in obj]
    return obj
