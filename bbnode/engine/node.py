"""`Node`: the host surface of the engine (SPEC §3.1, §3.5a).

Contract (read this before driving a Node):

- **In.** Work enters only through the entry points below. Each validates its input and raises
  a `DeliveryError` subclass (nothing is queued) when it is bad: `InvalidInput` (wrong type or
  value), `UnknownComponent` / `UnknownOp`, `UnknownCommand`, `PayloadTooLarge` (per-item
  caps), `IngressFull` (event-count bound) and `InflightBudgetExceeded` (cumulative bytes).
  Valid input is queued on the ingress queue and nothing else happens until `poll()`.
- **Time.** The engine never reads a clock. `tick(now_ns)` queues a `TimerMatured`; the host
  calls it when `next_deadline_ns()` is reached (re-arm one timer after every call).
- **Out.** `poll()` runs one cycle and returns the `EngineStep`s, in the order documented in
  `bbnode.engine.steps`; `[]` when there was nothing to do. When `has_work()` is still True
  after a poll (op budget exhausted, lifecycle ops queued) poll again.
- **Policy/introspection** calls (`block_peer`, `set_allowlist`, `add_peer`, `peer_health`,
  `fire_lifecycle`, `requeue_outbound`) act immediately and are not thread-safe; only the
  queueing entry points (`deliver_inbound`, `invoke`, `deliver_event`, `complete`, `fail`, the
  transport outcomes and `tick`) may be called from another thread than the one polling.
- **Snapshots.** `snapshot()` between polls captures everything in flight; `Node.from_snapshot`
  rebuilds a node that continues exactly as the original would (see `bbnode.engine.snapshot`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bbnode.engine._capture import capture_snapshot, restore_snapshot
from bbnode.engine._codec import roundtrip
from bbnode.engine._config import NodeConfig
from bbnode.engine._envelope_encode import check_envelope
from bbnode.engine._gcpause import gc_paused
from bbnode.engine.component import Component
from bbnode.engine.engine import Engine
from bbnode.engine.envelope import EnvelopeEncodeError, WireEnvelope
from bbnode.engine.errors import (
    InvalidInput,
    PayloadTooLarge,
    UnknownCommand,
    UnknownComponent,
    UnknownOp,
)
from bbnode.engine.framework import (
    AddressBook,
    BackoffTable,
    BlockEntry,
    PeerGovernor,
    PeerHealth,
)
from bbnode.engine.ingress import (
    AppEvent,
    Completion,
    CompletionFailed,
    DialFailed,
    IngressQueue,
    Invoke,
    PeerConnected,
    PeerDisconnected,
    SendFailed,
    TimerMatured,
)
from bbnode.engine.snapshot import NodeSnapshot
from bbnode.engine.steps import EngineStep
from bbnode.ids import Address, PeerId

__all__ = ["Node", "NodeConfig"]


def _peer(name: str, value: object) -> PeerId:
    if not isinstance(value, PeerId):
        raise InvalidInput(f"{name}: expected a PeerId, got {type(value).__name__}")
    return value


def _opt_address(name: str, value: object) -> Address | None:
    if value is not None and not isinstance(value, Address):
        raise InvalidInput(f"{name}: expected an Address or None, got {type(value).__name__}")
    return value


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected a str, got {type(value).__name__}")
    return value


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{name}: expected a non-negative int, got {value!r}")
    return value


class Node:
    """One bbnode peer's engine, driven by a host (the daemon, a test harness, a bench)."""

    def __init__(
        self,
        peer_id: PeerId,
        addresses: Iterable[Address] = (),
        config: NodeConfig | None = None,
    ) -> None:
        self._peer_id = _peer("peer_id", peer_id)
        addrs = tuple(addresses)
        for i, address in enumerate(addrs):
            if not isinstance(address, Address):
                raise InvalidInput(f"addresses[{i}]: expected an Address, got {address!r}")
        self._config = config if config is not None else NodeConfig()
        if not isinstance(self._config, NodeConfig):
            raise InvalidInput(f"config: expected a NodeConfig, got {type(config).__name__}")
        self._engine = Engine(self._peer_id, addrs, self._config)
        self._ingress = IngressQueue(self._config.ingress_capacity, self._config.max_inflight_bytes)
        self._max_envelope_bytes = self._config.envelope_limits.max_envelope_bytes

    # -- identity and views --------------------------------------------------------------------
    @property
    def peer_id(self) -> PeerId:
        """This node's identity."""
        return self._peer_id

    @property
    def addresses(self) -> tuple[Address, ...]:
        """This node's own addresses (sent as `src_peer_addresses`)."""
        return self._engine.addresses

    @property
    def config(self) -> NodeConfig:
        """The configuration in force."""
        return self._config

    @property
    def now_ns(self) -> int:
        """The engine clock (the highest `tick` applied by a poll)."""
        return self._engine.now_ns

    @property
    def incarnation(self) -> int:
        """0 for a fresh node; +1 on every restore from a snapshot."""
        return self._engine.incarnation

    @property
    def governor(self) -> PeerGovernor:
        """The peer policy and health table (read it; change policy via the Node methods)."""
        return self._engine.governor

    @property
    def backoff(self) -> BackoffTable:
        """Per-peer backoff (the daemon dials with it)."""
        return self._engine.backoff

    @property
    def address_book(self) -> AddressBook:
        """Known peers and their addresses."""
        return self._engine.book

    def counters(self) -> dict[str, int]:
        """Named counters (engine and component `ctx.incr`)."""
        return self._engine.counters.as_dict()

    def component_names(self) -> list[str]:
        """Installed components, in install order."""
        return list(self._engine.by_name)

    # -- components ----------------------------------------------------------------------------
    def install(self, component: Component) -> int:
        """Install `component`, run its `on_install`, return its `ComponentRef`."""
        return self._engine.install(component)

    # -- queued entry points -------------------------------------------------------------------
    def deliver_inbound(
        self, src_peer: PeerId, data: bytes, observed_address: Address | None = None
    ) -> None:
        """Queue envelope bytes received from `src_peer` (decoded during `poll`)."""
        if src_peer.__class__ is not PeerId:
            _peer("src_peer", src_peer)
        if data.__class__ is not bytes:
            if not isinstance(data, bytearray | memoryview):
                raise InvalidInput(f"data: expected bytes, got {type(data).__name__}")
            data = bytes(data)
        size = len(data)
        if size > self._max_envelope_bytes:
            raise PayloadTooLarge("envelope", size, self._max_envelope_bytes)
        if observed_address is not None:
            _opt_address("observed_address", observed_address)
        self._ingress.push((src_peer, data, observed_address), size)  # see `QueuedEnvelope`

    def _site_check(self, module: object, op: object) -> tuple[str, str]:
        module_name = _text("module", module)
        op_name = _text("op", op)
        installed = self._engine.by_name.get(module_name)
        if installed is None:
            raise UnknownComponent(module_name)
        if op_name not in installed.sites:
            raise UnknownOp(module_name, op_name)
        return module_name, op_name

    def _encoded(self, what: str, value: Any) -> tuple[Any, int]:
        try:
            copy, size = roundtrip(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{what}: cannot be encoded as msgpack: {exc}") from None
        if size > self._config.max_input_bytes:
            raise PayloadTooLarge(what, size, self._config.max_input_bytes)
        return copy, size

    def invoke(self, module: str, op: str, inputs: dict[str, Any] | None = None) -> int:
        """Queue op `op` of component `module` with `inputs`; returns the new ExecId."""
        module_name, op_name = self._site_check(module, op)
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict) or not all(isinstance(k, str) for k in inputs):
            raise InvalidInput("inputs: expected a dict with str keys")
        copy, size = self._encoded("inputs", inputs)
        with self._ingress.lock:
            exec_id = self._engine.mint_exec_id()
            self._ingress.push_locked(Invoke(module_name, op_name, copy, exec_id), size)
        return exec_id

    def deliver_event(self, module: str, input_name: str, value_bytes: bytes) -> int:
        """`invoke(module, input_name, {"value": value_bytes})`; returns the new ExecId."""
        module_name, op_name = self._site_check(module, input_name)
        if not isinstance(value_bytes, bytes):
            raise InvalidInput(f"value_bytes: expected bytes, got {type(value_bytes).__name__}")
        if len(value_bytes) > self._config.max_input_bytes:
            raise PayloadTooLarge("value_bytes", len(value_bytes), self._config.max_input_bytes)
        with self._ingress.lock:
            exec_id = self._engine.mint_exec_id()
            event = AppEvent(module_name, op_name, value_bytes, exec_id)
            self._ingress.push_locked(event, len(value_bytes))
        return exec_id

    def _command(self, cmd_id: object) -> int:
        if isinstance(cmd_id, bool) or not isinstance(cmd_id, int):
            raise InvalidInput(f"cmd_id: expected an int, got {cmd_id!r}")
        if not 1 <= cmd_id < self._engine.next_command_id:
            raise UnknownCommand(cmd_id)
        return cmd_id

    def complete(self, cmd_id: int, results: dict[str, Any] | None = None) -> None:
        """Queue the completion of command `cmd_id`; `results` become the resume op's inputs."""
        cmd = self._command(cmd_id)
        if results is None:
            results = {}
        if not isinstance(results, dict) or not all(isinstance(k, str) for k in results):
            raise InvalidInput("results: expected a dict with str keys")
        copy, size = self._encoded("results", results)
        self._ingress.push(Completion(cmd, copy), size)

    def fail(self, cmd_id: int, detail: str) -> None:
        """Queue the failure of command `cmd_id` (the suspended op gets `OpFailed`)."""
        cmd = self._command(cmd_id)
        self._ingress.push(CompletionFailed(cmd, _text("detail", detail)), len(detail))

    def peer_connected(self, peer: PeerId, address: Address | None = None) -> None:
        """Queue: a connection to `peer` is up (a success; `address` joins the book)."""
        event = PeerConnected(_peer("peer", peer), _opt_address("address", address))
        self._ingress.push(event)

    def peer_disconnected(self, peer: PeerId, reason: str = "") -> None:
        """Queue: the connection to `peer` closed (not counted as a failure)."""
        self._ingress.push(PeerDisconnected(_peer("peer", peer), _text("reason", reason)))

    def dial_failed(self, peer: PeerId, address: Address | None, reason: str) -> None:
        """Queue: dialing `peer` failed (a failure: backoff and maybe `PeerDown`)."""
        event = DialFailed(
            _peer("peer", peer), _opt_address("address", address), _text("reason", reason)
        )
        self._ingress.push(event)

    def send_failed(self, peer: PeerId, wire_req_id: int, reason: str) -> None:
        """Queue: an envelope to `peer` could not be sent (a failure; fails its request)."""
        event = SendFailed(
            _peer("peer", peer), _count("wire_req_id", wire_req_id), _text("reason", reason)
        )
        self._ingress.push(event)

    def tick(self, now_ns: int) -> None:
        """Queue: the host clock reached `now_ns` (timers up to it fire in the next poll)."""
        if now_ns.__class__ is not int or now_ns < 0:  # once per host turn: check cheaply
            now_ns = _count("now_ns", now_ns)
        self._ingress.push(TimerMatured(now_ns))

    # -- the cycle -----------------------------------------------------------------------------
    def poll(self) -> list[EngineStep]:
        """Run one cycle over everything queued; the steps, in order (see `steps`)."""
        return self._engine.poll(self._ingress.drain())

    def next_deadline_ns(self) -> int | None:
        """When the host must `tick` next (engine time), or None if no timer is armed."""
        return self._engine.next_deadline_ns()

    def has_work(self) -> bool:
        """True when `poll()` has something to do without new input."""
        return len(self._ingress) > 0 or self._engine.has_work()

    # -- policy (immediate) --------------------------------------------------------------------
    def block_peer(self, peer: PeerId, until_ns: int | None = None) -> None:
        """Ban `peer` (a runtime ban; until engine time `until_ns`, or for good)."""
        until = None if until_ns is None else _count("until_ns", until_ns)
        self._engine.governor.block(_peer("peer", peer), until, "runtime")

    def unblock_peer(self, peer: PeerId) -> bool:
        """Lift a ban; True if `peer` was banned."""
        return self._engine.governor.unblock(_peer("peer", peer))

    def replace_config_blocks(self, peers: Iterable[PeerId]) -> None:
        """Config reload: replace every config-sourced ban with `peers` (runtime bans stay)."""
        checked = [_peer("peers[]", p) for p in peers]
        self._engine.governor.replace_config_blocks(checked)

    def set_allowlist(self, peers: Iterable[PeerId] | None) -> None:
        """Only `peers` may communicate (None: open)."""
        if peers is None:
            self._engine.governor.set_allowlist(None)
            return
        self._engine.governor.set_allowlist({_peer("allowlist[]", p) for p in peers})

    def is_blocked(self, peer: PeerId) -> bool:
        """True if `peer` is banned at the current engine time."""
        return self._engine.governor.is_blocked(_peer("peer", peer), self._engine.now_ns)

    def block_entries(self) -> list[BlockEntry]:
        """Every ban with its expiry and source."""
        return self._engine.governor.block_entries()

    def peer_health(self, peer: PeerId) -> PeerHealth | None:
        """The health record of `peer` (None if no outcome was ever recorded)."""
        return self._engine.governor.peer_health(_peer("peer", peer))

    def add_peer(self, peer: PeerId, addresses: Iterable[Address]) -> bool:
        """Add/merge `peer`'s addresses, taking one reference (False if the book is full)."""
        addrs = tuple(addresses)
        for i, address in enumerate(addrs):
            if not isinstance(address, Address):
                raise InvalidInput(f"addresses[{i}]: expected an Address, got {address!r}")
        return self._engine.book.insert(_peer("peer", peer), addrs, ref=True)

    def fire_lifecycle(self, phase: str) -> None:
        """Queue lifecycle `phase` (e.g. "PreShutdown") for the next poll's phase 7."""
        if not _text("phase", phase):
            raise InvalidInput("phase: must be non-empty")
        self._engine.fired_phases.append(phase)

    def requeue_outbound(self, peer: PeerId, envelope: WireEnvelope) -> None:
        """Hand back an envelope the transport did not write (shutdown): the next poll (or a
        restored node's first poll) emits it again as `SendEnvelope(redelivered=True)`.
        """
        try:  # every SendEnvelope carries an envelope the wire takes (see `encode_checked`)
            check_envelope(envelope)
        except EnvelopeEncodeError as exc:
            raise InvalidInput(str(exc)) from None
        self._engine.pending_outbound.append((_peer("peer", peer), envelope, True))

    # -- snapshots -----------------------------------------------------------------------------
    def snapshot(self) -> NodeSnapshot:
        """Capture everything (call between polls, not from inside an op)."""
        with gc_paused():
            return capture_snapshot(self._engine, self._ingress)

    @classmethod
    def from_snapshot(
        cls,
        snapshot: NodeSnapshot,
        config: NodeConfig | None = None,
        components: Sequence[Component] = (),
        peer_id: PeerId | None = None,
        addresses: Iterable[Address] | None = None,
    ) -> Node:
        """A node continuing from `snapshot` (incarnation + 1).

        `components` are matched to the snapshot's by name and `restore(state)`d; one missing
        raises `RestoreError`; extra ones are installed fresh (with `on_install`). `config`
        (default: the snapshot's, with its RNG seed) supplies policy: its blocklist replaces the
        snapshot's config bans, its allowlist (if not None) replaces the snapshot's. The
        identity is the snapshot's (`peer_id`, if given, must match it).
        """
        snap_peer = PeerId.from_bytes(snapshot.transient.framework.peer_id_bytes)
        if peer_id is None:
            peer_id = snap_peer
        if addresses is None:
            addresses = snapshot.node_addresses()
        if config is None:
            config = NodeConfig.from_dict(snapshot.config)
        node = cls(peer_id, addresses, config)
        with gc_paused(promote=True):
            restore_snapshot(node._engine, node._ingress, snapshot, list(components))
        return node
