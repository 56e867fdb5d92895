"""`OpContext`: the syscalls a component's op may make while it runs.

One context is built per dispatch and is valid only during that `dispatch` call (and during
`on_install`); keeping it and using it later is a component bug. Misuse raises `OpError`
(which the engine reports as `OpFailed`). Every value a component hands over (inputs, emitted
values, sent payloads, completion results) is encoded at the call, so an unencodable value
fails the op that passed it, with a message naming the problem.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bbnode.engine.component import Component
from bbnode.engine.errors import OpError
from bbnode.engine.framework import PeerHealth
from bbnode.ids import Address, PeerId

if TYPE_CHECKING:
    from bbnode.engine.engine import Engine

__all__ = ["OpContext"]


class OpContext:
    """Runtime syscalls for one op execution (or for `on_install`, with `exec_id == 0`)."""

    __slots__ = ("_component", "_engine", "_exec_id", "_op", "_site")

    def __init__(
        self, engine: Engine, component: Component, op: str, site: int, exec_id: int
    ) -> None:
        self._engine = engine
        self._component = component
        self._op = op
        self._site = site
        self._exec_id = exec_id

    # -- read-only views -----------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        """The engine clock (last `tick`), never a wall clock."""
        return self._engine.now_ns

    @property
    def self_peer(self) -> PeerId:
        """This node's PeerId."""
        return self._engine.self_peer

    @property
    def exec_id(self) -> int:
        """The ExecId of this execution (0 inside `on_install`)."""
        return self._exec_id

    @property
    def op_ref(self) -> int:
        """The NodeSiteId of the running op (0 inside `on_install`)."""
        return self._site

    @property
    def rng(self) -> random.Random:
        """The engine's seeded RNG (its state is part of the snapshot)."""
        return self._engine.rng

    @property
    def src_peer(self) -> PeerId | None:
        """The peer whose envelope triggered this execution (None otherwise)."""
        inbound = self._engine.inbound_of(self._exec_id)
        return None if inbound is None else inbound.src_peer

    @property
    def wire_req_id(self) -> int:
        """The request token `reply` answers (0 when not triggered by a request)."""
        inbound = self._engine.inbound_of(self._exec_id)
        return 0 if inbound is None else inbound.wire_req_id

    @property
    def arrival_ns(self) -> int | None:
        """Engine time the triggering envelope was processed (None if none)."""
        inbound = self._engine.inbound_of(self._exec_id)
        return None if inbound is None else inbound.arrival_ns

    @property
    def remaining_deadline_ns(self) -> int | None:
        """The sender's remaining deadline budget carried by the triggering envelope."""
        inbound = self._engine.inbound_of(self._exec_id)
        return None if inbound is None else inbound.remaining_deadline_ns

    # -- messaging -----------------------------------------------------------------------------
    def send(
        self,
        peers: PeerId | Iterable[PeerId],
        component: str,
        op: str,
        value: Any,
        request: bool = False,
        deadline_ns: int | None = None,
        reply_op: str | None = None,
    ) -> int:
        """Send `value` to op `op` of component `component` (by name) on each of `peers`.

        Each peer passes the outbound policy first: a blocklisted or not-allowlisted peer gets
        no envelope and this op an `OpFailed` with that reason (the op itself carries on); a
        peer in cooldown has the envelope held until its retry time. A peer with no known
        address gets `PeerResolveFailed`.

        With `request=True`, `peers` must be one peer; the response (or the timeout / send
        failure) is delivered to op `reply_op` of this component (default: this op) with
        inputs `peer_id`, `payload`, `correlation`, `error` (None, ``"timeout"`` or
        ``"send_failed: <reason>"``). `deadline_ns` is absolute engine time (default now +
        `NodeConfig.default_request_ttl_ns`). Returns the request's `wire_req_id`, or 0 when
        not a request or when no envelope could be built.
        """
        return self._engine.ctx_send(
            self._component, self._site, self._exec_id, self._op,
            peers, component, op, value, request, deadline_ns, reply_op,
        )  # fmt: skip

    def reply(self, value: Any) -> None:
        """Answer the request that triggered this execution (RESPONSE with its wire_req_id)."""
        self._engine.ctx_reply(self._site, self._exec_id, value)

    def emit(self, topic: str, value: Any) -> None:
        """Emit an `AppEvent` (and deliver it to local bus subscribers of `topic`).

        Topics starting ``bb.`` are reserved for the engine.
        """
        if not isinstance(topic, str) or not topic:
            raise OpError(f"emit: topic must be a non-empty str, got {topic!r}")
        if topic.startswith("bb."):
            raise OpError(f"emit: topic {topic!r} is reserved (bb.* belongs to the engine)")
        self._engine.ctx_emit(self._component.name, topic, value)

    # -- scheduling ----------------------------------------------------------------------------
    def call(self, op: str, inputs: dict[str, Any] | None = None) -> int:
        """Queue op `op` of this component on the frontier (child execution); its ExecId."""
        return self._engine.ctx_call(self._component, op, inputs, self._exec_id)

    def after(self, delay_ns: int, op: str, inputs: dict[str, Any] | None = None) -> int:
        """Run `op` with `inputs` once, `delay_ns` from now; returns a cancellable timer id."""
        return self._engine.ctx_after(self._component, delay_ns, op, inputs, self._exec_id)

    def interval(self, period_ns: int, op: str) -> int:
        """Run `op` every `period_ns` (inputs `timer`, `at_ns`); missed periods are skipped."""
        return self._engine.ctx_interval(self._component, period_ns, op)

    def cancel(self, timer: int) -> bool:
        """Cancel an `after`/`interval` timer; True if it was still armed."""
        return self._engine.cancel_timer(timer)

    def subscribe(self, topic: str, op: str) -> None:
        """Deliver bus events on `topic` to `op` (inputs `topic`, `value`, `module`)."""
        self._engine.ctx_subscribe(self._component, topic, op)

    def unsubscribe(self, topic: str, op: str) -> bool:
        """Stop delivering `topic` to `op`; True if it was subscribed."""
        return self._engine.ctx_unsubscribe(self._component, topic, op)

    # -- commands ------------------------------------------------------------------------------
    def allocate_command(self) -> int:
        """A fresh CommandId for `Async(cmd_id, ...)` (never reused across restores)."""
        return self._engine.allocate_command()

    def complete_command(self, cmd_id: int, results: dict[str, Any] | None = None) -> None:
        """Complete a command from inside the engine; applied in phase 5 of a cycle."""
        self._engine.ctx_complete(cmd_id, results)

    # -- framework access ----------------------------------------------------------------------
    def lookup(self, peer: PeerId) -> tuple[Address, ...]:
        """Known addresses of `peer` (empty if unknown)."""
        return self._engine.book.lookup(peer)

    def add_peer(self, peer: PeerId, addresses: Iterable[Address], ref: bool = True) -> bool:
        """Merge `addresses` into the address book (taking a reference with `ref`)."""
        return self._engine.book.insert(peer, tuple(addresses), ref=ref)

    def release_peer(self, peer: PeerId) -> None:
        """Drop one address-book reference to `peer`."""
        self._engine.book.release(peer)

    def known_peers(self) -> list[PeerId]:
        """Peers in the address book, least recently inserted first."""
        return self._engine.book.peers()

    def health(self, peer: PeerId) -> PeerHealth | None:
        """The governor's health record of `peer` (None if none)."""
        return self._engine.governor.peer_health(peer)

    def is_down(self, peer: PeerId) -> bool:
        """True while `peer` is marked down."""
        return self._engine.governor.is_down(peer)

    def is_blocked(self, peer: PeerId) -> bool:
        """True if `peer` is banned right now."""
        return self._engine.governor.is_blocked(peer, self._engine.now_ns)

    def seen(self, key: bytes) -> bool:
        """Record `key` in the dedup window; True if it was already there."""
        if not isinstance(key, bytes):
            raise OpError(f"seen: key must be bytes, got {type(key).__name__}")
        return self._engine.dedup.seen(key)

    def incr(self, counter: str, delta: int = 1) -> int:
        """Add `delta` to a named counter (reported in snapshots and metrics)."""
        if not isinstance(counter, str) or not counter:
            raise OpError(f"incr: counter must be a non-empty str, got {counter!r}")
        return self._engine.counters.incr(counter, delta)
