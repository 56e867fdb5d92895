"""Ingress: the events a host feeds the engine, and the bounded, thread-safe queue they wait in.

Every `Node` entry point that carries work (envelopes, invocations, completions, transport
outcomes, clock ticks) validates its input, wraps it in one of the frozen event types below
(a received envelope in the plain tuple `QueuedEnvelope`, see there) and pushes it onto the
`IngressQueue`. `Node.poll()` drains the whole queue in phase 1 of the cycle, in push order.
Pushing only stores (h11's "buffer on input"): no engine state changes until the host polls.

The queue is the one place in `bbnode.engine` that may be touched from another thread (e.g. a
transport thread delivering envelopes while the driver polls), hence the single lock. It is
bounded twice: by event count (`capacity`, `IngressFull`) and by the cumulative bytes of the
queued events (`max_inflight_bytes`, `InflightBudgetExceeded`); a rejected push queues nothing.

The `event_to_snapshot` / `event_from_snapshot` pair gives each event the externally tagged
form of the seed's `IngressEventSnapshot` (`{"Variant": {...fields}}`), so in-flight ingress
survives a snapshot.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from bbnode.engine._fastinit import fast_frozen_init
from bbnode.engine.errors import InflightBudgetExceeded, IngressFull, SnapshotDecodeError
from bbnode.ids import Address, IdError, PeerId

__all__ = [
    "AppEvent",
    "Completion",
    "CompletionFailed",
    "DialFailed",
    "EnvelopeFrom",
    "IngressEvent",
    "IngressQueue",
    "Invoke",
    "PeerConnected",
    "PeerDisconnected",
    "QueuedEnvelope",
    "SendFailed",
    "TimerMatured",
    "event_from_snapshot",
    "event_to_snapshot",
]


class IngressEvent:
    """Base class of all ingress events (no fields)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class EnvelopeFrom(IngressEvent):
    """Raw envelope bytes received from `src_peer` (decoded in the cycle, not at push)."""

    src_peer: PeerId
    data: bytes
    observed_address: Address | None = None


@dataclass(frozen=True, slots=True)
class AppEvent(IngressEvent):
    """`Node.deliver_event`: invoke `module_name.input_name` with `{"value": value_bytes}`."""

    module_name: str
    input_name: str
    value_bytes: bytes
    exec_id: int


@dataclass(frozen=True, slots=True)
class Invoke(IngressEvent):
    """`Node.invoke`: run `module_name.op` with `inputs` as execution `exec_id`."""

    module_name: str
    op: str
    inputs: dict[str, Any]
    exec_id: int


@dataclass(frozen=True, slots=True)
class TimerMatured(IngressEvent):
    """`Node.tick`: the host clock reached `at_ns` (the engine clock never moves backwards)."""

    at_ns: int


@dataclass(frozen=True, slots=True)
class Completion(IngressEvent):
    """`Node.complete`: command `cmd_id` finished with `results` (the resume op's inputs)."""

    cmd_id: int
    results: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CompletionFailed(IngressEvent):
    """`Node.fail`: command `cmd_id` failed; the suspended op gets `OpFailed(command_failed)`."""

    cmd_id: int
    detail: str


@dataclass(frozen=True, slots=True)
class SendFailed(IngressEvent):
    """The transport could not deliver an envelope to `peer` (`wire_req_id` 0 if no request)."""

    peer: PeerId
    wire_req_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class DialFailed(IngressEvent):
    """The transport could not connect to `peer` at `address`."""

    peer: PeerId
    address: Address | None
    reason: str


@dataclass(frozen=True, slots=True)
class PeerConnected(IngressEvent):
    """A (authenticated) connection to `peer` is up; `address` joins its address book entry."""

    peer: PeerId
    address: Address | None


@dataclass(frozen=True, slots=True)
class PeerDisconnected(IngressEvent):
    """The connection to `peer` closed (not a failure by itself)."""

    peer: PeerId
    reason: str


