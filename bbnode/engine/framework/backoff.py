"""`BackoffTable`: per-peer exponential backoff after send failures.

Upstream semantics: each failure bumps `attempts` and sets
`next_retry_ns = now_ns + delay(attempts)` with `delay(n) = min(base * 2**(n-1), max)`,
upstream base 10 ms and max 60 s; a success clears the peer's entry.

Beyond upstream: base and max are configurable, and optional *full jitter* (AWS architecture
blog, "Exponential Backoff and Jitter") draws the actual wait uniformly from
`[0, delay(n)]` so peers that failed together do not retry together. The draw comes from the
`random.Random` passed in, so a seeded rng gives a reproducible schedule.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from bbnode.engine.framework._check import (
    state_int,
    state_peer,
    state_row,
    state_rows,
    usage_int,
)
from bbnode.engine.framework.errors import FrameworkStateError, FrameworkUsageError
from bbnode.engine.framework.rows import BackoffEntry, adopt_checked, int_column_ok
from bbnode.ids import PeerId

__all__ = ["DEFAULT_BACKOFF_BASE_NS", "DEFAULT_BACKOFF_MAX_NS", "BackoffState", "BackoffTable"]

DEFAULT_BACKOFF_BASE_NS: Final = 10_000_000
"""First retry delay: 10 ms (upstream `BackoffTable` base)."""
DEFAULT_BACKOFF_MAX_NS: Final = 60_000_000_000
"""Delay ceiling: 60 s (upstream `BackoffTable` max)."""
# A restored row's fields after the peer, checked a column at once (`rows.adopt_checked`):
# attempts >= 1, last_attempt_ns and next_retry_ns >= 0.
_COLUMN_CHECKS: Final = (partial(int_column_ok, minimum=1), int_column_ok, int_column_ok)


@dataclass(frozen=True, slots=True)
class BackoffState:
    """One peer's backoff (upstream `BackoffEntry` fields)."""

    attempts: int
    """Consecutive failures since the last success."""
    last_attempt_ns: int
    """`now_ns` of the most recent failure."""
    next_retry_ns: int
    """Earliest `now_ns` at which a retry is permitted."""


class BackoffTable:
    """Per-peer `BackoffState`, keyed by PeerId."""

    __slots__ = ("_base_ns", "_entries", "_jitter", "_max_delay_ns", "_rng")

    def __init__(
        self,
        base_ns: int = DEFAULT_BACKOFF_BASE_NS,
        max_delay_ns: int = DEFAULT_BACKOFF_MAX_NS,
        jitter: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        """Configure delays; `jitter=True` without `rng` uses an unseeded `random.Random()`.

        Pass a seeded rng wherever runs must be reproducible (tests, simulations).
        """
        self._base_ns = usage_int("base_ns", base_ns, minimum=1)
        self._max_delay_ns = usage_int("max_delay_ns", max_delay_ns, minimum=0)
        if rng is not None and not isinstance(rng, random.Random):
            raise FrameworkUsageError(f"rng must be a random.Random, got {type(rng).__name__}")
        self._jitter = bool(jitter)
        self._rng = rng if rng is not None else (random.Random() if jitter else None)
        # peer bytes -> its snapshot row (what capture hands over and restore adopts as is)
        self._entries: dict[bytes, BackoffEntry] = {}

    @property
    def base_ns(self) -> int:
        """Delay after the first failure (before jitter)."""
        return self._base_ns

    @property
    def max_delay_ns(self) -> int:
        """Ceiling on any delay."""
        return self._max_delay_ns

    @property
    def jitter(self) -> bool:
        """Whether waits are drawn uniformly from [0, delay(n)]."""
        return self._jitter

    def delay_ns(self, attempts: int) -> int:
        """The un-jittered delay after `attempts` consecutive failures (0 for attempts <= 0)."""
        if attempts <= 0:
            return 0
        # The ceiling is reached long before 2**64; capping the exponent keeps the int small.
        shift = min(attempts - 1, 64)
        return min(self._base_ns << shift, self._max_delay_ns)

    def record_failure(self, peer: PeerId, now_ns: int) -> BackoffState:
        """Count a failure at `now_ns`; return the new state (attempts+1, next_retry_ns)."""
        key = peer.to_bytes()
        previous = self._entries.get(key)
        attempts = 1 if previous is None else previous.attempts + 1
        delay = self.delay_ns(attempts)
        if self._rng is not None and self._jitter:
            delay = self._rng.randint(0, delay)
        self._entries[key] = BackoffEntry(key, attempts, now_ns, now_ns + delay)
        return BackoffState(attempts, now_ns, now_ns + delay)

    def record_success(self, peer: PeerId) -> None:
        """Clear `peer`'s entry: the next failure starts again from base."""
        self._entries.pop(peer.to_bytes(), None)

    def should_retry(self, peer: PeerId, now_ns: int) -> bool:
        """True when `peer` has no entry or `now_ns >= next_retry_ns`."""
        entries = self._entries
        if not entries:  # nobody in backoff (the usual case): no key to build
            return True
        row = entries.get(peer.to_bytes())
        return row is None or now_ns >= row.next_retry_ns

    def state(self, peer: PeerId) -> BackoffState | None:
        """`peer`'s backoff, or None if it has none."""
        row = self._entries.get(peer.to_bytes())
        return None if row is None else BackoffState(row[1], row[2], row[3])

    def entries(self) -> Iterator[tuple[PeerId, BackoffState]]:
        """Every `(peer, state)`, in first-failure order."""
        return iter(
            [(PeerId(r[0]), BackoffState(r[1], r[2], r[3])) for r in self._entries.values()]
        )

    def keys(self) -> list[bytes]:
        """Bytes of every peer with an entry."""
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, peer: object) -> bool:
        return isinstance(peer, PeerId) and peer.to_bytes() in self._entries

    # snapshot -------------------------------------------------------------------------------
    def export_state(self) -> list[list[Any]]:
        """`[[peer_bytes, attempts, last_attempt_ns, next_retry_ns], ...]` sorted by peer bytes.

        The rng's position is not exported: after a restore, jitter draws continue from
        whatever rng the new table was given.
        """
        return [list(row) for row in self.export_rows()]

    def export_rows(self) -> list[BackoffEntry]:
        """The rows themselves (what a snapshot stores), sorted by peer bytes."""
        return sorted(self._entries.values())

    def restore_state(self, rows: Sequence[Any]) -> None:
        """Replace every entry with `rows` (as exported, or `export_rows()` rows); nothing
        changes if a row is bad."""
        where = "backoff_table"
        rows = state_rows(where, rows)
        adopted = adopt_checked(rows, BackoffEntry, _COLUMN_CHECKS)
        self._entries = _checked_one_by_one(where, rows) if adopted is None else adopted[1]


def _checked_one_by_one(where: str, rows: Sequence[Any]) -> dict[bytes, BackoffEntry]:
    """`rows` by peer, each row checked on its own, naming the first bad one."""
    out: dict[bytes, BackoffEntry] = {}
    for i, raw in enumerate(rows):
        at = f"{where}[{i}]"
        peer_raw, attempts, last, next_retry = state_row(at, raw, 4)
        key = state_peer(f"{at}.peer", peer_raw).to_bytes()
        if key in out:
            raise FrameworkStateError(f"{at}.peer: duplicate peer {PeerId(key)}")
        out[key] = BackoffEntry(
            key,
            state_int(f"{at}.attempts", attempts, minimum=1),
            state_int(f"{at}.last_attempt_ns", last),
            state_int(f"{at}.next_retry_ns", next_retry),
        )
    return out
