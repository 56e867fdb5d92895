"""Phase 8's `SendEnvelope` steps, with one-way sends to the same peer merged into one envelope.

An envelope carries a tuple of fills, and the receiver routes every fill on its own (a fresh
`ExecId` each, a bad fill reported alone; SPEC §3.3), so N one-way messages to one peer in one
cycle need not cost N envelopes: each envelope costs an encode, a frame, a policy check and a
decode on the far side, which for small messages is most of the work. Consecutive one-way
envelopes queued for the same peer with the same deadline, addresses and `redelivered` flag
become one envelope whose fills are theirs in order, up to `max_fills` fills and
`COALESCE_MAX_BYTES` of payload and suffix (so a merged envelope fits one Noise transport
message). A request or a response is never merged, and it ends the peer's run, so every peer
receives its fills in the order they were sent.
"""

from __future__ import annotations

from typing import Final

from bbnode.engine._core import OutboundItem
from bbnode.engine.envelope import CorrelationKind, SlotFill, WireEnvelope
from bbnode.engine.steps import SendEnvelope
from bbnode.ids import PeerId

__all__ = ["COALESCE_MAX_BYTES", "send_steps"]

#: Payload + suffix bytes one merged envelope may carry; a bigger send goes alone.
COALESCE_MAX_BYTES: Final = 60 * 1024
_NONE: Final = CorrelationKind.NONE


class _Run:
    """One-way envelopes to one peer being merged into one `SendEnvelope`."""

    __slots__ = ("fills", "first", "key", "peer", "redelivered", "size")

    def __init__(
        self, peer: PeerId, first: WireEnvelope, redelivered: bool, size: int, key: _Key
    ) -> None:
        self.peer = peer
        self.first = first
        self.fills: list[SlotFill] = list(first.fills)
        self.redelivered = redelivered
        self.size = size
        #: What an envelope must share with `first` to join (see `_key`).
        self.key = key

    def step(self) -> SendEnvelope:
        first = self.first
        if len(self.fills) == len(first.fills):
            return SendEnvelope(first, self.peer, self.redelivered)
        merged = WireEnvelope(
            tuple(self.fills),
            first.dest_peer_addresses,
            first.correlation,
            first.remaining_deadline_ns,
            (),
            first.src_peer_addresses,
            first.schema_version,
        )
        return SendEnvelope(merged, self.peer, self.redelivered)


#: The `redelivered` flag, deadline, addresses and schema version: envelopes merge only
#: when all are equal (compared as one tuple, in C).
_Key = tuple[bool, int | None, tuple[bytes, ...], tuple[bytes, ...], int]


def send_steps(outbound: list[OutboundItem], max_fills: int) -> list[SendEnvelope]:
    """The `SendEnvelope` steps for `outbound` (in order), merged as the module docstring says."""
    if max_fills == 1:  # nothing to merge (a lone envelope: `emit_outputs` does not call this)
        return [SendEnvelope(envelope, peer, again) for peer, envelope, again in outbound]
    out: list[SendEnvelope | _Run] = []
    open_runs: dict[PeerId, _Run] = {}
    # One pass per envelope, its checks inline: this runs once per one-way message sent.
    for peer, envelope, redelivered in outbound:
        if envelope.correlation.kind is not _NONE or envelope.edge_rtt_reports:
            open_runs.pop(peer, None)  # later one-way sends to `peer` go after this one
            out.append(SendEnvelope(envelope, peer, redelivered))
            continue
        fills = envelope.fills
        if len(fills) == 1:  # what one `ctx.send` builds
            fill = fills[0]
            size = len(fill.payload) + len(fill.dest_suffix)
        else:
            size = sum(len(fill.payload) + len(fill.dest_suffix) for fill in fills)
        key = (
            redelivered,
            envelope.remaining_deadline_ns,
            envelope.dest_peer_addresses,
            envelope.src_peer_addresses,
            envelope.schema_version,
        )
        run = open_runs.get(peer)
        if (
            run is not None
            and run.key == key
            and len(run.fills) + len(fills) <= max_fills
            and run.size + size <= COALESCE_MAX_BYTES
        ):
            run.fills += fills
            run.size += size
            continue
        run = open_runs[peer] = _Run(peer, envelope, redelivered, size, key)
        out.append(run)
    return [item.step() if isinstance(item, _Run) else item for item in out]
