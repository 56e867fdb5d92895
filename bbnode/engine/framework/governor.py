"""`PeerGovernor`: the single source of truth for peer policy and peer health.

Ported from the seed `peer_governor.rs`. The engine consults it at both delivery boundaries:

- **Inbound**: before any slot is written, every `EnvelopeFrom(src_peer, ...)` goes through
  `check_inbound`; blocked and non-allowlisted peers are dropped.
- **Outbound**: every send is gated by `check_outbound` (blocklist, then allowlist, then the
  `BackoffTable` cooldown, in that order), which tells the caller when to retry.

Health (consecutive failures, last event, down flag) is fed by send completions through
`record_success` / `record_failure`, whose `LifecycleTransition` the engine surfaces as
`PeerUp` / `PeerDown` steps: `WENT_DOWN` exactly once per failure streak, `CAME_UP` only for a
peer that was down.

Beyond upstream: bans carry an optional expiry and a source (see `blocklist.py`), so config
reloads replace config bans without touching runtime ones.

Pure and deterministic: no clock is read; every time is an `now_ns` argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bbnode.engine.framework._check import (
    state_bool,
    state_field,
    state_int,
    state_list,
    state_mapping,
    state_opt_int,
    state_peer,
    state_row,
    state_rows,
    state_str,
    usage_int,
)
from bbnode.engine.framework.backoff import BackoffTable
from bbnode.engine.framework.blocklist import BlockEntry, BlockSource, BlockTable, check_source
from bbnode.engine.framework.decisions import (
    ALLOW,
    DENY_BLOCKLISTED,
    DENY_NOT_ALLOWLISTED,
    Cooldown,
    Decision,
    Deny,
    LifecycleTransition,
)
from bbnode.engine.framework.errors import FrameworkStateError, FrameworkUsageError
from bbnode.engine.framework.rows import (
    BlockEntrySnapshot,
    HealthEntry,
    adopt_checked,
    bool_column_ok,
    int_column_ok,
)
from bbnode.ids import PeerId

__all__ = ["DEFAULT_FAILURE_THRESHOLD", "PeerGovernor", "PeerHealth"]

DEFAULT_FAILURE_THRESHOLD: Final = 5
"""Consecutive send failures before a peer is marked down (upstream constant)."""
# A restored health row's fields after the peer, checked a column at once
# (`rows.adopt_checked`): consecutive_failures and last_event_ns >= 0, down a bool.
_HEALTH_CHECKS: Final = (int_column_ok, int_column_ok, bool_column_ok)


@dataclass(frozen=True, slots=True)
class PeerHealth:
    """One peer's health, as read by `Node.peer_health()` for operators."""

    consecutive_failures: int
    """`record_failure` calls since the last `record_success`."""
    last_event_ns: int
    """`now_ns` of the last `record_success` / `record_failure`."""
    down: bool
    """True once the streak reached the threshold; stays true until a success."""


