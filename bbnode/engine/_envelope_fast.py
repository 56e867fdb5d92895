"""Read the exact bytes `encode_envelope` writes with msgspec's typed decoder (the fast path).

`unpackb` builds what `decode_parts_msgpack` then takes apart again: every key string decoded,
hashed and interned, three dicts and three lists for a one-fill envelope, then a Python check
per field. msgspec's `Decoder`, given the envelope's schema (`_schema_for`), checks every type
and cap in C while it reads and builds only the values. `bench/envelope_codec.py`, against
the hand-written byte reader this replaced (which gave up above two fills): 1.6x the
envelopes/s for one 100-byte fill, 2.1x for sixteen 1 KiB fills.

The contract, held by a differential property test: `decode_canonical` returns either None or
exactly what `decode_parts_msgpack` returns for the same bytes and limits. It returns None
(and the caller runs that general path, which also words every error and `FillError`) for
anything the schema refuses: a wrong type, a cap that would trip, a missing or unknown key, a
non-empty `edge_rtt_reports` (bbnode never sends one), a bad fill, truncated or trailing bytes.
And for any input that is not byte for byte what the encoder writes for the values read: the
values are encoded again (in C too) and compared with the input. That rules out what the
schema alone would let through although the general path treats it otherwise or not at all:
a repeated key (msgspec keeps the last value without counting it against `max_map_keys`),
another key order or a wider encoding than needed (both legal, both left to the general
path). It never raises.

Memory: the caller has capped the input at `max_envelope_bytes`; msgspec checks each array's
length against its cap before reading its items, and a bin's bytes are copied from the input
only once they are all there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from bbnode.engine._envelope_encode import encode_msgpack
from bbnode.engine._envelope_types import (
    NO_CORRELATION,
    Correlation,
    CorrelationKind,
    EnvelopeLimits,
    RawEnvelope,
    RawFill,
)

__all__ = ["WIRE_MAP_KEYS", "decode_canonical"]

_U64 = Annotated[int, Meta(ge=0)]  # msgpack has no wider int
_NONE: Final = CorrelationKind.NONE

WIRE_MAP_KEYS: Final = 7
"""Keys of the envelope map, its largest: a `max_map_keys` below this refuses every envelope."""


def _schema_for(limits: EnvelopeLimits) -> Callable[[bytes], Any]:
    """The decoder of envelopes within `limits` (their caps are part of the schema)."""
    address = Annotated[bytes, Meta(min_length=1, max_length=limits.max_src_address_bytes)]
    fill = msgspec.defstruct(
        "Fill",
        [
            (
                "dest_suffix",
                Annotated[bytes, Meta(min_length=1, max_length=limits.max_suffix_bytes)],
            ),
            ("payload", Annotated[bytes, Meta(max_length=limits.max_fill_payload_bytes)]),
            ("trigger_only", bool),
            ("type_hash", _U64),
        ],
        forbid_unknown_fields=True,
        gc=False,
    )
    envelope = msgspec.defstruct(
        "Envelope",
        [
            (
                "dest_peer_addresses",
                Annotated[tuple[address, ...], Meta(max_length=limits.max_dest_addresses)],
            ),
            ("fills", Annotated[list[fill], Meta(max_length=limits.max_fills)]),  # type: ignore[valid-type]
            # Read straight into the frozen dataclass (msgspec sets its slots: no __init__).
            # Its `wire_req_id: int` also takes a negative int, which the caller refuses; an
            # unknown or missing key shows when the values are encoded again.
            ("correlation", Correlation),
            ("remaining_deadline_ns", _U64 | None),
            ("edge_rtt_reports", Annotated[tuple[tuple[bytes, int], ...], Meta(max_length=0)]),
            (
                "src_peer_addresses",
                Annotated[tuple[address, ...], Meta(max_length=limits.max_src_addresses)],
            ),
            ("schema_version", Literal[1]),  # SCHEMA_VERSION
        ],
        forbid_unknown_fields=True,
    )
    return msgspec.msgpack.Decoder(envelope).decode


# One decoder per limits object (a node has one); keyed by identity, which the value keeps
# alive, so an id is never reused while its entry exists.
_decoders: dict[int, tuple[EnvelopeLimits, Callable[[bytes], Any]]] = {}


def _decoder(limits: EnvelopeLimits) -> Callable[[bytes], Any]:
    entry = _decoders.get(id(limits))
    if entry is None:
        if len(_decoders) >= 64:  # many throwaway limits (tests): start over
            _decoders.clear()
        entry = _decoders[id(limits)] = (limits, _schema_for(limits))
    return entry[1]


def decode_canonical(data: bytes, limits: EnvelopeLimits) -> RawEnvelope | None:
    """`decode_parts(data, limits)` for an envelope as `encode_envelope` writes it, else None.

    `data` must be `bytes` no longer than `limits.max_envelope_bytes` (the caller checks).
    """
    if limits.max_map_keys < WIRE_MAP_KEYS:
        return None
    try:
        env = _decoder(limits)(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        # DecodeError covers ValidationError (a type or a cap); a key that is not UTF-8
        # raises UnicodeDecodeError
        return None
    correlation = env.correlation
    req_id = correlation.wire_req_id
    if req_id <= 0:
        if req_id < 0:
            return None
        if correlation.kind is _NONE:
            correlation = NO_CORRELATION  # the shared one, as the general path returns
    fills = env.fills
    if encode_msgpack(env) != data:  # the schema's field order is the wire's
        return None
    if len(fills) == 1:  # a request, a response or a lone message: no loop
        fill = fills[0]
        raw: list[RawFill] = [
            (0, fill.dest_suffix, fill.payload, fill.trigger_only, fill.type_hash)
        ]
    else:
        raw = [
            (index, fill.dest_suffix, fill.payload, fill.trigger_only, fill.type_hash)
            for index, fill in enumerate(fills)
        ]
    return (
        raw,
        (),
        correlation,
        env.remaining_deadline_ns,
        env.dest_peer_addresses,
        env.src_peer_addresses,
        (),
    )
