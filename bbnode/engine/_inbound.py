"""Phase 1 handlers: what each ingress event does to the engine state.

Envelopes: the PeerGovernor's `check_inbound` runs first; a denied peer's envelope is dropped
before anything else (no decode, no slot) with one `PeerBlocked` per peer per cycle. An
allowed envelope is decoded (`WireDecodeFailed` if malformed), counts as a success of its
sender, merges its `src_peer_addresses` into the address book without taking a reference
(addresses naming another peer are ignored), reports each bad fill as `WireReceiveFailed`,
and routes each good fill by `dest_suffix` to an op as a fresh execution with inputs
`peer_id`, `payload` (decoded msgpack), `correlation`.

A RESPONSE is matched to the in-flight request by `wire_req_id` *and* sender; it feeds the
RTT estimate and runs the request's reply op (inputs as above plus `error: None`). A response
nobody waits for is reported as `WireReceiveFailed(kind="unmatched_response")`.
The observed transport address of an envelope is not merged (it is often an ephemeral port).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgpack

from bbnode.engine._codec import unpack_payload
from bbnode.engine._envelope_decode import RawFill, decode_parts
from bbnode.engine._state import Exec, Inbound, PendingCompletion
from bbnode.engine._syscalls import SyscallsMixin
from bbnode.engine.envelope import Correlation, CorrelationKind, EnvelopeDecodeError
from bbnode.engine.framework import Allow, InFlightRequest
from bbnode.engine.ingress import (
    AppEvent,
    Completion,
    CompletionFailed,
    DialFailed,
    EnvelopeFrom,
    IngressEvent,
    Invoke,
    PeerConnected,
    PeerDisconnected,
    QueuedEnvelope,
    SendFailed,
    TimerMatured,
)
from bbnode.engine.steps import PeerBlocked, WireDecodeFailed, WireReceiveFailed
from bbnode.ids import Address, IdError, PeerId, fnv1a_64

__all__ = ["InboundMixin"]

_REQUEST: Final = CorrelationKind.REQUEST
_RESPONSE: Final = CorrelationKind.RESPONSE
# Bytes of a malformed frame hashed for WireDecodeFailed.hash (identifies it in logs cheaply).
_FRAME_HASH_BYTES: Final = 256
_PAYLOAD_ERRORS: Final = (ValueError, TypeError, msgpack.UnpackException)


def _parked(parked: object) -> tuple[int, int]:
    """The `(reply site, requesting exec)` stored as a request's `parked_op`."""
    pair: list[int] = parked  # type: ignore[assignment]
    return int(pair[0]), int(pair[1])


