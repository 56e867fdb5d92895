"""The wire envelope: what one node sends another, and its msgpack codec (SPEC §3.6).

Public face of `_envelope_types` (values, caps, errors) and of the codec (`_envelope_encode`,
`_envelope_decode`).
Error hierarchy: `EnvelopeDecodeError` is the remote error (a peer sent a malformed envelope;
per-fill problems are returned as `FillError` values instead), `EnvelopeEncodeError` the local
one (the caller built an envelope the wire cannot carry). Both are `ValueError`s.

Forward compatibility: unknown map keys, at the top level, in `correlation` and in fills, are
ignored; only `schema_version` and `fills` are required at the top level.
"""

from __future__ import annotations

from bbnode.engine._envelope_decode import decode_envelope
from bbnode.engine._envelope_encode import encode_checked, encode_envelope, type_hash_of
from bbnode.engine._envelope_types import (
    SCHEMA_VERSION,
    Correlation,
    CorrelationKind,
    DecodedEnvelope,
    EnvelopeDecodeError,
    EnvelopeEncodeError,
    EnvelopeLimits,
    FillError,
    SlotFill,
    WireEnvelope,
)

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
    "decode_envelope",
    "encode_checked",
    "encode_envelope",
    "type_hash_of",
]