# Built per tick, invocation or transport outcome: use the descriptor-storing `__init__`
# (see `_fastinit`). A received envelope is queued as a `QueuedEnvelope` tuple instead.
for _event in (
    EnvelopeFrom,
    AppEvent,
    Invoke,
    TimerMatured,
    Completion,
    CompletionFailed,
    SendFailed,
    DialFailed,
    PeerConnected,
    PeerDisconnected,
):
    fast_frozen_init(_event)
del _event


QueuedEnvelope = tuple[PeerId, bytes, Address | None]
"""An `EnvelopeFrom` as `Node.deliver_inbound` queues it: its three fields, in a plain tuple.

One is queued per received envelope, and a tuple costs a fraction of what the frozen
dataclass costs to build; the engine reads the tuple as it is, and `peek_all` (what snapshots
see) hands out the `EnvelopeFrom`."""


class IngressQueue:
    """Bounded FIFO of `IngressEvent`s, safe to push from any thread.

    `push(event, size)` raises `IngressFull` when `capacity` events are queued and
    `InflightBudgetExceeded` when `size` more bytes would pass `max_inflight_bytes`; in both
    cases nothing is queued. `drain()` takes everything queued, in push order, and releases
    the byte budget. `lock` is exposed so `Node.invoke` can mint an exec id and push it
    atomically (ids then appear in the queue in increasing order).
    """

    __slots__ = ("_events", "_inflight_bytes", "_sizes", "capacity", "lock", "max_inflight_bytes")

    def __init__(self, capacity: int, max_inflight_bytes: int) -> None:
        self.capacity = capacity
        self.max_inflight_bytes = max_inflight_bytes
        self.lock = threading.Lock()
        self._events: deque[IngressEvent | QueuedEnvelope] = deque()
        self._sizes: deque[int] = deque()
        self._inflight_bytes = 0

    def push(self, event: IngressEvent | QueuedEnvelope, size: int = 0) -> None:
        """Queue `event` accounting `size` bytes against the in-flight budget."""
        # `push_locked`, inlined: this runs once per received envelope. An explicit acquire
        # and release cost half what `with` costs (its __enter__/__exit__ lookups and calls).
        lock = self.lock
        lock.acquire()
        try:
            if len(self._events) >= self.capacity:
                raise IngressFull(self.capacity)
            if size and self._inflight_bytes + size > self.max_inflight_bytes:
                raise InflightBudgetExceeded(size, self._inflight_bytes, self.max_inflight_bytes)
            self._events.append(event)
            self._sizes.append(size)
            self._inflight_bytes += size
        finally:
            lock.release()

    def push_locked(self, event: IngressEvent | QueuedEnvelope, size: int = 0) -> None:
        """`push` for a caller already holding `lock`."""
        if len(self._events) >= self.capacity:
            raise IngressFull(self.capacity)
        if size and self._inflight_bytes + size > self.max_inflight_bytes:
            raise InflightBudgetExceeded(size, self._inflight_bytes, self.max_inflight_bytes)
        self._events.append(event)
        self._sizes.append(size)
        self._inflight_bytes += size

    def drain(self) -> list[IngressEvent | QueuedEnvelope]:
        """Remove and return every queued event, oldest first (envelopes as queued)."""
        lock = self.lock
        lock.acquire()  # not `with`: see `push`
        try:
            events = list(self._events)
            self._events.clear()
            self._sizes.clear()
            self._inflight_bytes = 0
        finally:
            lock.release()
        return events

    def peek_all(self) -> list[tuple[IngressEvent, int]]:
        """Every queued `(event, size)`, oldest first, without removing them (snapshots)."""
        with self.lock:
            queued = list(zip(self._events, self._sizes, strict=True))
        return [
            (EnvelopeFrom(*event) if event.__class__ is tuple else event, size)  # type: ignore[misc]
            for event, size in queued
        ]

    @property
    def inflight_bytes(self) -> int:
        """Bytes currently accounted against the in-flight budget."""
        return self._inflight_bytes

    def __len__(self) -> int:
        return len(self._events)


# -- snapshot form -------------------------------------------------------------------------------
def _addr_bytes(address: Address | None) -> bytes | None:
    return None if address is None else address.to_bytes()


