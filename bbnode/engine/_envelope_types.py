"""The wire envelope's value types, its decoding caps and its two error types.

Pure data: no I/O, no clock. `bbnode.engine.envelope` is the public face; the codec lives in
`_envelope_encode.py` and `_envelope_decode.py`. Field names are the upstream `WireEnvelope`'s
(bb-runtime) so that a msgpack envelope written by either side reads the same on the other
(SPEC §3.6).

Constructors do not validate, on purpose: the decoder builds these on the hot path after it has
already checked every field, and a second check would double its cost. A locally built envelope
is validated once, by `encode_envelope`, which raises `EnvelopeEncodeError` (a local error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from bbnode.engine._fastinit import fast_frozen_init

__all__ = [
    "SCHEMA_VERSION",
    "Correlation",
    "CorrelationKind",
    "DecodedEnvelope",
    "EnvelopeDecodeError",
    "EnvelopeEncodeError",
    "EnvelopeLimits",
    "FillError",
    "SlotFill",
    "WireEnvelope",
]

SCHEMA_VERSION: Final = 1
"""The only envelope schema this build reads or writes (upstream `schema_version`)."""

U64_MAX: Final = (1 << 64) - 1

_MIB: Final = 1024 * 1024


class CorrelationKind(IntEnum):
    """What an envelope is to a request/response exchange (upstream discriminants)."""

    NONE = 0
    REQUEST = 1
    RESPONSE = 2


@dataclass(frozen=True, slots=True)
class Correlation:
    """Request/response pairing carried by an envelope.

    `wire_req_id` is the sender's RequestTracker token for a REQUEST, and echoes that token
    in the matching RESPONSE; it is 0 when `kind` is NONE.
    """

    kind: CorrelationKind = CorrelationKind.NONE
    wire_req_id: int = 0


NO_CORRELATION: Final = Correlation()


@dataclass(frozen=True, slots=True)
class SlotFill:
    """One value addressed to one op on the destination node.

    `dest_suffix` is a binary multiaddr suffix (`/component/<ref>/op/<name>` or `/site/<id>`);
    `payload` is the msgpack encoding of the value; `trigger_only` marks a fill that only wakes
    the op (its payload is ignored); `type_hash` is the 64-bit FNV-1a of the value type's name
    (see `type_hash_of`), 0 when the sender does not say.
    """

    dest_suffix: bytes
    payload: bytes
    trigger_only: bool = False
    type_hash: int = 0


@dataclass(frozen=True, slots=True)
class WireEnvelope:
    """One message between nodes: the fills it carries plus routing and timing metadata.

    `dest_peer_addresses` / `src_peer_addresses` are binary multiaddrs (`Address.to_bytes()`);
    they are checked for type and size when decoded, and parsed by whoever uses them.
    `remaining_deadline_ns` is the sender's remaining budget for a request (None = no deadline);
    `edge_rtt_reports` are `(peer id bytes, rtt_ns)` pairs the sender measured.
    """

    fills: tuple[SlotFill, ...]
    dest_peer_addresses: tuple[bytes, ...] = ()
    correlation: Correlation = NO_CORRELATION
    remaining_deadline_ns: int | None = None
    edge_rtt_reports: tuple[tuple[bytes, int], ...] = ()
    src_peer_addresses: tuple[bytes, ...] = ()
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class FillError:
    """One fill of a received envelope was rejected; its siblings were still delivered.

    `fill_index` is the fill's position in the envelope as sent; `payload_size` is its payload
    length in bytes (0 when the payload was missing or not bytes); `type_hash` is its declared
    type hash (0 when missing or ill-typed). `detail` names the field and the problem.
    """

    fill_index: int
    detail: str
    payload_size: int
    type_hash: int


# What the engine's inbound path reads instead of the value objects (`decode_parts`).
# One good fill: (index in the envelope as sent, dest_suffix, payload, trigger_only, type_hash).
RawFill = tuple[int, bytes, bytes, bool, int]
# (good fills, fill errors, correlation, remaining_deadline_ns, dest_peer_addresses,
# src_peer_addresses, edge_rtt_reports).
RawEnvelope = tuple[
    list[RawFill],
    tuple[FillError, ...],
    Correlation,
    int | None,
    tuple[bytes, ...],
    tuple[bytes, ...],
    tuple[tuple[bytes, int], ...],
]


@dataclass(frozen=True, slots=True)
class DecodedEnvelope:
    """What `decode_envelope` returns: the envelope with only its good fills, and the rest."""

    envelope: WireEnvelope
    fill_errors: tuple[FillError, ...] = ()


# Built once or more per sent request, response and message, and per decoded envelope (see
# `_fastinit`).
for _record in (Correlation, SlotFill, WireEnvelope, DecodedEnvelope):
    fast_frozen_init(_record)
del _record


class EnvelopeDecodeError(ValueError):
    """Remote error: a peer sent bytes that are not a well-formed envelope.

    Raised for whole-envelope problems only (not msgpack, not a map, wrong schema version,
    a top-level field missing or ill-typed, a cap exceeded, trailing bytes); a single bad fill
    is a `FillError` instead. `detail` names the field; `payload_size` is the input length.
    """

    def __init__(self, detail: str, payload_size: int) -> None:
        super().__init__(f"{detail} (envelope of {payload_size} bytes)")
        self.detail = detail
        self.payload_size = payload_size


class EnvelopeEncodeError(ValueError):
    """Local error: the caller built a `WireEnvelope` that cannot go on the wire.

    The message names the field (e.g. `fills[2].type_hash`) and what is wrong with it.
    """


@dataclass(frozen=True, slots=True)
class EnvelopeLimits:
    """Caps a received envelope must respect; all checked before anything large is allocated.

    Defaults are the SPEC §3.6 caps (envelope 16 MiB, 256 fills, 4 MiB per fill payload, 4 KiB
    suffix, 8 sender addresses of at most 256 bytes). bbnode adds caps upstream leaves open:
    `max_dest_addresses` (destination addresses, same per-address byte cap), `max_rtt_reports`,
    and `max_map_keys` (keys per msgpack map, which bounds unknown forward-compatible keys).
    """

    max_envelope_bytes: int = 16 * _MIB
    max_fills: int = 256
    max_fill_payload_bytes: int = 4 * _MIB
    max_suffix_bytes: int = 4096
    max_src_addresses: int = 8
    max_src_address_bytes: int = 256
    max_dest_addresses: int = 64
    max_rtt_reports: int = 256
    max_map_keys: int = 64
    unpack_kwargs: dict[str, Any] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    """Derived msgpack `unpackb` limits (computed once, so the hot path does not rebuild them)."""

    def __post_init__(self) -> None:
        for name in (
            "max_envelope_bytes",
            "max_fills",
            "max_fill_payload_bytes",
            "max_suffix_bytes",
            "max_src_addresses",
            "max_src_address_bytes",
            "max_dest_addresses",
            "max_rtt_reports",
            "max_map_keys",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"EnvelopeLimits.{name} must be a positive int, got {value!r}")
        # msgpack's unpackb caps each str/bin/ext at the input length (itself capped first) and
        # only allocates one once all its bytes are present, so those need no cap of ours.
        # Arrays are different: msgpack pre-sizes a list from its header, so the array cap is
        # the largest list the schema has (edge_rtt_reports pairs are 2 long). raw=False,
        # use_list=True and strict_map_key=True are unpackb's defaults, relied upon here;
        # passing fewer keywords keeps the per-call cost down.
        self.unpack_kwargs.update(
            max_array_len=max(
                2,
                self.max_fills,
                self.max_src_addresses,
                self.max_dest_addresses,
                self.max_rtt_reports,
            ),
            max_map_len=self.max_map_keys,
        )
