"""`EngineStep` variants: everything the engine asks its host to do or know.

`Node.poll()` returns a `list[EngineStep]`. Steps are frozen, slotted dataclasses on one base
(as h11's events are) and compare by value, so tests can assert exact step lists. Field names
follow the upstream `EngineStep` enum of `bb-runtime`.

Order within one poll (SPEC §3.3): steps produced *during* the cycle (`OpCompleted`,
`AsyncSuspended`, `OpFailed`, `PeerBlocked`, `WireDecodeFailed`, `WireReceiveFailed`,
`WireTimeout`, `LifecycleFired`) come first, in the order they happened; then phase 8 emits
`SendEnvelope`s, `PeerResolveFailed`s, one `OutboundDropped`, one `CycleBudgetExceeded`,
`PeerDown`/`PeerUp` transitions and finally `AppEvent`s.

Ids used here: `op_ref` is the `NodeSiteId` (u64) of the op, see `bbnode.engine.component`;
`exec_id` is the engine's `ExecId` (u64, minted from 1, never reused across restores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from bbnode.engine._fastinit import fast_frozen_init
from bbnode.engine.envelope import WireEnvelope
from bbnode.ids import PeerId

__all__ = [
    "FAILURE_KINDS",
    "AppEvent",
    "AsyncSuspended",
    "CycleBudgetExceeded",
    "EngineStep",
    "LifecycleFired",
    "OpCompleted",
    "OpFailed",
    "OpFailure",
    "OutboundDropped",
    "PeerBlocked",
    "PeerDown",
    "PeerResolveFailed",
    "PeerUp",
    "SendEnvelope",
    "WireDecodeFailed",
    "WireReceiveFailed",
    "WireTimeout",
]

#: Every `OpFailure.kind` the engine produces:
#: ``raised`` the op raised (detail = exception type and message);
#: ``timeout`` an `Async` suspension passed its deadline;
#: ``command_failed`` the host called `Node.fail(cmd_id, detail)`;
#: ``blocklisted`` / ``not_allowlisted`` an outbound send was refused by the PeerGovernor;
#: ``invalid_output`` the op returned something other than `Immediate` / `Async`.
FAILURE_KINDS: Final = frozenset(
    {"raised", "timeout", "command_failed", "blocklisted", "not_allowlisted", "invalid_output"}
)


@dataclass(frozen=True, slots=True)
class OpFailure:
    """Why an op failed: `kind` is one of `FAILURE_KINDS`, `detail` is human-readable."""

    kind: str
    detail: str = ""


class EngineStep:
    """Base class of all steps (no fields)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class OpCompleted(EngineStep):
    """An op returned `Immediate`; `outputs` is what it returned (None when nothing)."""

    op_ref: int
    exec_id: int
    outputs: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AsyncSuspended(EngineStep):
    """An op returned `Async(cmd_id, ...)`; it resumes when the command completes."""

    op_ref: int
    exec_id: int
    cmd_id: int
    deadline_ns: int | None = None


@dataclass(frozen=True, slots=True)
class SendEnvelope(EngineStep):
    """Ship `envelope` to `peer`. `redelivered` is True for envelopes handed back by the host
    (or replayed from a snapshot's `pending_outbound`): the transport may have sent it already.
    `envelope` always passes `encode_envelope`'s checks (the engine built it, or checked it
    when it took it in), so a host may encode it with `encode_checked`.
    """

    envelope: WireEnvelope
    peer: PeerId
    redelivered: bool = False


@dataclass(frozen=True, slots=True)
class AppEvent(EngineStep):
    """A component emitted `value_bytes` (msgpack) on `topic`; for the application/host."""

    module_name: str
    topic: str
    value_bytes: bytes


@dataclass(frozen=True, slots=True)
class LifecycleFired(EngineStep):
    """A lifecycle phase queued with `Node.fire_lifecycle(phase)` was delivered."""

    phase: str


@dataclass(frozen=True, slots=True)
class OpFailed(EngineStep):
    """An op (or a send it issued, or its suspension) failed; the cycle carried on."""

    op_ref: int
    exec_id: int
    error: OpFailure


@dataclass(frozen=True, slots=True)
class CycleBudgetExceeded(EngineStep):
    """The frontier still had work after `cycle_op_budget` ops; poll again to continue."""

    ops_invoked: int


@dataclass(frozen=True, slots=True)
class OutboundDropped(EngineStep):
    """`count` outbound envelopes were dropped (queue overflow, oldest first) this cycle."""

    count: int


@dataclass(frozen=True, slots=True)
class WireDecodeFailed(EngineStep):
    """An inbound envelope could not be decoded at all.

    `hash` is the 64-bit FNV-1a of the first 256 bytes of the frame (identifies it in logs
    without hashing megabytes of garbage); `payload_size` is the frame length.
    """

    hash: int
    payload_size: int
    detail: str


@dataclass(frozen=True, slots=True)
class WireReceiveFailed(EngineStep):
    """One fill of an otherwise valid envelope could not be delivered (siblings were).

    `kind`: ``fill_invalid`` (the envelope decoder rejected the fill), ``unroutable`` (no op
    at `dest_suffix`), ``payload_undecodable`` (payload is not msgpack), ``unmatched_response``
    (a response for no in-flight request of that peer).
    """

    src_peer: PeerId
    fill_index: int
    actual_hash: int
    payload_size: int
    kind: str


@dataclass(frozen=True, slots=True)
class WireTimeout(EngineStep):
    """A request sent with `ctx.send(..., request=True)` got no response before its deadline.

    `parked_op` is the `NodeSiteId` of the op that was waiting for the response (None if none).
    """

    wire_req_id: int
    target_peer: PeerId
    started_at_ns: int
    parked_op: int | None


@dataclass(frozen=True, slots=True)
class PeerBlocked(EngineStep):
    """An inbound envelope from `peer` was dropped by policy (at most once per peer per poll).

    `reason` is the governor's reason code: ``blocklisted`` or ``not_allowlisted``.
    """

    peer: PeerId
    reason: str


@dataclass(frozen=True, slots=True)
class PeerDown(EngineStep):
    """`peer` reached the failure threshold (emitted once per failure streak)."""

    peer: PeerId


@dataclass(frozen=True, slots=True)
class PeerUp(EngineStep):
    """`peer`, previously down, had a success (connection, envelope or response)."""

    peer: PeerId


@dataclass(frozen=True, slots=True)
class PeerResolveFailed(EngineStep):
    """A send to `peer` was skipped: the address book knows no address for it."""

    peer: PeerId
    op_ref: int
    exec_id: int


# Steps are built on the hot path (one `OpCompleted` per op, one `AppEvent` per emit): give
# them the descriptor-storing `__init__` (same signature and semantics, see `_fastinit`).
for _step in (
    OpFailure,
    OpCompleted,
    AsyncSuspended,
    SendEnvelope,
    AppEvent,
    LifecycleFired,
    OpFailed,
    CycleBudgetExceeded,
    OutboundDropped,
    WireDecodeFailed,
    WireReceiveFailed,
    WireTimeout,
    PeerBlocked,
    PeerDown,
    PeerUp,
    PeerResolveFailed,
):
    fast_frozen_init(_step)
del _step
