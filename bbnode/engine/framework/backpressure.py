"""`BackpressureTracker`: notice peers whose queue runs high; throttle repeat offenders.

Upstream rules: a peer's queue depth at or above the high-water mark (75 % of capacity) earns
it a *notice*, at most one per `min_interval_ns` (1 s); after K = 3 notices the peer counts as
*throttled* (the engine stops feeding it and may tell it to slow down).

Beyond upstream (the Rust crate never lets a peer off): **recovery**. Once a peer's observed
depth has stayed below the high-water mark for a whole `min_interval_ns` — measured from the
first low observation after its last high one, and confirmed by an observation at least that
long after — it is un-throttled and its notice count is reset. A peer that was noticed but not
yet throttled gets its notices reset the same way, silently.

API: feed `observe(peer, depth, now_ns)` whenever a queue depth is measured; it returns what
just happened as a `BackpressureSignal`:

- `NOTICE`: a notice is due for this peer now (counts toward K);
- `THROTTLED`: the K-th notice — the peer just became throttled (this replaces `NOTICE`);
- `RECOVERED`: a throttled peer just recovered;
- `NONE`: nothing new.

Peers with no notices and no high depth hold no state, so healthy peers cost no memory.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Final

from bbnode.engine.framework._check import (
    state_bool,
    state_int,
    state_list,
    state_opt_int,
    state_peer,
    state_row,
    usage_int,
)
from bbnode.engine.framework.errors import FrameworkStateError, FrameworkUsageError
from bbnode.ids import PeerId

__all__ = [
    "DEFAULT_BACKPRESSURE_HIGH_WATER",
    "DEFAULT_BACKPRESSURE_MIN_INTERVAL_NS",
    "DEFAULT_NOTICES_BEFORE_ACTION",
    "BackpressureSignal",
    "BackpressureTracker",
]

DEFAULT_BACKPRESSURE_HIGH_WATER: Final = 0.75
"""Fraction of capacity at which a peer is noticed (upstream: 75 %)."""
DEFAULT_NOTICES_BEFORE_ACTION: Final = 3
"""Notices before a peer is throttled (upstream K = 3)."""
DEFAULT_BACKPRESSURE_MIN_INTERVAL_NS: Final = 1_000_000_000
"""Minimum spacing of notices, and the recovery quiet period (upstream: 1 s)."""


class BackpressureSignal(enum.Enum):
    """What one `observe` call changed."""

    NONE = "none"
    NOTICE = "notice"
    THROTTLED = "throttled"
    RECOVERED = "recovered"


class _PeerPressure:
    """Per-peer state (private)."""

    __slots__ = ("below_since_ns", "last_notice_ns", "notices", "throttled")

    def __init__(self) -> None:
        self.notices = 0
        self.last_notice_ns: int | None = None
        self.throttled = False
        self.below_since_ns: int | None = None


class BackpressureTracker:
    """Per-peer notice counting with throttling after K notices and recovery after a quiet spell."""

    __slots__ = ("_capacity", "_high_water_depth", "_k", "_min_interval_ns", "_peers")

    def __init__(
        self,
        capacity: int,
        high_water: float = DEFAULT_BACKPRESSURE_HIGH_WATER,
        notices_before_action: int = DEFAULT_NOTICES_BEFORE_ACTION,
        min_interval_ns: int = DEFAULT_BACKPRESSURE_MIN_INTERVAL_NS,
    ) -> None:
        """`capacity` is the per-peer queue size; the mark is `ceil(capacity * high_water)`."""
        self._capacity = usage_int("capacity", capacity, minimum=1)
        if (
            isinstance(high_water, bool)
            or not isinstance(high_water, int | float)
            or not 0.0 < high_water <= 1.0
        ):
            raise FrameworkUsageError(f"high_water must be in (0, 1], got {high_water!r}")
        self._high_water_depth = max(1, math.ceil(capacity * high_water))
        self._k = usage_int("notices_before_action", notices_before_action, minimum=1)
        self._min_interval_ns = usage_int("min_interval_ns", min_interval_ns)
        self._peers: dict[PeerId, _PeerPressure] = {}

    @property
    def high_water_depth(self) -> int:
        """Depth at or above which a peer is under pressure."""
        return self._high_water_depth

    @property
    def notices_before_action(self) -> int:
        """K: notices that make a peer throttled."""
        return self._k

    def observe(self, peer: PeerId, depth: int, now_ns: int) -> BackpressureSignal:
        """Record `peer`'s queue depth at `now_ns`; return what changed."""
        state = self._peers.get(peer)
        if depth >= self._high_water_depth:
            if state is None:
                state = self._peers[peer] = _PeerPressure()
            state.below_since_ns = None
            if state.throttled:
                return BackpressureSignal.NONE
            last = state.last_notice_ns
            if last is not None and now_ns - last < self._min_interval_ns:
                return BackpressureSignal.NONE
            state.notices += 1
            state.last_notice_ns = now_ns
            if state.notices >= self._k:
                state.throttled = True
                return BackpressureSignal.THROTTLED
            return BackpressureSignal.NOTICE
        if state is None:
            return BackpressureSignal.NONE
        if state.below_since_ns is None:
            state.below_since_ns = now_ns
        if now_ns - state.below_since_ns < self._min_interval_ns:
            return BackpressureSignal.NONE
        was_throttled = state.throttled
        del self._peers[peer]
        return BackpressureSignal.RECOVERED if was_throttled else BackpressureSignal.NONE

    def is_throttled(self, peer: PeerId) -> bool:
        """True while `peer` is throttled."""
        state = self._peers.get(peer)
        return state is not None and state.throttled

    def notices(self, peer: PeerId) -> int:
        """Notices counted for `peer` in its current episode."""
        state = self._peers.get(peer)
        return 0 if state is None else state.notices

    def throttled_peers(self) -> list[PeerId]:
        """Every throttled peer, sorted."""
        return sorted(p for p, s in self._peers.items() if s.throttled)

    def forget(self, peer: PeerId) -> bool:
        """Drop `peer`'s state (e.g. on disconnect); True if it had any."""
        return self._peers.pop(peer, None) is not None

    def __len__(self) -> int:
        return len(self._peers)

    # snapshot -------------------------------------------------------------------------------
    def export_state(self) -> list[list[Any]]:
        """`[[peer_bytes, notices, last_notice_ns|None, throttled, below_since_ns|None]]`."""
        return sorted(
            [p.to_bytes(), s.notices, s.last_notice_ns, s.throttled, s.below_since_ns]
            for p, s in self._peers.items()
        )

    def restore_state(self, rows: list[Any]) -> None:
        """Replace every peer's state with exported rows; nothing changes if a row is bad."""
        where = "backpressure"
        fresh: dict[PeerId, _PeerPressure] = {}
        for i, raw in enumerate(state_list(where, rows)):
            at = f"{where}[{i}]"
            peer_raw, notices, last, throttled, below = state_row(at, raw, 5)
            peer = state_peer(f"{at}.peer", peer_raw)
            if peer in fresh:
                raise FrameworkStateError(f"{at}.peer: duplicate peer {peer}")
            state = _PeerPressure()
            state.notices = state_int(f"{at}.notices", notices)
            state.last_notice_ns = state_opt_int(f"{at}.last_notice_ns", last)
            state.throttled = state_bool(f"{at}.throttled", throttled)
            state.below_since_ns = state_opt_int(f"{at}.below_since_ns", below)
            fresh[peer] = state
        self._peers = fresh
