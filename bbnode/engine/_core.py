"""`EngineCore`: the engine's whole state, plus the bookkeeping helpers every part shares.

The engine is split by responsibility: this module owns the state and the small helpers
(id minting, executions, health outcomes); `_syscalls.py` implements what `OpContext` offers,
`_outbound.py` the outbound policy and phase-8 emission, `_inbound.py` the ingress handlers,
and `engine.py` the poll cycle itself. Each part is a mixin over `EngineCore`, so the state
is declared (and typed) once.

Determinism rules kept everywhere: dicts are iterated in insertion order only, sets are never
iterated to produce steps, and the one `random.Random` lives in `self.rng`.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

import msgpack

from bbnode.engine._config import NodeConfig
from bbnode.engine._state import Exec, Held, Inbound, PendingAsync, PendingCompletion
from bbnode.engine.component import Component
from bbnode.engine.envelope import WireEnvelope
from bbnode.engine.framework import (
    AddressBook,
    BackoffTable,
    Counters,
    InboundDedup,
    LifecycleTransition,
    OutboundQueue,
    PeerGovernor,
    RequestTracker,
    RttTracker,
    Scheduler,
)
from bbnode.engine.steps import EngineStep, PeerDown, PeerUp
from bbnode.ids import Address, PeerId

__all__ = ["EngineCore", "Installed", "OutboundItem"]

#: (peer, envelope, redelivered) waiting for phase 8.
OutboundItem = tuple[PeerId, WireEnvelope, bool]

_WENT_DOWN = LifecycleTransition.WENT_DOWN
_CAME_UP = LifecycleTransition.CAME_UP


class Installed:
    """An installed component: its ref and the NodeSiteId of each op."""

    __slots__ = ("component", "name", "ref", "sites")

    def __init__(self, component: Component, ref: int, sites: dict[str, int]) -> None:
        self.component = component
        self.name = component.name
        self.ref = ref
        self.sites = sites


class EngineCore:
    """All engine state. See `Engine` for the cycle that moves it."""

    def __init__(
        self, self_peer: PeerId, addresses: tuple[Address, ...], config: NodeConfig
    ) -> None:
        self.config = config
        self.self_peer = self_peer
        self.addresses = addresses
        # Our own addresses, with /p2p, as sent in every envelope's src_peer_addresses.
        self.src_addr_bytes: tuple[bytes, ...] = tuple(
            (a if a.peer_id is not None else a.with_peer(self_peer)).to_bytes() for a in addresses
        )
        self.incarnation = 0
        self.now_ns = 0
        self.rng = random.Random(config.rng_seed)
        self.counters = Counters()
        self.governor = PeerGovernor(config.failure_threshold)
        self.governor.replace_config_blocks(config.blocklist)
        if config.allowlist is not None:
            self.governor.set_allowlist(set(config.allowlist))
        self.backoff = BackoffTable(
            config.backoff_base_ns, config.backoff_max_ns, config.backoff_jitter, self.rng
        )
        self.book = AddressBook(config.address_book_cap)
        self.dedup = InboundDedup(config.dedup_window)
        self.outq: OutboundQueue[OutboundItem] = OutboundQueue(config.max_outbound_queue)
        self.requests = RequestTracker()
        self.rtt = RttTracker()
        self.scheduler: Scheduler[list[Any]] = Scheduler()

        # components and routing
        self.by_name: dict[str, Installed] = {}
        self.by_ref: dict[int, Installed] = {}
        self.site_ops: dict[int, tuple[Installed, str]] = {}
        self.routes: dict[bytes, int] = {}

        # ids (both start at 1; 0 means "none")
        self.next_exec_id = 1
        self.next_command_id = 1

        # in-flight execution state
        self.frontier: deque[tuple[int, int]] = deque()
        self.slots: dict[tuple[int, int], dict[str, Any]] = {}
        self.execs: dict[int, Exec] = {}
        self.finished: list[int] = []
        self.pending_async: dict[int, PendingAsync] = {}
        self.pending_completions: list[PendingCompletion] = []
        self.subscriptions: dict[str, list[int]] = {}
        self.bus_queue: list[tuple[str, str, bytes]] = []  # (topic, module, value_bytes)
        self.fired_phases: list[str] = []
        self.intervals: dict[int, int] = {}  # interval timer id -> current scheduler handle
        self.held: dict[PeerId, Held] = {}
        self.pending_outbound: list[OutboundItem] = []
        self.held_dropped = 0

        # per-cycle output (always empty between polls)
        self.steps: list[EngineStep] = []
        self.resolve_failed: list[EngineStep] = []
        self.transitions: list[EngineStep] = []
        self.app_events: list[EngineStep] = []
        self.blocked_this_cycle: set[PeerId] = set()
        self.ops_invoked = 0
        self.budget_exceeded = False

        # peers with a failure recorded since their last success (membership only; rebuilt
        # from governor health and backoff on restore)
        # bytes of peers with a failure since their last success (see `record_success`)
        self.suspects: set[bytes] = set()
        # contexts are reused per op site (a context is only valid during its dispatch)
        self.contexts: dict[int, Any] = {}
        # per peer: (last src_peer_addresses merged, which skips re-parsing unchanged ones, ()
        # for a peer that has sent none; the governor's `policy_token` when it last let the
        # peer in, which skips asking it again until its policy changes). Only the addresses
        # go into snapshots. Bounded by `_inbound._remember_source`.
        self.src_cache: dict[PeerId, tuple[tuple[bytes, ...], object]] = {}
        self.suffix_cache: dict[tuple[str, str], bytes] = {}
        self.type_hash_cache: dict[type, int] = {}
        # `Engine.next_deadline_ns`'s answer, kept until the next poll or install changes it
        self.deadline_memo: int | None = None
        self.deadline_known = False
        # event type -> bound handler, for `handle_ingress` (built on first use)
        self.ingress_handlers: dict[type, Callable[[Any], None]] | None = None
        # `msgpack.packb` builds a Packer per call; one per engine (used only by the thread
        # that polls, reset after every call, also on error) packs payloads and emits cheaper.
        self.pack_value: Callable[[Any], bytes] = msgpack.Packer(autoreset=True).pack

    # -- ids -----------------------------------------------------------------------------------
    def mint_exec_id(self) -> int:
        """A fresh ExecId."""
        exec_id = self.next_exec_id
        self.next_exec_id = exec_id + 1
        return exec_id

    def allocate_command(self) -> int:
        """A fresh CommandId."""
        cmd = self.next_command_id
        self.next_command_id = cmd + 1
        return cmd

    # -- executions ----------------------------------------------------------------------------
    def start_exec(
        self, site: int, inputs: dict[str, Any], parent: int, inbound: Inbound | None
    ) -> int:
        """Create an execution of `site` with `inputs` and queue it on the frontier."""
        exec_id = self.next_exec_id
        self.next_exec_id = exec_id + 1
        self.execs[exec_id] = Exec(parent, inbound)
        self.slots[(site, exec_id)] = inputs
        self.frontier.append((site, exec_id))
        return exec_id

    def queue_exec(self, site: int, exec_id: int, inputs: dict[str, Any]) -> None:
        """Queue an already-minted execution (host `invoke`) on the frontier."""
        self.execs[exec_id] = Exec(0, None)
        self.slots[(site, exec_id)] = inputs
        self.frontier.append((site, exec_id))

    def finish_exec(self, exec_id: int) -> None:
        """Mark an execution finished; phase 0 of the next cycle drops it."""
        state = self.execs.get(exec_id)
        if state is not None and not state.finished:
            state.finished = True
            self.finished.append(exec_id)

    def inbound_of(self, exec_id: int) -> Inbound | None:
        """The inbound context of an execution (None if not envelope-triggered)."""
        state = self.execs.get(exec_id)
        return None if state is None else state.inbound

    # -- health outcomes -----------------------------------------------------------------------
    def record_success(self, peer: PeerId) -> None:
        """A connection, envelope or response from `peer`: clear backoff, maybe `PeerUp`."""
        # Only a peer with a failure since its last success has anything to clear; skipping
        # the rewrite for the others keeps the per-envelope cost flat (their last_event_ns
        # then tracks the last failure/recovery, not every envelope).
        key = peer.to_bytes()
        if key not in self.suspects:
            return
        self.suspects.discard(key)
        self.backoff.record_success(peer)
        if self.governor.record_success(peer, self.now_ns) is _CAME_UP:
            self.transitions.append(PeerUp(peer))
        if peer in self.held:
            self.release_held(peer)

    def record_failure(self, peer: PeerId) -> None:
        """A failed send/dial or a request timeout for `peer`: backoff, maybe `PeerDown`."""
        self.suspects.add(peer.to_bytes())
        self.backoff.record_failure(peer, self.now_ns)
        if self.governor.record_failure(peer, self.now_ns) is _WENT_DOWN:
            self.transitions.append(PeerDown(peer))

    def release_held(self, peer: PeerId) -> None:
        """Re-run the outbound policy for `peer`'s held envelopes (see `_outbound`)."""
        raise NotImplementedError  # provided by OutboundMixin
