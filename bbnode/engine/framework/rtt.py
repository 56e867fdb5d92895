"""`RttTracker`: per-peer smoothed round-trip time, RFC 6298 style.

Estimator (RFC 6298 section 2, in integer nanoseconds):

- first sample `R`: `srtt = R`, `rttvar = R / 2`;
- later samples: `rttvar = 3/4 rttvar + 1/4 |srtt - R|` (using the *old* srtt), then
  `srtt = 7/8 srtt + 1/8 R` — the upstream gains alpha = 1/8, beta = 1/4;
- `rto = srtt + max(G, 4 * rttvar)`, clamped to `[min_rto_ns, max_rto_ns]`.

Constants: `G` (clock granularity) defaults to 1 ms, a coarse event-loop tick; the RTO is
clamped to at most 60 s (RFC 6298 (2.5) allows an upper bound of at least 60 s). RFC 6298's
1 s minimum RTO is meant for TCP over the internet; bbnode leaves `min_rto_ns` at 0 by default
and lets the caller choose.

Memory is bounded: at most `max_peers` peers are tracked; observing a new peer beyond that
forgets the least-recently-observed one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

from bbnode.engine.framework._check import (
    state_int,
    state_list,
    state_peer,
    state_row,
    usage_int,
)
from bbnode.engine.framework.errors import FrameworkStateError, FrameworkUsageError
from bbnode.ids import PeerId

__all__ = [
    "DEFAULT_RTT_GRANULARITY_NS",
    "DEFAULT_RTT_MAX_PEERS",
    "DEFAULT_RTT_MAX_RTO_NS",
    "RttTracker",
]

DEFAULT_RTT_GRANULARITY_NS: Final = 1_000_000
"""`G` in the RTO formula: 1 ms."""
DEFAULT_RTT_MAX_RTO_NS: Final = 60_000_000_000
"""RTO ceiling: 60 s (RFC 6298 (2.5))."""
DEFAULT_RTT_MAX_PEERS: Final = 16_384
"""Peers tracked (matches the address book cap)."""


class RttTracker:
    """Per-peer `(srtt_ns, rttvar_ns)` fed by `observe`, read by `rto_ns`."""

    __slots__ = ("_estimates", "_granularity_ns", "_max_peers", "_max_rto_ns", "_min_rto_ns")

    def __init__(
        self,
        granularity_ns: int = DEFAULT_RTT_GRANULARITY_NS,
        min_rto_ns: int = 0,
        max_rto_ns: int = DEFAULT_RTT_MAX_RTO_NS,
        max_peers: int = DEFAULT_RTT_MAX_PEERS,
    ) -> None:
        """Configure the RTO formula's G, clamp bounds, and the peer cap."""
        self._granularity_ns = usage_int("granularity_ns", granularity_ns)
        self._min_rto_ns = usage_int("min_rto_ns", min_rto_ns)
        self._max_rto_ns = usage_int("max_rto_ns", max_rto_ns)
        if self._max_rto_ns < self._min_rto_ns:
            raise FrameworkUsageError(
                f"max_rto_ns ({max_rto_ns}) must be >= min_rto_ns ({min_rto_ns})"
            )
        self._max_peers = usage_int("max_peers", max_peers, minimum=1)
        # peer -> [srtt_ns, rttvar_ns]; order = least-recently-observed first.
        self._estimates: OrderedDict[PeerId, list[int]] = OrderedDict()

    def observe(self, peer: PeerId, sample_ns: int) -> None:
        """Fold one RTT sample (ns, >= 0) into `peer`'s estimate."""
        if isinstance(sample_ns, bool) or not isinstance(sample_ns, int) or sample_ns < 0:
            raise FrameworkUsageError(f"observe: sample_ns must be an int >= 0, got {sample_ns!r}")
        estimates = self._estimates
        current = estimates.get(peer)
        if current is None:
            if len(estimates) >= self._max_peers:
                estimates.popitem(last=False)
            estimates[peer] = [sample_ns, sample_ns // 2]
            return
        # Updated in place: one hash of `peer` (a Python-level `__hash__`) fewer than a store.
        srtt, rttvar = current
        current[1] = (3 * rttvar + abs(srtt - sample_ns)) // 4
        current[0] = (7 * srtt + sample_ns) // 8
        estimates.move_to_end(peer)

    def srtt_ns(self, peer: PeerId) -> int | None:
        """Smoothed RTT, or None before the first sample."""
        current = self._estimates.get(peer)
        return None if current is None else current[0]

    def rttvar_ns(self, peer: PeerId) -> int | None:
        """RTT variation, or None before the first sample."""
        current = self._estimates.get(peer)
        return None if current is None else current[1]

    def rto_ns(self, peer: PeerId, default: int) -> int:
        """`srtt + max(G, 4 rttvar)` clamped to [min_rto, max_rto]; `default` if no sample."""
        current = self._estimates.get(peer)
        if current is None:
            return default
        srtt, rttvar = current
        rto = srtt + max(self._granularity_ns, 4 * rttvar)
        return min(max(rto, self._min_rto_ns), self._max_rto_ns)

    def forget(self, peer: PeerId) -> bool:
        """Drop `peer`'s estimate; True if there was one."""
        return self._estimates.pop(peer, None) is not None

    def __len__(self) -> int:
        return len(self._estimates)

    def __contains__(self, peer: object) -> bool:
        return peer in self._estimates

    def export_state(self) -> list[list[Any]]:
        """`[[peer_bytes, srtt_ns, rttvar_ns], ...]`, least-recently-observed first."""
        return [[p.to_bytes(), s, v] for p, (s, v) in self._estimates.items()]

    def restore_state(self, rows: list[Any]) -> None:
        """Replace every estimate with exported rows (the newest `max_peers` are kept)."""
        where = "rtt"
        fresh: OrderedDict[PeerId, list[int]] = OrderedDict()
        for i, raw in enumerate(state_list(where, rows)):
            at = f"{where}[{i}]"
            peer_raw, srtt, rttvar = state_row(at, raw, 3)
            peer = state_peer(f"{at}.peer", peer_raw)
            if peer in fresh:
                raise FrameworkStateError(f"{at}.peer: duplicate peer {peer}")
            fresh[peer] = [state_int(f"{at}.srtt_ns", srtt), state_int(f"{at}.rttvar_ns", rttvar)]
        while len(fresh) > self._max_peers:
            fresh.popitem(last=False)
        self._estimates = fresh
