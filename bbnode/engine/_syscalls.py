"""The engine side of `OpContext`: sends, replies, emits, calls, timers, bus, commands.

Values are validated and encoded here, at the call, so a bad value fails the calling op
(`OpError`/`TypeError` -> `OpFailed`) instead of surfacing later in another cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from bbnode.engine._codec import roundtrip
from bbnode.engine._outbound import OutboundMixin
from bbnode.engine._state import PendingCompletion
from bbnode.engine.component import Component, component_ref
from bbnode.engine.envelope import (
    Correlation,
    CorrelationKind,
    SlotFill,
    type_hash_of,
)
from bbnode.engine.errors import OpError
from bbnode.engine.steps import AppEvent
from bbnode.ids import Address, PeerId

__all__ = ["SyscallsMixin"]

_NO_CORRELATION: Final = Correlation()
_REQUEST: Final = CorrelationKind.REQUEST
_RESPONSE: Final = CorrelationKind.RESPONSE
_AFTER: Final = "after"
_INTERVAL: Final = "interval"


def _check_time(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OpError(f"{name}: must be a non-negative int of ns, got {value!r}")
    return value


class SyscallsMixin(OutboundMixin):
    """What `OpContext` calls into."""

    # -- helpers -------------------------------------------------------------------------------
    def site_of(self, component: Component, op: str) -> int:
        """NodeSiteId of `op` on the installed `component`; OpError if it has no such op."""
        installed = self.by_name[component.name]
        site = installed.sites.get(op)
        if site is None:
            raise OpError(f"component {component.name!r} has no op {op!r}")
        return site

    def _inputs(self, what: str, inputs: dict[str, Any] | None) -> dict[str, Any]:
        if inputs is None:
            return {}
        if not isinstance(inputs, dict):
            raise OpError(f"{what}: inputs must be a dict, got {type(inputs).__name__}")
        try:
            value, _size = roundtrip(inputs)
        except (TypeError, ValueError) as exc:
            raise OpError(f"{what}: inputs cannot be encoded: {exc}") from None
        result: dict[str, Any] = value
        return result

    def _suffix(self, component: str, op: str) -> bytes:
        key = (component, op)
        suffix = self.suffix_cache.get(key)
        if suffix is None:
            ref = component_ref(component)
            suffix = Address([("component", ref), ("op", op)]).to_bytes()
            self.suffix_cache[key] = suffix
        return suffix

    def _payload_fill(self, suffix: bytes, value: Any) -> SlotFill:
        try:
            payload: bytes = self.pack_value(value)
        except (TypeError, ValueError) as exc:
            raise OpError(f"send: value cannot be encoded as msgpack: {exc}") from None
        limit = self.config.envelope_limits.max_fill_payload_bytes
        if len(payload) > limit:
            raise OpError(f"send: payload of {len(payload)} bytes exceeds the {limit}-byte cap")
        cls = value.__class__
        type_hash = self.type_hash_cache.get(cls)
        if type_hash is None:
            type_hash = self.type_hash_cache[cls] = type_hash_of(cls.__name__)
        return SlotFill(suffix, payload, False, type_hash)

    # -- messaging -----------------------------------------------------------------------------
    def ctx_send(
        self,
        component: Component,
        site: int,
        exec_id: int,
        op_name: str,
        peers: PeerId | Iterable[PeerId],
        remote_component: str,
        remote_op: str,
        value: Any,
        request: bool,
        deadline_ns: int | None,
        reply_op: str | None,
    ) -> int:
        """See `OpContext.send`."""
        if not isinstance(remote_component, str) or not remote_component:
            raise OpError(f"send: component must be a non-empty str, got {remote_component!r}")
        if not isinstance(remote_op, str) or not remote_op:
            raise OpError(f"send: op must be a non-empty str, got {remote_op!r}")
        if isinstance(peers, PeerId):  # one peer (the usual case): nothing more to check
            targets = [peers]
        else:
            targets = list(peers)
            for peer in targets:
                if not isinstance(peer, PeerId):
                    raise OpError(f"send: peers must be PeerIds, got {type(peer).__name__}")
        fill = self._payload_fill(self._suffix(remote_component, remote_op), value)
        if not request:
            remaining = None
            if deadline_ns is not None:
                remaining = max(0, _check_time("send: deadline_ns", deadline_ns) - self.now_ns)
            for peer in targets:
                envelope = self.build_envelope(
                    peer, fill, _NO_CORRELATION, remaining, site, exec_id
                )
                if envelope is not None:
                    self.gate_send(peer, envelope, site, exec_id)
            return 0
        if len(targets) != 1:
            raise OpError(f"send: a request goes to exactly one peer, got {len(targets)}")
        (peer,) = targets
        if deadline_ns is None:
            ttl = self.config.default_request_ttl_ns
        else:
            ttl = max(0, _check_time("send: deadline_ns", deadline_ns) - self.now_ns)
        reply_site = site if reply_op is None else self.site_of(component, reply_op)
        # The envelope carries the token `start` will hand out, but the request is started
        # only once the peer has an address (else there is nothing to wait for).
        requests = self.requests
        correlation = Correlation(_REQUEST, requests.next_token)
        envelope = self.build_envelope(peer, fill, correlation, ttl, site, exec_id)
        if envelope is None:
            return 0
        # Outside an execution (on_install) there is no op to park: the response is dropped.
        parked = None if reply_site == 0 else [reply_site, exec_id]
        wire_req_id = requests.start(peer, self.now_ns, ttl, parked)
        self.gate_send(peer, envelope, site, exec_id)
        return wire_req_id

    def ctx_reply(self, site: int, exec_id: int, value: Any) -> None:
        """See `OpContext.reply`."""
        inbound = self.inbound_of(exec_id)
        if inbound is None or inbound.wire_req_id == 0:
            raise OpError("reply: this execution was not triggered by a request")
        fill = self._payload_fill(inbound.reply_suffix, value)
        correlation = Correlation(_RESPONSE, inbound.wire_req_id)
        peer = inbound.src_peer
        envelope = self.build_envelope(peer, fill, correlation, None, site, exec_id)
        if envelope is not None:
            self.gate_send(peer, envelope, site, exec_id)

    def ctx_emit(self, module: str, topic: str, value: Any) -> None:
        """See `OpContext.emit` (topic already checked)."""
        try:
            data: bytes = self.pack_value(value)
        except (TypeError, ValueError) as exc:
            raise OpError(f"emit: value cannot be encoded as msgpack: {exc}") from None
        self.app_events.append(AppEvent(module, topic, data))
        if topic in self.subscriptions:
            self.bus_queue.append((topic, module, data))

    # -- scheduling ----------------------------------------------------------------------------
    def ctx_call(
        self, component: Component, op: str, inputs: dict[str, Any] | None, parent: int
    ) -> int:
        """See `OpContext.call`: a child execution inheriting the inbound context."""
        site = self.site_of(component, op)
        values = self._inputs("call", inputs)
        return self.start_exec(site, values, parent, self.inbound_of(parent))

    def ctx_after(
        self,
        component: Component,
        delay_ns: int,
        op: str,
        inputs: dict[str, Any] | None,
        parent: int,
    ) -> int:
        """See `OpContext.after`."""
        delay = _check_time("after: delay_ns", delay_ns)
        site = self.site_of(component, op)
        values = self._inputs("after", inputs)
        return self.scheduler.schedule(self.now_ns + delay, [_AFTER, site, values, parent])

    def ctx_interval(self, component: Component, period_ns: int, op: str) -> int:
        """See `OpContext.interval`: the returned id stays valid across re-arming."""
        period = _check_time("interval: period_ns", period_ns)
        if period == 0:
            raise OpError("interval: period_ns must be positive")
        site = self.site_of(component, op)
        payload: list[Any] = [_INTERVAL, site, period, 0]
        handle = self.scheduler.schedule(self.now_ns + period, payload)
        payload[3] = handle  # the timer id is its first handle
        self.intervals[handle] = handle
        return handle

    def cancel_timer(self, timer: int) -> bool:
        """Cancel an `after` timer or an `interval` (by the id `interval` returned)."""
        handle = self.intervals.pop(timer, timer)
        return self.scheduler.cancel(handle)

    def ctx_subscribe(self, component: Component, topic: str, op: str) -> None:
        """See `OpContext.subscribe` (idempotent)."""
        if not isinstance(topic, str) or not topic:
            raise OpError(f"subscribe: topic must be a non-empty str, got {topic!r}")
        site = self.site_of(component, op)
        sites = self.subscriptions.setdefault(topic, [])
        if site not in sites:
            sites.append(site)

    def ctx_unsubscribe(self, component: Component, topic: str, op: str) -> bool:
        """See `OpContext.unsubscribe`."""
        site = self.site_of(component, op)
        sites = self.subscriptions.get(topic)
        if not sites or site not in sites:
            return False
        sites.remove(site)
        if not sites:
            del self.subscriptions[topic]
        return True

    # -- commands ------------------------------------------------------------------------------
    def ctx_complete(self, cmd_id: int, results: dict[str, Any] | None) -> None:
        """See `OpContext.complete_command`: queued for phase 5."""
        if isinstance(cmd_id, bool) or not isinstance(cmd_id, int):
            raise OpError(f"complete_command: cmd_id must be an int, got {cmd_id!r}")
        if not 1 <= cmd_id < self.next_command_id:
            raise OpError(f"complete_command: command {cmd_id} was never allocated")
        values = self._inputs("complete_command", results)
        self.pending_completions.append(PendingCompletion(cmd_id, values))