class InboundMixin(SyscallsMixin):
    """Ingress event handlers (phase 1)."""

    def handle_ingress(self, events: list[IngressEvent | QueuedEnvelope]) -> None:
        """Apply `events` in order."""
        handlers = self.ingress_handlers
        if handlers is None:
            handlers = self.ingress_handlers = self._ingress_handlers()
        for event in events:
            handlers[event.__class__](event)

    def _ingress_handlers(self) -> dict[type, Callable[[Any], None]]:
        """The handler of each ingress event type (built once per engine, on first use)."""
        return {
            tuple: self.on_queued_envelope,
            EnvelopeFrom: self.on_envelope,
            Invoke: self._on_invoke,
            AppEvent: self._on_app_event,
            TimerMatured: self._on_timer,
            Completion: self._on_completion,
            CompletionFailed: self._on_completion_failed,
            SendFailed: self._on_send_failed,
            DialFailed: self._on_dial_failed,
            PeerConnected: self._on_connected,
            PeerDisconnected: self._on_disconnected,
        }

    # -- envelopes -----------------------------------------------------------------------------
    def on_envelope(self, event: EnvelopeFrom) -> None:
        """An envelope event built elsewhere than `Node.deliver_inbound` (a restored one)."""
        self.on_queued_envelope((event.src_peer, event.data, event.observed_address))

    def on_queued_envelope(self, queued: QueuedEnvelope) -> None:
        """See the module docstring.

        The hottest path of the engine (once per received envelope): it works on the decoder's
        raw parts (`decode_parts`) instead of the envelope objects, and starts each execution
        inline (what `start_exec` does).
        """
        src, data, _observed = queued
        # One lookup serves the policy check and the address merge: a peer the governor let in
        # under its current `policy_token` is still let in (see `PeerGovernor`), so only a peer
        # not seen since the last policy change pays for `check_inbound` (with 100 000 bans,
        # a cache-cold lookup in a large table).
        cached = self.src_cache.get(src)
        token = self.governor.policy_token
        if cached is None or cached[1] is not token:
            decision = self.governor.check_inbound(src, self.now_ns)
            if decision.__class__ is not Allow:
                self.counters.incr("envelopes_blocked")
                if src not in self.blocked_this_cycle:
                    self.blocked_this_cycle.add(src)
                    self.steps.append(PeerBlocked(src, decision.reason.code))  # type: ignore[union-attr]
                return
        try:
            parts = decode_parts(data, self.config.envelope_limits)
        except EnvelopeDecodeError as exc:
            self.counters.incr("envelopes_undecodable")
            frame_hash = fnv1a_64(data[:_FRAME_HASH_BYTES])
            self.steps.append(WireDecodeFailed(frame_hash, len(data), exc.detail))
            return
        fills, fill_errors, correlation, deadline, _dest, src_addresses, _rtt = parts
        if self.suspects:  # else `record_success` has nothing to clear
            self.record_success(src)
        if src_addresses and (cached is None or cached[0] != src_addresses):
            self._merge_sources(src, src_addresses, token)
        elif cached is None:  # a first envelope without addresses: still cache the token
            self._remember_source(src, (), token)
        elif cached[1] is not token:
            self.src_cache[src] = (cached[0], token)  # a known key keeps its place
        if fill_errors:
            for error in fill_errors:
                self.steps.append(
                    WireReceiveFailed(
                        src, error.fill_index, error.type_hash, error.payload_size, "fill_invalid"
                    )
                )
        kind = correlation.kind
        if kind is _RESPONSE:
            self._on_response(src, fills, correlation, deadline)
            return
        wire_req_id = correlation.wire_req_id if kind is _REQUEST else 0
        now = self.now_ns
        routes = self.routes
        execs = self.execs
        slots = self.slots
        frontier = self.frontier
        for index, suffix, payload, trigger, thash in fills:
            site = routes.get(suffix)
            if site is None:
                self._fill_failed(src, index, thash, len(payload), "unroutable")
                continue
            if trigger:
                value = None
            else:
                try:
                    value = unpack_payload(payload)
                except _PAYLOAD_ERRORS:
                    self._fill_failed(src, index, thash, len(payload), "payload_undecodable")
                    continue
            exec_id = self.next_exec_id
            self.next_exec_id = exec_id + 1
            execs[exec_id] = Exec(0, Inbound(src, wire_req_id, now, deadline, suffix))
            key = (site, exec_id)
            slots[key] = {"peer_id": src, "payload": value, "correlation": correlation}
            frontier.append(key)

    def _fill_failed(
        self, src: PeerId, index: int, type_hash: int, payload_size: int, kind: str
    ) -> None:
        """Report fill `index` (its position as sent) as `WireReceiveFailed(kind)`."""
        self.counters.incr(f"fills_{kind}")
        self.steps.append(WireReceiveFailed(src, index, type_hash, payload_size, kind))

    def _merge_sources(self, src: PeerId, raw: tuple[bytes, ...], token: object) -> None:
        addresses: list[Address] = []
        for data in raw:
            try:
                address = Address.from_bytes(data)
            except IdError:
                self.counters.incr("src_addresses_invalid")
                continue
            owner = address.peer_id
            if owner is None or owner == src:
                addresses.append(address)
        if addresses:
            self.book.insert(src, addresses, ref=False)
        self._remember_source(src, raw, token)

    def _remember_source(self, src: PeerId, raw: tuple[bytes, ...], token: object) -> None:
        """Cache `src`'s last source addresses and the policy token it was let in under.

        Bounded: a cache holding twice the address book's cap is emptied first (every peer then
        pays one `check_inbound` again), so fresh peer ids cannot grow it without limit.
        """
        cache = self.src_cache
        if len(cache) >= 2 * self.config.address_book_cap:
            cache.clear()
        cache[src] = (raw, token)

    def _on_response(
        self,
        src: PeerId,
        fills: list[RawFill],
        correlation: Correlation,
        deadline: int | None,
    ) -> None:
        request = self.requests.get(correlation.wire_req_id)
        if request is None or (request.target_peer is not src and request.target_peer != src):
            for index, _suffix, payload, _trigger, thash in fills:
                self._fill_failed(src, index, thash, len(payload), "unmatched_response")
            return
        self.requests.complete(correlation.wire_req_id)
        self.rtt.observe(src, max(0, self.now_ns - request.started_at_ns))
        parked = request.parked_op
        if parked is None:
            return
        site, parent = _parked(parked)
        delivered = False
        now = self.now_ns
        for index, suffix, payload, trigger, thash in fills:
            if trigger:
                value = None
            else:
                try:
                    value = unpack_payload(payload)
                except _PAYLOAD_ERRORS:
                    self._fill_failed(src, index, thash, len(payload), "payload_undecodable")
                    continue
            inputs = {"peer_id": src, "payload": value, "correlation": correlation, "error": None}
            self.start_exec(site, inputs, parent, Inbound(src, 0, now, deadline, suffix))
            delivered = True
        if not delivered:
            self.request_error(request, "bad_response")

    def request_error(self, request: InFlightRequest, error: str) -> None:
        """Run the reply op of a request that will get no response (timeout, send failure)."""
        parked = request.parked_op
        if parked is None:
            return
        site, parent = _parked(parked)
        inputs = {
            "peer_id": request.target_peer,
            "payload": None,
            "correlation": Correlation(_RESPONSE, request.wire_req_id),
            "error": error,
        }
        self.start_exec(site, inputs, parent, None)

    # -- host invocations ----------------------------------------------------------------------
    def _on_invoke(self, event: Invoke) -> None:
        site = self.by_name[event.module_name].sites[event.op]
        self.queue_exec(site, event.exec_id, event.inputs)

    def _on_app_event(self, event: AppEvent) -> None:
        site = self.by_name[event.module_name].sites[event.input_name]
        self.queue_exec(site, event.exec_id, {"value": event.value_bytes})

    def _on_timer(self, event: TimerMatured) -> None:
        if event.at_ns > self.now_ns:
            self.now_ns = event.at_ns

    def _on_completion(self, event: Completion) -> None:
        self.pending_completions.append(PendingCompletion(event.cmd_id, event.results))

    def _on_completion_failed(self, event: CompletionFailed) -> None:
        self.pending_completions.append(PendingCompletion(event.cmd_id, None, event.detail))

    # -- transport outcomes --------------------------------------------------------------------
    def _on_send_failed(self, event: SendFailed) -> None:
        self.counters.incr("send_failed")
        self.record_failure(event.peer)
        if event.wire_req_id:
            request = self.requests.get(event.wire_req_id)
            if request is not None and request.target_peer == event.peer:
                self.requests.complete(event.wire_req_id)
                self.request_error(request, f"send_failed: {event.reason}")

    def _on_dial_failed(self, event: DialFailed) -> None:
        self.counters.incr("dial_failed")
        self.record_failure(event.peer)

    def _on_connected(self, event: PeerConnected) -> None:
        self.counters.incr("peer_connected")
        if event.address is not None:
            self.book.insert(event.peer, (event.address,), ref=False)
        self.record_success(event.peer)

    def _on_disconnected(self, event: PeerDisconnected) -> None:
        self.counters.incr("peer_disconnected")
