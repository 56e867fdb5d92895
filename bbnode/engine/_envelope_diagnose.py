"""Explain why msgpack refused an envelope, naming the field (the decoder's slow path).

`decode_envelope` runs one `unpackb` with caps; when that fails, msgpack's message ("300
exceeds max_array_len(256)", "incomplete input") says neither where nor which cap. This module
re-reads the input with a streaming `Unpacker` under the same caps, field by field, to produce a
detail such as `fills: 300 entries exceed max_fills 256` or `src_peer_addresses[2]: truncated`.
It only runs for input that is already known to be bad, so it favours clarity over speed.
"""

from __future__ import annotations

from typing import Final

import msgpack

from bbnode.engine._envelope_types import EnvelopeLimits

__all__ = ["describe_unpack_failure"]

_Failure = (ValueError, msgpack.UnpackException)

# Top-level fields that are arrays, and the `EnvelopeLimits` field that caps each.
_ARRAY_CAPS: Final = {
    "fills": "max_fills",
    "dest_peer_addresses": "max_dest_addresses",
    "src_peer_addresses": "max_src_addresses",
    "edge_rtt_reports": "max_rtt_reports",
}


def describe_unpack_failure(
    data: bytes | bytearray | memoryview, limits: EnvelopeLimits, exc: Exception
) -> str:
    """A detail for `EnvelopeDecodeError` after `unpackb(data)` raised `exc`."""
    if isinstance(exc, msgpack.ExtraData):
        return f"envelope: {len(exc.extra)} trailing bytes after the envelope map"
    if not data:
        return "envelope: empty input"
    unpacker = msgpack.Unpacker(max_buffer_size=len(data), **limits.unpack_kwargs)
    unpacker.feed(data)
    try:
        n_keys = unpacker.read_map_header()
    except _Failure as err:
        return f"envelope: expected a msgpack map: {_explain(err)}"
    if n_keys > limits.max_map_keys:
        return f"envelope: {n_keys} keys exceed max_map_keys {limits.max_map_keys}"
    for k in range(n_keys):
        try:
            key = unpacker.unpack()
        except _Failure as err:
            return f"envelope: key #{k}: {_explain(err)}"
        if not isinstance(key, str):
            return f"envelope: key #{k}: expected a str key, got {type(key).__name__}"
        name = key
        problem = _check_value(unpacker, name, limits)
        if problem is not None:
            return problem
    # Nothing at the top level: a nested rule msgpack enforces (e.g. a non-str key in a fill).
    return f"envelope: {_explain(exc)}"


def _check_value(unpacker: msgpack.Unpacker, name: str, limits: EnvelopeLimits) -> str | None:
    """Consume one top-level value; return a detail if it is where the input goes wrong."""
    cap_name = _ARRAY_CAPS.get(name)
    if cap_name is not None:
        try:
            count = unpacker.read_array_header()
        except _Failure:
            pass  # not an array header (or truncated): the generic read below says which
        else:
            cap = getattr(limits, cap_name)
            if count > cap:
                return f"{name}: {count} entries exceed {cap_name} {cap}"
            for i in range(count):
                try:
                    unpacker.unpack()
                except _Failure as err:
                    return f"{name}[{i}]: {_explain(err)}"
            return None
    try:
        unpacker.unpack()
    except _Failure as err:
        return f"{name}: {_explain(err)}"
    return None


def _explain(err: Exception) -> str:
    if isinstance(err, msgpack.OutOfData) or "incomplete input" in str(err):
        return "truncated (the input ends inside this value)"
    if isinstance(err, msgpack.StackError):
        return "nested too deeply"
    if isinstance(err, msgpack.FormatError):
        return "not msgpack (reserved type byte)"
    return str(err) or type(err).__name__
