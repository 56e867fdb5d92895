"""`RequestTracker`: outbound requests awaiting a response, and their deadlines.

Upstream: each request gets a `wire_req_id` token; tokens start at **1** (0 means "no
correlation" on the wire) and only ever increase, across snapshot/restore too. A request that
outlives its TTL is expired by the engine's timer sweep and surfaced as `WireTimeout`, which
counts as a failure of the target peer.

Expiry uses a heap of `(deadline_ns, token)` validated lazily, so completing a request is O(1)
and `expire` costs only the expired entries.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Final

from bbnode.engine._fastinit import fast_frozen_init
from bbnode.engine.framework._check import (
    state_field,
    state_int,
    state_list,
    state_mapping,
    state_peer,
    state_row,
    usage_int,
)
from bbnode.engine.framework.errors import FrameworkStateError, FrameworkUsageError
from bbnode.ids import PeerId

__all__ = ["FIRST_WIRE_REQ_ID", "InFlightRequest", "RequestTracker"]

FIRST_WIRE_REQ_ID: Final = 1
"""The first token minted (upstream: 0 is reserved for "no correlation")."""
_HEAP_SLACK: Final = 64


@dataclass(frozen=True, slots=True)
class InFlightRequest:
    """One request awaiting its response."""

    wire_req_id: int
    """The correlation token carried on the wire."""
    target_peer: PeerId
    """Who the request was sent to (charged with a failure if it times out)."""
    started_at_ns: int
    """`now_ns` when it was started."""
    deadline_ns: int
    """`started_at_ns + ttl_ns`: from this clock value on it is expired."""
    parked_op: object | None
    """Opaque engine data to resume on completion; must be msgpack-able to be exported."""


fast_frozen_init(InFlightRequest)  # one per request sent (see `_fastinit`)


class RequestTracker:
    """Mints tokens, remembers in-flight requests, expires them by deadline."""

    __slots__ = ("_by_token", "_deadlines", "_next_token")

    def __init__(self) -> None:
        """No requests in flight; the next token is 1."""
        self._by_token: dict[int, InFlightRequest] = {}
        self._deadlines: list[tuple[int, int]] = []
        self._next_token = FIRST_WIRE_REQ_ID

    @property
    def next_token(self) -> int:
        """The token the next `start` will return."""
        return self._next_token

    def start(
        self, target_peer: PeerId, now_ns: int, ttl_ns: int, parked_op: object | None = None
    ) -> int:
        """Track a new request to `target_peer`, due by `now_ns + ttl_ns`; return its token."""
        if target_peer.__class__ is not PeerId and not isinstance(target_peer, PeerId):
            raise FrameworkUsageError(
                f"start: target_peer must be a PeerId, got {type(target_peer).__name__}"
            )
        if now_ns.__class__ is not int or ttl_ns.__class__ is not int or now_ns < 0 or ttl_ns < 0:
            usage_int("start: now_ns", now_ns)  # the exact check, only off the common case
            usage_int("start: ttl_ns", ttl_ns)
        token = self._next_token
        self._next_token = token + 1
        request = InFlightRequest(token, target_peer, now_ns, now_ns + ttl_ns, parked_op)
        self._by_token[token] = request
        heapq.heappush(self._deadlines, (request.deadline_ns, token))
        if len(self._deadlines) > 2 * len(self._by_token) + _HEAP_SLACK:
            self._deadlines = [(r.deadline_ns, t) for t, r in self._by_token.items()]
            heapq.heapify(self._deadlines)
        return token

    def complete(self, wire_req_id: int) -> InFlightRequest | None:
        """The response arrived: forget and return the request (None if unknown or expired)."""
        return self._by_token.pop(wire_req_id, None)

    def get(self, wire_req_id: int) -> InFlightRequest | None:
        """The in-flight request with this token, without completing it."""
        return self._by_token.get(wire_req_id)

    def due(self, now_ns: int) -> bool:
        """True when `expire(now_ns)` may have work: a deadline, perhaps of a request already
        completed, is at or before `now_ns` (cheaper than an `expire` that finds nothing)."""
        heap = self._deadlines
        return bool(heap) and heap[0][0] <= now_ns

    def expire(self, now_ns: int) -> list[InFlightRequest]:
        """Remove and return requests with `deadline_ns <= now_ns`, by (deadline, token)."""
        heap = self._deadlines
        by_token = self._by_token
        expired: list[InFlightRequest] = []
        while heap and heap[0][0] <= now_ns:
            _, token = heapq.heappop(heap)
            request = by_token.pop(token, None)
            if request is not None:
                expired.append(request)
        return expired

    def next_deadline_ns(self) -> int | None:
        """The earliest deadline among in-flight requests, or None."""
        heap = self._deadlines
        while heap and heap[0][1] not in self._by_token:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return len(self._by_token)

    def __contains__(self, wire_req_id: object) -> bool:
        return wire_req_id in self._by_token

    # snapshot -------------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """`{"next_token": int, "in_flight": [[token, peer_bytes, started, deadline, parked_op]]}`.

        Rows are in token order. `parked_op` is exported as is, so it must be msgpack-able
        (ints, bytes, str, lists, dicts, None) for the snapshot to encode.
        """
        return {
            "next_token": self._next_token,
            "in_flight": [
                [
                    r.wire_req_id,
                    r.target_peer.to_bytes(),
                    r.started_at_ns,
                    r.deadline_ns,
                    r.parked_op,
                ]
                for _, r in sorted(self._by_token.items())
            ],
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Replace everything with an exported state; nothing changes if it is bad.

        `next_token` is kept above every restored token, so no token is minted twice.
        """
        where = "request_tracker"
        state_map = state_mapping(where, state)
        next_token = state_int(
            f"{where}.next_token", state_field(where, state_map, "next_token"), FIRST_WIRE_REQ_ID
        )
        by_token: dict[int, InFlightRequest] = {}
        rows = state_list(f"{where}.in_flight", state_map.get("in_flight", []))
        for i, raw in enumerate(rows):
            at = f"{where}.in_flight[{i}]"
            token_raw, peer_raw, started_raw, deadline_raw, parked = state_row(at, raw, 5)
            token = state_int(f"{at}.wire_req_id", token_raw, FIRST_WIRE_REQ_ID)
            if token in by_token:
                raise FrameworkStateError(f"{at}.wire_req_id: duplicate token {token}")
            if token >= next_token:
                raise FrameworkStateError(
                    f"{at}.wire_req_id: token {token} is not below next_token {next_token}"
                )
            started = state_int(f"{at}.started_at_ns", started_raw)
            deadline = state_int(f"{at}.deadline_ns", deadline_raw, minimum=started)
            by_token[token] = InFlightRequest(
                token, state_peer(f"{at}.target_peer", peer_raw), started, deadline, parked
            )
        self._by_token = by_token
        self._deadlines = [(r.deadline_ns, t) for t, r in by_token.items()]
        heapq.heapify(self._deadlines)
        self._next_token = next_token
