"""Capture an `Engine` into a `NodeSnapshot`, and restore one into a fresh Engine.

Capture happens between polls, where every per-cycle list is empty, so the snapshot is the
whole state. Restore (SPEC §3.7) works on a freshly built Engine and:

- checks `spec_version` (`SpecVersionMismatch`) and that `peer_id_bytes` is this node's
  identity (`RestoreError`);
- re-installs the snapshot's components in their order (matched by name, `restore(state)`
  called, no `on_install`); a component missing from the supplied list is a `RestoreError`;
- rebuilds governor, backoff, address book (with ref counts) and every other primitive from
  scratch; then the *config* supplies policy: its failure threshold, its blocklist replaces
  the snapshot's `config`-sourced bans (runtime bans stay), its allowlist (if not None)
  replaces the snapshot's;
- re-applies ids, clock, RNG state, timers, requests, held and in-flight executions, and the
  queued ingress events; `pending_outbound` is replayed by the first poll as
  `SendEnvelope(redelivered=True)`; `incarnation` is bumped;
- installs supplied components the snapshot did not have, last, with `on_install`.

Any malformed part raises `RestoreError` naming it; the half-built node is then discarded by
`Node.from_snapshot` (it is never returned).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from bbnode.engine._codec import pack, unpack
from bbnode.engine._state import Exec, Held, HeldSend, Inbound, PendingAsync, PendingCompletion
from bbnode.engine.component import Component
from bbnode.engine.engine import Engine
from bbnode.engine.envelope import EnvelopeDecodeError, decode_envelope, encode_envelope
from bbnode.engine.errors import RestoreError, SnapshotDecodeError, SpecVersionMismatch
from bbnode.engine.framework import (
    AddressBook,
    BackoffTable,
    FrameworkError,
    PeerGovernor,
)
from bbnode.engine.ingress import IngressQueue, event_from_snapshot, event_to_snapshot
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
from bbnode.ids import Address, IdError, PeerId

__all__ = ["capture_snapshot", "restore_snapshot"]


# -- capture ---------------------------------------------------------------------------------------
def _inbound_row(inbound: Inbound | None) -> list[Any] | None:
    if inbound is None:
        return None
    return [
        inbound.src_peer.to_bytes(),
        inbound.wire_req_id,
        inbound.arrival_ns,
        inbound.remaining_deadline_ns,
        inbound.reply_suffix,
    ]


def _governor_snapshot(engine: Engine) -> PeerGovernorSnapshot:
    state = engine.governor.export_rows()
    return PeerGovernorSnapshot(
        blocklist=state["blocklist"],
        allowlist=state["allowlist"],
        health=state["health"],
        failure_threshold=state["failure_threshold"],
        block_entries=state["block_entries"],
    )


def _framework_snapshot(engine: Engine) -> FrameworkSnapshot:
    rng_version, rng_internal, rng_gauss = engine.rng.getstate()
    return FrameworkSnapshot(
        counters=engine.counters.export_state(),
        fired_phases=list(engine.fired_phases),
        # the tables' own rows, shared: they are never mutated in place (see `rows.py`)
        address_book=engine.book.export_rows(),
        peer_governor=_governor_snapshot(engine),
        backoff_table=engine.backoff.export_rows(),
        pending_outbound=[
            PendingOutboundEntry(encode_envelope(envelope), True, peer.to_bytes())
            for peer, envelope, _redelivered in engine.pending_outbound
        ],
        peer_id_bytes=engine.self_peer.to_bytes(),
        next_command_id=engine.next_command_id,
        next_exec_id=engine.next_exec_id,
        spec_version=CURRENT_SNAPSHOT_SPEC_VERSION,
        now_ns=engine.now_ns,
        rng_state=[rng_version, list(rng_internal), rng_gauss],
        timers=[[h, at, pack(payload)] for h, at, payload in engine.scheduler.export_state()],
        next_timer_handle=engine.scheduler.next_handle,
        intervals=[[timer, handle] for timer, handle in engine.intervals.items()],
        inbound_dedup=engine.dedup.export_state(),
        requests=engine.requests.export_state(),
        rtt=engine.rtt.export_state(),
        held_outbound=[
            [
                peer.to_bytes(),
                held.timer,
                [[encode_envelope(s.envelope), s.op_ref, s.exec_id] for s in held.live()],
            ]
            for peer, held in engine.held.items()
        ],
        held_dropped=engine.held_dropped,
        # Only peers with addresses: an empty entry only remembers a policy token, which a
        # restore does not keep anyway.
        src_address_cache=[
            [p.to_bytes(), list(raw)] for p, (raw, _) in engine.src_cache.items() if raw
        ],
    )


def capture_snapshot(engine: Engine, ingress: IngressQueue) -> NodeSnapshot:
    """Everything `engine` and its queued ingress hold, as a `NodeSnapshot`."""
    queued = ingress.peek_all()
    transient = TransientSnapshot(
        frontier=list(engine.frontier),
        slot_table=[[site, ex, pack(inputs)] for (site, ex), inputs in engine.slots.items()],
        pending_async={
            cmd: PendingAsyncSnapshot(p.op_ref, p.exec_id, [p.resume_site], p.deadline_ns)
            for cmd, p in engine.pending_async.items()
        },
        execution_state={
            ex: ExecutionStateSnapshot(
                state.outputs_written, state.parent, _inbound_row(state.inbound), state.finished
            )
            for ex, state in engine.execs.items()
        },
        framework=_framework_snapshot(engine),
        bus=TypedBusSnapshot(
            event_subscriptions={t: list(s) for t, s in engine.subscriptions.items()},
            queued=[list(item) for item in engine.bus_queue],
        ),
        ingress=[event_to_snapshot(event) for event, _size in queued],
        wire_states={},
        pending_completions=[
            PendingCompletionSnapshot(
                c.cmd_id,
                [] if c.results is None else [(k, pack(v)) for k, v in c.results.items()],
                c.failure,
            )
            for c in engine.pending_completions
        ],
        ingress_sizes=[size for _event, size in queued],
        finished=list(engine.finished),
    )
    components = [
        ComponentSnapshot(
            inst.name, inst.component.TYPE_NAME, inst.ref, pack(inst.component.serialize())
        )
        for inst in engine.by_name.values()
    ]
    return NodeSnapshot(
        incarnation=engine.incarnation,
        config=engine.config.to_dict(),
        components=components,
        transient=transient,
        addresses=[a.to_bytes() for a in engine.addresses],
    )


# -- restore ---------------------------------------------------------------------------------------
def _peer(where: str, raw: Any) -> PeerId:
    try:
        return PeerId.from_bytes(raw)
    except (IdError, TypeError) as exc:
        raise RestoreError(f"{where}: {exc}") from None


def _inbound(where: str, row: list[Any] | None) -> Inbound | None:
    if row is None:
        return None
    try:
        src, wire_req_id, arrival, remaining, suffix = row
    except ValueError:
        raise RestoreError(f"{where}: expected 5 fields, got {len(row)}") from None
    return Inbound(_peer(where, src), wire_req_id, arrival, remaining, suffix)


def _install_components(
    engine: Engine, snap: NodeSnapshot, components: list[Component]
) -> list[Component]:
    by_name: dict[str, Component] = {}
    for component in components:
        if not isinstance(component, Component):
            raise RestoreError(f"components: {component!r} is not a Component")
        by_name[component.name] = component
    for entry in snap.components:
        if entry.name not in by_name:
            raise RestoreError(f"snapshot has component {entry.name!r}, which was not supplied")
        component = by_name.pop(entry.name)
        if entry.type_name != component.TYPE_NAME:
            raise RestoreError(
                f"component {entry.name!r}: snapshot type {entry.type_name!r}, "
                f"supplied {component.TYPE_NAME!r}"
            )
        if component.component_ref != entry.ref:
            raise RestoreError(
                f"component {entry.name!r}: snapshot ref {entry.ref:#x}, "
                f"supplied {component.component_ref:#x}"
            )
        engine.install(component, run_hook=False)
        component.restore(unpack(entry.state))
    return list(by_name.values())


def _restore_framework(engine: Engine, fw: FrameworkSnapshot) -> None:
    config = engine.config
    gov = fw.peer_governor
    governor = PeerGovernor.from_state(
        {
            "blocklist": gov.blocklist,
            "block_entries": gov.block_entries,
            "allowlist": gov.allowlist,
            "health": gov.health,
            "failure_threshold": gov.failure_threshold,
        }
    )
    governor.failure_threshold = config.failure_threshold
    governor.replace_config_blocks(config.blocklist)
    if config.allowlist is not None:
        governor.set_allowlist(set(config.allowlist))
    engine.governor = governor
    if fw.rng_state is not None:
        version, internal, gauss = fw.rng_state
        engine.rng.setstate((version, tuple(internal), gauss))
    backoff = BackoffTable(
        config.backoff_base_ns, config.backoff_max_ns, config.backoff_jitter, engine.rng
    )
    backoff.restore_state(fw.backoff_table)
    engine.backoff = backoff
    engine.book = AddressBook.from_state(fw.address_book, config.address_book_cap)
    engine.counters.restore_state(fw.counters)
    engine.dedup.restore_state(list(fw.inbound_dedup))
    if fw.requests:
        engine.requests.restore_state(fw.requests)
    engine.rtt.restore_state(fw.rtt)
    engine.scheduler.restore_state(
        [[h, at, unpack(payload)] for h, at, payload in fw.timers], fw.next_timer_handle
    )
    engine.intervals = {int(timer): int(handle) for timer, handle in fw.intervals}
    engine.fired_phases = list(fw.fired_phases)
    engine.now_ns = fw.now_ns
    engine.next_exec_id = max(engine.next_exec_id, fw.next_exec_id)
    engine.next_command_id = max(engine.next_command_id, fw.next_command_id)
    limits = config.envelope_limits
    for i, (peer_raw, timer, sends) in enumerate(fw.held_outbound):
        held = Held(int(timer), deque())
        for envelope_raw, op_ref, exec_id in sends:
            envelope = decode_envelope(envelope_raw, limits).envelope
            held.add(HeldSend(envelope, op_ref, exec_id))
        engine.held[_peer(f"held_outbound[{i}]", peer_raw)] = held
    engine.held_dropped = fw.held_dropped
    for i, entry in enumerate(fw.pending_outbound):
        envelope = decode_envelope(entry.envelope_bytes, limits).envelope
        if entry.peer:
            peer = _peer(f"pending_outbound[{i}].peer", entry.peer)
        else:  # seed-shaped entry: the destination is the envelope's first /p2p address
            found = [Address.from_bytes(a).peer_id for a in envelope.dest_peer_addresses]
            known = [p for p in found if p is not None]
            if not known:
                raise RestoreError(f"pending_outbound[{i}]: no destination peer")
            peer = known[0]
        engine.pending_outbound.append((peer, envelope, True))
    engine.suspects = governor.suspect_keys()
    engine.suspects.update(backoff.keys())
    engine.src_cache = {  # no policy token yet: each peer's first envelope asks the governor
        _peer(f"src_address_cache[{i}]", p): (tuple(raw), None)
        for i, (p, raw) in enumerate(fw.src_address_cache)
    }


def _restore_transient(engine: Engine, ingress: IngressQueue, tr: TransientSnapshot) -> None:
    for site, _ex in tr.frontier:
        if site not in engine.site_ops:
            raise RestoreError(f"frontier: site {site:#x} belongs to no installed component")
    engine.frontier = deque((int(site), int(ex)) for site, ex in tr.frontier)
    engine.slots = {(int(site), int(ex)): unpack(raw) for site, ex, raw in tr.slot_table}
    engine.execs = {
        ex: Exec(
            s.parent, _inbound(f"execution_state[{ex}]", s.inbound), s.outputs_written, s.finished
        )
        for ex, s in tr.execution_state.items()
    }
    engine.finished = list(tr.finished)
    engine.pending_async = {
        cmd: PendingAsync(p.op_ref, p.exec_id, p.output_sites[0], p.deadline_ns)
        for cmd, p in tr.pending_async.items()
    }
    engine.pending_completions = [
        PendingCompletion(
            c.cmd_id,
            None if c.failure is not None else {k: unpack(v) for k, v in c.results},
            c.failure,
        )
        for c in tr.pending_completions
    ]
    engine.subscriptions = {t: list(s) for t, s in tr.bus.event_subscriptions.items()}
    engine.bus_queue = [(str(t), str(m), bytes(v)) for t, m, v in tr.bus.queued]
    sizes = tr.ingress_sizes if len(tr.ingress_sizes) == len(tr.ingress) else None
    for i, raw in enumerate(tr.ingress):
        ingress.push(event_from_snapshot(raw), 0 if sizes is None else sizes[i])


def restore_snapshot(
    engine: Engine, ingress: IngressQueue, snap: NodeSnapshot, components: list[Component]
) -> None:
    """Load `snap` into the fresh `engine` (see the module docstring)."""
    fw = snap.transient.framework
    if fw.spec_version != CURRENT_SNAPSHOT_SPEC_VERSION:
        raise SpecVersionMismatch(fw.spec_version, CURRENT_SNAPSHOT_SPEC_VERSION)
    if fw.peer_id_bytes != engine.self_peer.to_bytes():
        raise RestoreError(
            f"snapshot belongs to peer {_peer('peer_id_bytes', fw.peer_id_bytes)}, "
            f"not {engine.self_peer}"
        )
    try:
        extra = _install_components(engine, snap, components)
        _restore_framework(engine, fw)
        _restore_transient(engine, ingress, snap.transient)
    except RestoreError:
        raise
    except (
        FrameworkError,
        SnapshotDecodeError,
        EnvelopeDecodeError,
        IdError,
        KeyError,
        IndexError,
        TypeError,
        ValueError,
    ) as exc:
        raise RestoreError(f"snapshot does not restore: {exc}") from exc
    engine.incarnation = snap.incarnation + 1
    engine.deadline_known = False  # timers, requests and suspensions were replaced
    for component in extra:
        engine.install(component)
