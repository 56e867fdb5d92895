"""Decode received wire envelopes (SPEC §3.6): msgpack maps with the upstream field names.

Wire form, one msgpack map (keys are str; unknown keys are ignored at every level, so that a
newer sender can add fields without breaking older receivers):

    dest_peer_addresses    [bin, ...]                   optional, default []
    fills                  [{dest_suffix: bin, payload: bin,
                             trigger_only: bool, type_hash: u64}, ...]   required
    correlation            {kind: 0|1|2, wire_req_id: u64}               optional, default none
    remaining_deadline_ns  u64 | nil                    optional, default nil
    edge_rtt_reports       [[peer id bin, rtt_ns u64], ...]              optional, default []
    src_peer_addresses     [bin, ...]                   optional, default []
    schema_version         1                            required

The decoder is on the engine's hottest path (every received envelope). Envelopes laid out
byte for byte as `encode_envelope` writes them (every bbnode sender) are read by msgspec's
typed decoder (`_envelope_fast`), which gives up on anything else. Everything else goes
through one straight function: one `unpackb` with caps that keep a hostile length prefix from
allocating, then direct dict lookups and exact `type(x) is T` checks, and values built without
the frozen-dataclass `__init__` cost (the value types get `_fastinit.fast_frozen_init`). Only
when a check fails does it call the slow helpers that work out which field is wrong and say
so.

Memory bound: no single length prefix allocates (str/bin wait for their bytes; arrays are
capped by `EnvelopeLimits`, and msgpack's 1024-deep stack bounds the lists that are declared
but not yet filled). What remains is Python's per-object cost for input that really is full of
tiny containers (e.g. an unknown key holding thousands of empty maps): about 75 bytes of memory
per input byte, so `max_envelope_bytes` is what bounds decode memory.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from bbnode.engine._envelope_diagnose import describe_unpack_failure
from bbnode.engine._envelope_fast import decode_canonical
from bbnode.engine._envelope_types import (
    NO_CORRELATION,
    SCHEMA_VERSION,
    U64_MAX,
    Correlation,
    CorrelationKind,
    DecodedEnvelope,
    EnvelopeDecodeError,
    EnvelopeLimits,
    FillError,
    RawEnvelope,
    RawFill,
    SlotFill,
    WireEnvelope,
)
from bbnode.ids import MAX_PEER_ID_BYTES

#: The `correlation.kind` wire discriminants, in order: `KINDS[kind]` is its CorrelationKind.
KINDS: Final = (CorrelationKind.NONE, CorrelationKind.REQUEST, CorrelationKind.RESPONSE)

__all__ = [
    "DEFAULT_LIMITS",
    "RawEnvelope",
    "RawFill",
    "decode_envelope",
    "decode_parts",
    "decode_parts_msgpack",
]

DEFAULT_LIMITS: Final = EnvelopeLimits()

_FILL_KEYS: Final = ("dest_suffix", "payload", "trigger_only", "type_hash")
_MISSING: Final[Any] = object()
_unpackb: Final = msgpack.unpackb


def decode_envelope(
    data: bytes | bytearray | memoryview, limits: EnvelopeLimits = DEFAULT_LIMITS
) -> DecodedEnvelope:
    """Parse a received envelope, enforcing `limits` before allocating anything large.

    Returns the envelope with only its good fills plus one `FillError` per rejected fill.
    Raises `EnvelopeDecodeError` (and nothing else) when the envelope as a whole is malformed.
    """
    raw_fills, errors, correlation, deadline, dest, src, rtt = decode_parts(data, limits)
    fills = tuple([SlotFill(s, p, t, h) for _i, s, p, t, h in raw_fills])
    env = WireEnvelope(fills, dest, correlation, deadline, rtt, src, SCHEMA_VERSION)
    return DecodedEnvelope(env, errors)


def decode_parts(
    data: bytes | bytearray | memoryview, limits: EnvelopeLimits = DEFAULT_LIMITS
) -> RawEnvelope:
    """`decode_envelope` without building the value objects (the engine's inbound path).

    Same checks, caps and errors; each good fill comes back as a `RawFill` tuple carrying its
    index as sent, so a consumer can report a later per-fill problem against that index.
    Bytes laid out exactly as `encode_envelope` writes them are read by `decode_canonical`
    (about half the cost), anything else by `decode_parts_msgpack`; both give the same
    result.
    """
    if data.__class__ is bytes and len(data) <= limits.max_envelope_bytes:
        parts = decode_canonical(data, limits)
        if parts is not None:
            return parts
    return decode_parts_msgpack(data, limits)


def decode_parts_msgpack(
    data: bytes | bytearray | memoryview, limits: EnvelopeLimits = DEFAULT_LIMITS
) -> RawEnvelope:
    """`decode_parts` for any input: one `unpackb`, then the checks (see the module docstring)."""
    size = len(data)
    if size > limits.max_envelope_bytes:
        raise EnvelopeDecodeError(
            f"envelope: {size} bytes exceeds max_envelope_bytes {limits.max_envelope_bytes}", size
        )
    try:
        caps = limits.unpack_kwargs  # spelled out: a `**` call costs a dict per envelope
        obj = _unpackb(data, max_array_len=caps["max_array_len"], max_map_len=caps["max_map_len"])
    except (ValueError, TypeError, OverflowError) as exc:
        if not isinstance(data, bytes | bytearray | memoryview):
            # The caller's mistake, not the peer's: a local error, not EnvelopeDecodeError.
            raise TypeError(f"decode_envelope: expected bytes, got {type(data).__name__}") from None
        # msgpack's errors (ExtraData, FormatError, StackError, caps, truncation) are
        # ValueErrors. Work out a precise detail only now, off the hot path.
        raise EnvelopeDecodeError(describe_unpack_failure(data, limits, exc), size) from None
    if type(obj) is not dict:
        raise EnvelopeDecodeError(f"envelope: expected a msgpack map, got {_kind(obj)}", size)

    try:  # every key present (what every encoder writes): plain subscripts
        version = obj["schema_version"]
        raw_fills = obj["fills"]
        correlation = obj["correlation"]
        deadline = obj["remaining_deadline_ns"]
        raw_dest = obj["dest_peer_addresses"]
        raw_src = obj["src_peer_addresses"]
        raw_rtt = obj["edge_rtt_reports"]
    except KeyError:  # optional fields absent (or required ones missing: reported below)
        version = obj.get("schema_version", _MISSING)
        raw_fills = obj.get("fills", _MISSING)
        correlation = obj.get("correlation", NO_CORRELATION)
        deadline = obj.get("remaining_deadline_ns")
        raw_dest = obj.get("dest_peer_addresses")
        raw_src = obj.get("src_peer_addresses")
        raw_rtt = obj.get("edge_rtt_reports")
    if version != SCHEMA_VERSION or type(version) is not int:
        raise EnvelopeDecodeError(_describe_version(version), size)
    if type(raw_fills) is not list:
        raise EnvelopeDecodeError(_describe_list_field("fills", raw_fills), size)
    if len(raw_fills) > limits.max_fills:
        raise EnvelopeDecodeError(
            f"fills: {len(raw_fills)} fills exceed max_fills {limits.max_fills}", size
        )
    max_suffix = limits.max_suffix_bytes
    max_payload = limits.max_fill_payload_bytes
    fills: list[RawFill] = []
    errors: list[FillError] | None = None
    for i, f in enumerate(raw_fills):
        if type(f) is dict:
            try:
                suffix = f["dest_suffix"]
                payload = f["payload"]
                trigger = f["trigger_only"]
                thash = f["type_hash"]
            except KeyError:
                pass
            else:
                if (
                    type(suffix) is bytes
                    and type(payload) is bytes
                    and (trigger is True or trigger is False)
                    and type(thash) is int
                    and 0 <= thash <= U64_MAX
                    and 0 < len(suffix) <= max_suffix
                    and len(payload) <= max_payload
                ):
                    fills.append((i, suffix, payload, trigger, thash))
                    continue
        if errors is None:
            errors = []
        errors.append(_fill_error(i, f, limits))

    if correlation is not NO_CORRELATION:  # present (absent is the shared default)
        correlation = _decode_correlation(correlation, size)

    if deadline is not None and not (type(deadline) is int and 0 <= deadline <= U64_MAX):
        raise EnvelopeDecodeError(
            f"remaining_deadline_ns: expected a u64 or nil, got {_kind(deadline)}", size
        )

    # The list fields are often empty; only a non-empty one pays for a call.
    dest = (
        ()
        if raw_dest is None or raw_dest == []
        else _decode_addresses(raw_dest, "dest", limits, size)
    )
    src = (
        () if raw_src is None or raw_src == [] else _decode_addresses(raw_src, "src", limits, size)
    )
    rtt = () if raw_rtt is None or raw_rtt == [] else _decode_rtt_reports(raw_rtt, limits, size)
    return fills, (tuple(errors) if errors else ()), correlation, deadline, dest, src, rtt


def _decode_correlation(raw: object, size: int) -> Correlation:
    """The correlation map `raw` as a `Correlation` (`NO_CORRELATION` for kind 0, id 0)."""
    if type(raw) is dict:
        kind = raw.get("kind", _MISSING)
        req_id = raw.get("wire_req_id", _MISSING)
        if type(kind) is int and type(req_id) is int and 0 <= kind <= 2 and 0 <= req_id <= U64_MAX:
            if kind == 0 and req_id == 0:
                return NO_CORRELATION
            return Correlation(KINDS[kind], req_id)  # 0..2 are the indices of KINDS
        # Off the hot path from here: say which field is wrong.
        if type(kind) is not int or not 0 <= kind < len(KINDS):
            raise EnvelopeDecodeError(
                f"correlation.kind: expected 0 (none), 1 (request) or 2 (response), got "
                f"{kind if type(kind) is int else _kind(kind)}",
                size,
            )
        raise EnvelopeDecodeError(
            f"correlation.wire_req_id: expected a u64, got {_kind(req_id)}", size
        )
    raise EnvelopeDecodeError(f"correlation: expected a map, got {_kind(raw)}", size)


def _decode_addresses(
    raw: object, side: str, limits: EnvelopeLimits, size: int
) -> tuple[bytes, ...]:
    """Check `dest_peer_addresses` or `src_peer_addresses` (`side` is "dest" or "src")."""
    max_count = limits.max_src_addresses if side == "src" else limits.max_dest_addresses
    if type(raw) is list and len(raw) <= max_count:
        max_bytes = limits.max_src_address_bytes
        for item in raw:
            if type(item) is not bytes or not 0 < len(item) <= max_bytes:
                break
        else:
            return tuple(raw)
    name = f"{side}_peer_addresses"
    if type(raw) is not list:
        raise EnvelopeDecodeError(_describe_list_field(name, raw), size)
    cap_name = f"max_{side}_addresses"
    if len(raw) > max_count:
        raise EnvelopeDecodeError(
            f"{name}: {len(raw)} addresses exceed {cap_name} {max_count}", size
        )
    max_bytes = limits.max_src_address_bytes
    for i, item in enumerate(raw):
        if type(item) is not bytes:
            raise EnvelopeDecodeError(f"{name}[{i}]: expected bin, got {_kind(item)}", size)
        if not 0 < len(item) <= max_bytes:
            raise EnvelopeDecodeError(
                f"{name}[{i}]: {len(item)} bytes is outside 1..{max_bytes} (max_src_address_bytes)",
                size,
            )
    raise AssertionError("unreachable: the fast check failed but no address is bad")


def _decode_rtt_reports(
    raw: object, limits: EnvelopeLimits, size: int
) -> tuple[tuple[bytes, int], ...]:
    max_count = limits.max_rtt_reports
    if type(raw) is not list:
        raise EnvelopeDecodeError(_describe_list_field("edge_rtt_reports", raw), size)
    if len(raw) > max_count:
        raise EnvelopeDecodeError(
            f"edge_rtt_reports: {len(raw)} reports exceed max_rtt_reports {max_count}", size
        )
    out = []
    for i, item in enumerate(raw):
        if not (
            type(item) is list
            and len(item) == 2
            and type(item[0]) is bytes
            and 0 < len(item[0]) <= MAX_PEER_ID_BYTES
            and type(item[1]) is int
            and 0 <= item[1] <= U64_MAX
        ):
            raise EnvelopeDecodeError(
                f"edge_rtt_reports[{i}]: expected [peer id bin of 1..{MAX_PEER_ID_BYTES} bytes, "
                f"rtt_ns u64], got {_kind(item)}",
                size,
            )
        out.append((item[0], item[1]))
    return tuple(out)


def _fill_error(i: int, f: object, limits: EnvelopeLimits) -> FillError:
    """Say why fill `i` failed the fast check (the slow path; runs only for bad fills)."""
    if type(f) is not dict:
        return FillError(i, f"fills[{i}]: expected a map, got {_kind(f)}", 0, 0)
    payload = f.get("payload", _MISSING)
    thash = f.get("type_hash", _MISSING)
    payload_size = len(payload) if type(payload) is bytes else 0
    type_hash = thash if type(thash) is int and 0 <= thash <= U64_MAX else 0
    for key in _FILL_KEYS:
        if key not in f:
            return FillError(i, f"fills[{i}].{key}: missing", payload_size, type_hash)
    suffix = f["dest_suffix"]
    trigger = f["trigger_only"]
    if type(suffix) is not bytes:
        detail = f"dest_suffix: expected bin, got {_kind(suffix)}"
    elif not suffix:
        detail = "dest_suffix: empty"
    elif len(suffix) > limits.max_suffix_bytes:
        detail = (
            f"dest_suffix: {len(suffix)} bytes exceeds max_suffix_bytes {limits.max_suffix_bytes}"
        )
    elif type(payload) is not bytes:
        detail = f"payload: expected bin, got {_kind(payload)}"
    elif len(payload) > limits.max_fill_payload_bytes:
        detail = (
            f"payload: {len(payload)} bytes exceeds max_fill_payload_bytes "
            f"{limits.max_fill_payload_bytes}"
        )
    elif type(trigger) is not bool:
        detail = f"trigger_only: expected bool, got {_kind(trigger)}"
    else:
        detail = f"type_hash: expected a u64, got {thash if type(thash) is int else _kind(thash)}"
    return FillError(i, f"fills[{i}].{detail}", payload_size, type_hash)


def _describe_version(version: object) -> str:
    if version is _MISSING:
        return "schema_version: missing"
    if type(version) is not int:
        return f"schema_version: expected an int, got {_kind(version)}"
    return f"schema_version: got {version}, this build reads only {SCHEMA_VERSION}"


def _describe_list_field(name: str, value: object) -> str:
    if value is _MISSING:
        return f"{name}: missing"
    return f"{name}: expected an array, got {_kind(value)}"


def _kind(value: object) -> str:
    """A short msgpack-flavoured name for a decoded value's type, for error details."""
    if value is None:
        return "nil"
    if value is _MISSING:
        return "missing"
    return {
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        bytes: "bin",
        list: "array",
        dict: "map",
    }.get(type(value), type(value).__name__)
