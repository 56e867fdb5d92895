"""Record types of the engine's in-flight state (executions, suspensions, held sends).

Plain slotted classes and one named tuple. Everything here is captured by `_capture.py` into
the snapshot; nothing holds a reference to a component or a context, so state never outlives
what it names.

Execution model: every op invocation is one *execution* with a fresh `ExecId`. An execution
started by `ctx.call`, by a response to a request, or by a resumed `Async` records its
`parent` (the lineage); a call inherits the parent's inbound context so a helper op can still
`reply`. An `Async` suspension keeps its execution alive; the resume op runs under the same
ExecId. An execution that completes or fails is *finished* and dropped in phase 0 of the next
cycle (its slot, state and inbound context go with it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from bbnode.engine._fastinit import fast_frozen_init
from bbnode.engine.envelope import CorrelationKind, WireEnvelope
from bbnode.ids import PeerId

__all__ = ["Exec", "Held", "HeldSend", "Inbound", "PendingAsync", "PendingCompletion"]


class Inbound(NamedTuple):
    """Why an execution runs, when an envelope triggered it (`ctx.src_peer` etc.).

    `wire_req_id` is the request token to answer with `ctx.reply` (0 if the envelope was not
    a request); `reply_suffix` is the dest_suffix the request addressed, echoed in the reply.
    A named tuple rather than a frozen dataclass: one is built per received envelope, and a
    tuple costs about half as much to build (no per-field descriptor calls).
    """

    src_peer: PeerId
    wire_req_id: int
    arrival_ns: int
    remaining_deadline_ns: int | None
    reply_suffix: bytes


@dataclass(slots=True)
class Exec:
    """Liveness state of one execution (seed `ExecutionStateSnapshot` plus lineage)."""

    parent: int
    inbound: Inbound | None
    outputs_written: int = 0
    finished: bool = False


@dataclass(frozen=True, slots=True)
class PendingAsync:
    """An op suspended on command `cmd_id` (seed `PendingAsyncSnapshot`)."""

    op_ref: int
    exec_id: int
    resume_site: int
    deadline_ns: int | None


@dataclass(frozen=True, slots=True)
class PendingCompletion:
    """A completion waiting for phase 5: `results` on success, `failure` detail otherwise."""

    cmd_id: int
    results: dict[str, Any] | None
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class HeldSend:
    """An envelope held while its peer is in cooldown, with the op that sent it."""

    envelope: WireEnvelope
    op_ref: int
    exec_id: int


_REQUEST: Final = CorrelationKind.REQUEST


@dataclass(slots=True)
class Held:
    """A peer's held envelopes and the timer that releases them at `retry_ns`.

    A held request that times out is dropped (`drop_request`) by taking its token out of
    `requests`, not by searching `sends`: it then stays in `sends`, skipped by `live()`.
    """

    timer: int
    sends: deque[HeldSend] = field(default_factory=deque)
    #: The `wire_req_id` of every request in `sends` still to be sent.
    requests: set[int] = field(default_factory=set)

    def add(self, send: HeldSend) -> None:
        """Hold `send` after the others."""
        self.sends.append(send)
        correlation = send.envelope.correlation
        if correlation.kind is _REQUEST:
            self.requests.add(correlation.wire_req_id)

    def drop_oldest(self) -> bool:
        """Drop the oldest held send (the queue is full); False if it was dropped already.

        A request dropped here keeps its token in `requests`: it never left the node either,
        so its timeout must not count as a failure of the peer (see `drop_request`). The
        tokens go with this `Held` at release.
        """
        correlation = self.sends.popleft().envelope.correlation
        return correlation.kind is not _REQUEST or correlation.wire_req_id in self.requests

    def drop_request(self, wire_req_id: int) -> bool:
        """Never send the held request `wire_req_id`; True if it was held here (even if the
        full queue dropped it since), False if not or if it was dropped this way already."""
        if wire_req_id not in self.requests:
            return False
        self.requests.discard(wire_req_id)
        return True

    def live(self) -> list[HeldSend]:
        """The held sends still to be sent, oldest first."""
        requests = self.requests
        return [
            send
            for send in self.sends
            if send.envelope.correlation.kind is not _REQUEST
            or send.envelope.correlation.wire_req_id in requests
        ]


for _record in (PendingAsync, PendingCompletion, HeldSend):
    fast_frozen_init(_record)  # built per envelope / per suspension (see `_fastinit`)
del _record