def event_to_snapshot(event: IngressEvent) -> dict[str, Any]:
    """The externally tagged msgpack-able form of `event` (seed `IngressEventSnapshot`)."""
    match event:
        case EnvelopeFrom(src_peer, data, observed):
            body: dict[str, Any] = {
                "src_peer": src_peer.to_bytes(),
                "data": data,
                "observed_address": _addr_bytes(observed),
            }
            return {"Envelope": body}
        case AppEvent(module_name, input_name, value_bytes, exec_id):
            body = {
                "module_name": module_name,
                "input_name": input_name,
                "value_bytes": value_bytes,
                "exec_id": exec_id,
            }
            return {"AppEvent": body}
        case Invoke(module_name, op, inputs, exec_id):
            body = {"module_name": module_name, "op": op, "inputs": inputs, "exec_id": exec_id}
            return {"Invoke": body}
        case TimerMatured(at_ns):
            return {"TimerMatured": {"at_ns": at_ns}}
        case Completion(cmd_id, results):
            return {"Completion": {"cmd_id": cmd_id, "results": results}}
        case CompletionFailed(cmd_id, detail):
            return {"CompletionFailed": {"cmd_id": cmd_id, "detail": detail}}
        case SendFailed(peer, wire_req_id, reason):
            body = {"peer": peer.to_bytes(), "wire_req_id": wire_req_id, "reason": reason}
            return {"SendFailed": body}
        case DialFailed(peer, address, reason):
            body = {"peer": peer.to_bytes(), "address": _addr_bytes(address), "reason": reason}
            return {"DialFailed": body}
        case PeerConnected(peer, address):
            return {"PeerConnected": {"peer": peer.to_bytes(), "address": _addr_bytes(address)}}
        case PeerDisconnected(peer, reason):
            return {"PeerDisconnected": {"peer": peer.to_bytes(), "reason": reason}}
    raise TypeError(f"not an ingress event: {event!r}")


def _peer(body: dict[str, Any], key: str) -> PeerId:
    return PeerId.from_bytes(body[key])


def _addr(body: dict[str, Any], key: str) -> Address | None:
    raw = body.get(key)
    return None if raw is None else Address.from_bytes(raw)


_FROM_SNAPSHOT: dict[str, Any] = {
    "Envelope": lambda b: EnvelopeFrom(
        _peer(b, "src_peer"), bytes(b["data"]), _addr(b, "observed_address")
    ),
    "AppEvent": lambda b: AppEvent(
        str(b["module_name"]), str(b["input_name"]), bytes(b["value_bytes"]), int(b["exec_id"])
    ),
    "Invoke": lambda b: Invoke(str(b["module_name"]), str(b["op"]), b["inputs"], int(b["exec_id"])),
    "TimerMatured": lambda b: TimerMatured(int(b["at_ns"])),
    "Completion": lambda b: Completion(int(b["cmd_id"]), b["results"]),
    "CompletionFailed": lambda b: CompletionFailed(int(b["cmd_id"]), str(b["detail"])),
    "SendFailed": lambda b: SendFailed(_peer(b, "peer"), int(b["wire_req_id"]), str(b["reason"])),
    "DialFailed": lambda b: DialFailed(_peer(b, "peer"), _addr(b, "address"), str(b["reason"])),
    "PeerConnected": lambda b: PeerConnected(_peer(b, "peer"), _addr(b, "address")),
    "PeerDisconnected": lambda b: PeerDisconnected(_peer(b, "peer"), str(b["reason"])),
}


def event_from_snapshot(data: Any) -> IngressEvent:
    """Rebuild an event from `event_to_snapshot` output; `SnapshotDecodeError` if malformed."""
    if not isinstance(data, dict) or len(data) != 1:
        raise SnapshotDecodeError(f"ingress event: expected a one-key map, got {data!r:.80}")
    ((tag, body),) = data.items()
    build = _FROM_SNAPSHOT.get(tag)
    if build is None or not isinstance(body, dict):
        raise SnapshotDecodeError(f"ingress event: unknown variant {tag!r}")
    try:
        event: IngressEvent = build(body)
    except (KeyError, TypeError, ValueError, IdError) as exc:
        raise SnapshotDecodeError(f"ingress event {tag}: {exc!r}") from None
    return event