def _clamp_threshold(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameworkUsageError(f"failure_threshold must be an int, got {type(value).__name__}")
    return max(1, value)


class PeerGovernor:
    """Peer policy (blocklist, optional allowlist) and per-peer health.

    Decisions are `Allow()` or `Deny(reason)`; the hot-path checks are O(1) and allocate
    nothing (shared decision instances are returned).

    `policy_token` lets a caller remember "`check_inbound` allowed this peer" and trust it
    later without asking again: it is a fresh object after every change that can deny a peer
    allowed before (a ban added or replaced, the allowlist set or cleared). Lifting a ban,
    the expiry sweep and health updates keep it, since they never turn an allow into a deny;
    nor does time, as long as the caller's clock never goes back (a ban in force at a later
    `now_ns` was in force at an earlier one). A new governor has a token of its own.
    """

    __slots__ = ("_allowlist", "_blocks", "_failure_threshold", "_health", "policy_token")

    def __init__(self, failure_threshold: int = DEFAULT_FAILURE_THRESHOLD) -> None:
        """No bans, no allowlist (open), no health; threshold clamped to at least 1."""
        self._failure_threshold = _clamp_threshold(failure_threshold)
        self._blocks = BlockTable()
        self._allowlist: frozenset[PeerId] | None = None
        # peer bytes -> its snapshot row (what capture hands over and restore adopts as is)
        self._health: dict[bytes, HealthEntry] = {}
        self.policy_token = object()

    # configuration --------------------------------------------------------------------------
    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that mark a peer down; setting it clamps to >= 1."""
        return self._failure_threshold

    @failure_threshold.setter
    def failure_threshold(self, value: int) -> None:
        self._failure_threshold = _clamp_threshold(value)

    def set_allowlist(self, peers: Iterable[PeerId] | None) -> None:
        """Set (any iterable of PeerIds) or clear (None = open policy) the allowlist.

        An empty set is a closed policy: every peer is then `NotAllowlisted`.
        """
        if peers is None:
            self._allowlist = None
            self.policy_token = object()
            return
        allow = frozenset(peers)
        for peer in allow:
            if not isinstance(peer, PeerId):
                raise FrameworkUsageError(
                    f"allowlist entries must be PeerIds, got {type(peer).__name__}"
                )
        self._allowlist = allow
        self.policy_token = object()

    @property
    def allowlist(self) -> frozenset[PeerId] | None:
        """The allowlist, or None when the policy is open."""
        return self._allowlist

    # blocklist ------------------------------------------------------------------------------
    def block(self, peer: PeerId, until_ns: int | None = None, source: str = "runtime") -> None:
        """Ban `peer` until `until_ns` (None = until unblocked).

        `source` is "runtime" (operator/component bans, kept across config reloads) or
        "config" (replaced by `replace_config_blocks`). A new ban of the same source replaces
        the previous one, so re-banning can shorten or lengthen it.
        """
        self._blocks.add(peer, until_ns, source)
        self.policy_token = object()

    def unblock(self, peer: PeerId) -> bool:
        """Lift every ban on `peer` (both sources); True if there was one."""
        return self._blocks.remove(peer)

    def replace_config_blocks(self, peers: Iterable[PeerId]) -> None:
        """Config reload: drop every "config" ban, then ban each of `peers` permanently.

        Runtime bans are untouched, including those of peers the new config also lists.
        """
        self._blocks.replace_source("config", peers)
        self.policy_token = object()

    def block_entry(self, peer: PeerId) -> BlockEntry | None:
        """The ban that governs `peer` (a permanent one first, else the latest-ending)."""
        return self._blocks.entry(peer)

    def block_entries(self) -> list[BlockEntry]:
        """Every ban (both sources; expired-but-unswept ones too), sorted by peer bytes."""
        return self._blocks.entries()

    def is_blocked(self, peer: PeerId, now_ns: int | None = None) -> bool:
        """True if a ban on `peer` is in force at `now_ns`.

        An entry with `until_ns <= now_ns` is expired and not blocking even before the
        `expire_blocks` sweep removes it. Without `now_ns`, every ban counts as in force.
        """
        return self._blocks.is_blocked(peer, now_ns)

    def bans_due(self, now_ns: int) -> bool:
        """True when `expire_blocks(now_ns)` may have work (cheaper than one that has none)."""
        return self._blocks.due(now_ns)

    def expire_blocks(self, now_ns: int) -> list[PeerId]:
        """Remove bans that expired at or before `now_ns`; return peers now fully unblocked.

        Cost is proportional to the number of expired bans (a heap of expiries), so the engine
        can call this on every tick.
        """
        return self._blocks.expire(now_ns)

    def next_block_expiry_ns(self) -> int | None:
        """Earliest expiry among timed bans (a deadline the engine may arm), or None."""
        return self._blocks.next_expiry_ns()

    # decisions ------------------------------------------------------------------------------
    def check_inbound(self, peer: PeerId, now_ns: int | None = None) -> Decision:
        """Inbound consultation, before any slot is written: blocklist, then allowlist."""
        if self._blocks.is_blocked(peer, now_ns):
            return DENY_BLOCKLISTED
        allow = self._allowlist
        if allow is not None and peer not in allow:
            return DENY_NOT_ALLOWLISTED
        return ALLOW

    def check_outbound(self, peer: PeerId, backoff: BackoffTable, now_ns: int) -> Decision:
        """Outbound gate: blocklist, then allowlist, then backoff cooldown.

        A peer in cooldown gets `Deny(Cooldown(retry_ns))` with the backoff's next_retry_ns,
        telling the gate when to try again.
        """
        if self._blocks.is_blocked(peer, now_ns):
            return DENY_BLOCKLISTED
        allow = self._allowlist
        if allow is not None and peer not in allow:
            return DENY_NOT_ALLOWLISTED
        if not backoff.should_retry(peer, now_ns):
            state = backoff.state(peer)
            retry_ns = state.next_retry_ns if state is not None else now_ns
            return Deny(Cooldown(retry_ns))
        return ALLOW

    # health ---------------------------------------------------------------------------------
    def record_success(self, peer: PeerId, now_ns: int) -> LifecycleTransition:
        """A successful exchange: clear the streak; `CAME_UP` only if the peer was down."""
        key = peer.to_bytes()
        previous = self._health.get(key)
        self._health[key] = HealthEntry(key, 0, now_ns, False)
        if previous is not None and previous.down:
            return LifecycleTransition.CAME_UP
        return LifecycleTransition.NONE

    def record_failure(self, peer: PeerId, now_ns: int) -> LifecycleTransition:
        """A failed exchange: extend the streak; `WENT_DOWN` once, when it reaches the threshold."""
        key = peer.to_bytes()
        previous = self._health.get(key)
        if previous is None:
            failures, was_down = 1, False
        else:
            failures, was_down = previous.consecutive_failures + 1, previous.down
        just_went_down = not was_down and failures >= self._failure_threshold
        self._health[key] = HealthEntry(key, failures, now_ns, was_down or just_went_down)
        return LifecycleTransition.WENT_DOWN if just_went_down else LifecycleTransition.NONE

    def peer_health(self, peer: PeerId) -> PeerHealth | None:
        """`peer`'s health, or None if nothing was ever recorded for it."""
        row = self._health.get(peer.to_bytes())
        return None if row is None else PeerHealth(row[1], row[2], row[3])

    def is_down(self, peer: PeerId) -> bool:
        """True while `peer` is marked down."""
        row = self._health.get(peer.to_bytes())
        return row is not None and row.down

    def iter_health(self) -> Iterator[tuple[PeerId, PeerHealth]]:
        """Every `(peer, health)` pair, in first-recorded order."""
        return iter([(PeerId(r[0]), PeerHealth(r[1], r[2], r[3])) for r in self._health.values()])

    def tracked_peers(self) -> int:
        """Number of peers with recorded health."""
        return len(self._health)

    def restore_health(self, peer: PeerId, health: PeerHealth) -> None:
        """Overwrite `peer`'s health (snapshot restore)."""
        if not isinstance(health, PeerHealth):
            raise FrameworkUsageError(
                f"restore_health: expected PeerHealth, got {type(health).__name__}"
            )
        usage_int("restore_health: consecutive_failures", health.consecutive_failures)
        usage_int("restore_health: last_event_ns", health.last_event_ns)
        key = peer.to_bytes()
        self._health[key] = HealthEntry(
            key, health.consecutive_failures, health.last_event_ns, health.down
        )

    def forget_health(self, peer: PeerId) -> bool:
        """Drop `peer`'s health record (e.g. when it leaves the address book)."""
        return self._health.pop(peer.to_bytes(), None) is not None

    def suspect_keys(self) -> set[bytes]:
        """Bytes of the peers with a failure streak (`consecutive_failures > 0`)."""
        return {row[0] for row in self._health.values() if row[1] > 0}

    # snapshot -------------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """Plain msgpack-able state; PeerIds as multihash bytes, rows sorted by peer bytes.

        `blocklist` (every banned peer) keeps the upstream `PeerGovernorSnapshot` field;
        `block_entries` adds expiry and source, and is what `from_state` prefers.
        """
        state = self.export_rows()
        state["block_entries"] = [list(row) for row in state["block_entries"]]
        state["health"] = [list(row) for row in state["health"]]
        return state

    def export_rows(self) -> dict[str, Any]:
        """`export_state()` with `block_entries` and `health` as row tuples (what a snapshot
        stores; the health rows are the governor's own, shared, never mutated in place)."""
        allow = self._allowlist
        return {
            "blocklist": [peer.to_bytes() for peer in self._blocks.peers()],
            "block_entries": [
                BlockEntrySnapshot(e.peer.to_bytes(), e.until_ns, e.source)
                for e in self._blocks.entries()
            ],
            "allowlist": None if allow is None else sorted(p.to_bytes() for p in allow),
            "health": self.health_rows(),
            "failure_threshold": self._failure_threshold,
        }

    def health_rows(self) -> list[HealthEntry]:
        """The health rows themselves, sorted by peer bytes."""
        return sorted(self._health.values())

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PeerGovernor:
        """Rebuild a governor from `export_state()` output.

        A state without `block_entries` (an upstream-shaped snapshot) restores each
        `blocklist` peer as a permanent runtime ban. Raises FrameworkStateError naming the
        first bad field.
        """
        where = "peer_governor"
        state = state_mapping(where, state)
        threshold = state_int(
            f"{where}.failure_threshold", state_field(where, state, "failure_threshold")
        )
        governor = cls(max(1, threshold))
        blocks: list[tuple[PeerId, int | None, BlockSource]] = []
        if "block_entries" in state:
            for i, raw in enumerate(state_list(f"{where}.block_entries", state["block_entries"])):
                at = f"{where}.block_entries[{i}]"
                peer_raw, until_raw, source_raw = state_row(at, raw, 3)
                try:
                    source = check_source(state_str(f"{at}.source", source_raw))
                except FrameworkUsageError as exc:
                    raise FrameworkStateError(f"{at}.source: {exc}") from exc
                blocks.append(
                    (
                        state_peer(f"{at}.peer", peer_raw),
                        state_opt_int(f"{at}.until_ns", until_raw),
                        source,
                    )
                )
        else:
            raw_list = state_list(f"{where}.blocklist", state_field(where, state, "blocklist"))
            blocks = [
                (state_peer(f"{where}.blocklist[{i}]", raw), None, "runtime")
                for i, raw in enumerate(raw_list)
            ]
        allow_raw = state.get("allowlist")
        allow = (
            None
            if allow_raw is None
            else [
                state_peer(f"{where}.allowlist[{i}]", raw)
                for i, raw in enumerate(state_list(f"{where}.allowlist", allow_raw))
            ]
        )
        health = _health_by_peer(where, state.get("health", []))
        # Straight into the table: `block()` would also replace `policy_token` once per ban,
        # and a new governor's token is already one nobody holds.
        add_block = governor._blocks.add
        for peer, until_ns, source in blocks:
            add_block(peer, until_ns, source)
        governor.set_allowlist(allow)
        governor._health = health
        return governor


def _health_by_peer(where: str, raw: object) -> dict[bytes, HealthEntry]:
    """Restore rows for `health`, by peer: adopted as they are when every column checks out at
    once, else checked row by row (naming the first bad one)."""
    rows = state_rows(f"{where}.health", raw)
    adopted = adopt_checked(rows, HealthEntry, _HEALTH_CHECKS)
    if adopted is not None:
        return adopted[1]
    return _health_one_by_one(where, rows)


def _health_one_by_one(where: str, rows: Sequence[Any]) -> dict[bytes, HealthEntry]:
    """`rows` by peer, each health row checked on its own, naming the first bad one."""
    out: dict[bytes, HealthEntry] = {}
    for i, row in enumerate(rows):
        at = f"{where}.health[{i}]"
        peer_raw, failures_raw, last_raw, down_raw = state_row(at, row, 4)
        key = state_peer(f"{at}.peer", peer_raw).to_bytes()
        if key in out:
            raise FrameworkStateError(f"{at}.peer: duplicate peer {PeerId(key)}")
        out[key] = HealthEntry(
            key,
            state_int(f"{at}.consecutive_failures", failures_raw),
            state_int(f"{at}.last_event_ns", last_raw),
            state_bool(f"{at}.down", down_raw),
        )
    return out
