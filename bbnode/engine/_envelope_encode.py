"""Encode wire envelopes to msgpack (SPEC §3.6), validating what the caller built.

The wire form is described in `_envelope_decode`. Encoding runs once per outbound envelope, so
the common case is one pass of exact `type(x) is T` checks, then the bytes are written as
msgpack would write the seven-key map (keys in that fixed order, every value in its shortest
form): the fixed parts are `_envelope_layout`'s constants (which `_envelope_fast` reads back),
only values go through the packer. Building the three dicts and the list msgpack would walk
instead cost more than the pack itself. Only a failed check calls the slow helpers that name the
bad field. Encoding does not apply `EnvelopeLimits`: caps are the receiver's policy.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

import msgpack

from bbnode._multiformats import fnv1a_64
from bbnode.engine._envelope_layout import (
    CORRELATION_HEADS,
    DEADLINE,
    FILL,
    FILLS,
    HEAD,
    NO_DEADLINE,
    NO_RTT_SRC,
    PAYLOAD,
    RTT,
    SRC,
    TAIL,
    TRIGGER_FALSE,
    TRIGGER_TRUE,
)
from bbnode.engine._envelope_types import (
    SCHEMA_VERSION,
    U64_MAX,
    Correlation,
    EnvelopeEncodeError,
    SlotFill,
    WireEnvelope,
)

__all__ = ["encode_envelope", "type_hash_of"]

# One shared Packer instead of `packb`, which allocates a fresh 256 KiB buffer per call. Safe
# to share: only exact builtin types reach it (checked below), so `pack` runs to completion in
# C without calling back into Python or releasing the GIL; autoreset clears it even on error.
_packer: Final = msgpack.Packer(autoreset=True)
_pack: Final = _packer.pack
_array_header: Final = _packer.pack_array_header


@lru_cache(maxsize=1024)
def type_hash_of(type_name: str) -> int:
    """The `type_hash` of a value type: 64-bit FNV-1a of its UTF-8 name (as upstream)."""
    if not isinstance(type_name, str):
        raise TypeError(f"type_hash_of: type name must be a str, got {type(type_name).__name__}")
    return fnv1a_64(type_name.encode("utf-8"))


def encode_envelope(env: WireEnvelope) -> bytes:
    """The msgpack bytes of `env`; raises `EnvelopeEncodeError` naming any ill-typed field."""
    if type(env) is not WireEnvelope:
        raise EnvelopeEncodeError(f"envelope: expected a WireEnvelope, got {type(env).__name__}")
    fills = env.fills
    if type(fills) is not tuple:
        raise EnvelopeEncodeError(f"fills: expected a tuple, got {type(fills).__name__}")
    # Filled in as the checks pass; the destination addresses go in at index 1 once checked.
    out = [HEAD, b"", FILLS, _array_header(len(fills))]
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
        out += (
            FILL,
            _pack(f.dest_suffix),
            PAYLOAD,
            _pack(f.payload),
            TRIGGER_TRUE if f.trigger_only else TRIGGER_FALSE,
            _pack(f.type_hash),
        )
    corr = env.correlation
    if type(corr) is not Correlation:
        raise EnvelopeEncodeError(f"correlation: {corr!r} is not a valid Correlation")
    correlation_head = CORRELATION_HEADS.get(corr.kind)  # None: not a CorrelationKind
    wire_req_id = corr.wire_req_id
    if correlation_head is None or not (type(wire_req_id) is int and 0 <= wire_req_id <= U64_MAX):
        raise EnvelopeEncodeError(f"correlation: {corr!r} is not a valid Correlation")
    deadline = env.remaining_deadline_ns
    if deadline is not None and not (type(deadline) is int and 0 <= deadline <= U64_MAX):
        raise EnvelopeEncodeError(f"remaining_deadline_ns: {deadline!r} is not a u64 or None")
    if env.schema_version != SCHEMA_VERSION:
        raise EnvelopeEncodeError(
            f"schema_version: {env.schema_version!r} is not supported (expected {SCHEMA_VERSION})"
        )
    # Empty or one address (the usual cases) are checked inline, without the loop's call.
    dest = env.dest_peer_addresses
    if dest != () and not (type(dest) is tuple and len(dest) == 1 and type(dest[0]) is bytes):
        _check_bytes_tuple("dest_peer_addresses", dest)
    src = env.src_peer_addresses
    if src != () and not (type(src) is tuple and len(src) == 1 and type(src[0]) is bytes):
        _check_bytes_tuple("src_peer_addresses", src)
    rtt = env.edge_rtt_reports
    if rtt != ():
        _check_rtt_reports(rtt)
    # Every value is packed only after its checks passed: a bad field raises the error
    # naming it, and the parts built so far are dropped.
    # Tuples pack as msgpack arrays, so the validated tuples go out as they are.
    out[1] = _pack(dest)
    out += (
        correlation_head,
        _pack(wire_req_id),
        NO_DEADLINE if deadline is None else DEADLINE + _pack(deadline),
        NO_RTT_SRC if rtt == () else RTT + _pack(rtt) + SRC,
        _pack(src),
        TAIL,
    )
    return b"".join(out)


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
