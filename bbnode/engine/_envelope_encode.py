"""Encode wire envelopes to msgpack (SPEC §3.6), validating what the caller built.

The wire form is described in `_envelope_decode`. Encoding runs once per outbound envelope, so
the common case is one pass of exact `type(x) is T` checks, then one call into msgspec's
encoder with the values in wire order (`WireOrder`): it writes the seven-key map with its keys
in that fixed order and every value in its shortest form, as msgpack-python's `packb` would,
and `_envelope_fast` reads exactly those bytes back. msgspec writes what it is given without
checking it against any annotation, which is why the checks come first. Only a failed check
calls the slow helpers that name the bad field. Encoding does not apply `EnvelopeLimits`:
caps are the receiver's policy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

import msgspec

from bbnode._multiformats import fnv1a_64
from bbnode.engine._envelope_types import (
    SCHEMA_VERSION,
    U64_MAX,
    Correlation,
    CorrelationKind,
    EnvelopeEncodeError,
    SlotFill,
    WireEnvelope,
)

__all__ = [
    "WireOrder",
    "check_envelope",
    "encode_checked",
    "encode_envelope",
    "encode_msgpack",
    "type_hash_of",
]

encode_msgpack: Final[Callable[[Any], bytes]] = msgspec.msgpack.Encoder().encode
"""msgspec's msgpack encoder: a struct or dataclass as the map of its fields, in order."""


# A kind may be given as its plain int as well (not as a bool, which msgpack would write as one).
_KIND_TYPES: Final = frozenset({CorrelationKind, int})
_KINDS: Final = frozenset(CorrelationKind)


class WireOrder(msgspec.Struct, gc=False):
    """The envelope map in wire order, which is upstream's (`WireEnvelope` declares `fills`
    first). `fills` holds `SlotFill`s and `correlation` a `Correlation`: msgspec writes each
    dataclass as the map of its fields, whose order is already the wire's."""

    dest_peer_addresses: tuple[bytes, ...]
    fills: tuple[SlotFill, ...]
    correlation: Correlation
    remaining_deadline_ns: int | None
    edge_rtt_reports: tuple[tuple[bytes, int], ...]
    src_peer_addresses: tuple[bytes, ...]
    schema_version: int


@lru_cache(maxsize=1024)
def type_hash_of(type_name: str) -> int:
    """The `type_hash` of a value type: 64-bit FNV-1a of its UTF-8 name (as upstream)."""
    if not isinstance(type_name, str):
        raise TypeError(f"type_hash_of: type name must be a str, got {type(type_name).__name__}")
    return fnv1a_64(type_name.encode("utf-8"))


def encode_envelope(env: WireEnvelope) -> bytes:
    """The msgpack bytes of `env`; raises `EnvelopeEncodeError` naming any ill-typed field."""
    check_envelope(env)
    return encode_checked(env)


def encode_checked(env: WireEnvelope) -> bytes:
    """`encode_envelope` without the checks, for an envelope known to pass them: those of
    `SendEnvelope` steps, which the engine built itself or checked when it took them in
    (`Node.requeue_outbound`, a snapshot). The checks were a third of the encoding cost."""
    return encode_msgpack(
        WireOrder(
            env.dest_peer_addresses,
            env.fills,
            env.correlation,
            env.remaining_deadline_ns,
            env.edge_rtt_reports,
            env.src_peer_addresses,
            SCHEMA_VERSION,
        )
    )


def check_envelope(env: WireEnvelope) -> None:
    """Raise `EnvelopeEncodeError` naming the first field of `env` that cannot go on the
    wire (see `encode_envelope`)."""
    if type(env) is not WireEnvelope:
        raise EnvelopeEncodeError(f"envelope: expected a WireEnvelope, got {type(env).__name__}")
    fills = env.fills
    if type(fills) is not tuple:
        raise EnvelopeEncodeError(f"fills: expected a tuple, got {type(fills).__name__}")
    for i, f in enumerate(fills):
        if not (
            type(f) is SlotFill
            and type(f.dest_suffix) is bytes
            and type(f.payload) is bytes
            and type(f.trigger_only) is bool
            and type(f.type_hash) is int
            and 0 <= f.type_hash <= U64_MAX
        ):
            raise EnvelopeEncodeError(_describe_bad_fill(i, f))
    corr = env.correlation
    wire_req_id = corr.wire_req_id
    if not (
        type(corr) is Correlation
        and corr.kind.__class__ in _KIND_TYPES
        and corr.kind in _KINDS
        and type(wire_req_id) is int
        and 0 <= wire_req_id <= U64_MAX
    ):
        raise EnvelopeEncodeError(f"correlation: {corr!r} is not a valid Correlation")
    deadline = env.remaining_deadline_ns
    if deadline is not None and not (type(deadline) is int and 0 <= deadline <= U64_MAX):
        raise EnvelopeEncodeError(f"remaining_deadline_ns: {deadline!r} is not a u64 or None")
    if env.schema_version != SCHEMA_VERSION:
        raise EnvelopeEncodeError(
            f"schema_version: {env.schema_version!r} is not supported (expected {SCHEMA_VERSION})"
        )
    dest = env.dest_peer_addresses
    if dest != ():
        _check_bytes_tuple("dest_peer_addresses", dest)
    src = env.src_peer_addresses
    if src != ():
        _check_bytes_tuple("src_peer_addresses", src)
    rtt = env.edge_rtt_reports
    if rtt != ():
        _check_rtt_reports(rtt)


def _describe_bad_fill(i: int, f: object) -> str:
    if type(f) is not SlotFill:
        return f"fills[{i}]: expected a SlotFill, got {type(f).__name__}"
    checks: tuple[tuple[str, bool], ...] = (
        ("dest_suffix", type(f.dest_suffix) is bytes),
        ("payload", type(f.payload) is bytes),
        ("trigger_only", type(f.trigger_only) is bool),
        ("type_hash", type(f.type_hash) is int and 0 <= f.type_hash <= U64_MAX),
    )
    name = next(name for name, ok in checks if not ok)
    want = {"type_hash": "a u64 int", "trigger_only": "a bool"}.get(name, "bytes")
    return f"fills[{i}].{name}: expected {want}, got {getattr(f, name)!r}"


def _check_bytes_tuple(name: str, items: Any) -> None:
    if type(items) is not tuple:
        raise EnvelopeEncodeError(f"{name}: expected a tuple of bytes, got {type(items).__name__}")
    for i, item in enumerate(items):
        if type(item) is not bytes:
            raise EnvelopeEncodeError(f"{name}[{i}]: expected bytes, got {type(item).__name__}")


def _check_rtt_reports(items: Any) -> None:
    if type(items) is not tuple:
        raise EnvelopeEncodeError(
            f"edge_rtt_reports: expected a tuple of (bytes, int), got {type(items).__name__}"
        )
    for i, item in enumerate(items):
        if not (
            type(item) is tuple
            and len(item) == 2
            and type(item[0]) is bytes
            and type(item[1]) is int
            and 0 <= item[1] <= U64_MAX
        ):
            raise EnvelopeEncodeError(
                f"edge_rtt_reports[{i}]: expected (peer id bytes, rtt_ns u64), got {item!r}"
            )
