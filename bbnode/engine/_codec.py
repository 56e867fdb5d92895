"""msgpack for engine-internal values (op inputs, timer payloads, completion results).

Op inputs may hold engine types that plain msgpack cannot carry (the inbound `peer_id` is a
`PeerId`, `correlation` a `Correlation`); they are encoded as msgpack ext types so slot
contents, timers and queued completions survive a snapshot exactly. Values entering the
engine from the host or a component are round-tripped through `roundtrip()` once, at entry:
that validates them (a clear error names what cannot be encoded), copies them (the caller may
mutate its object afterwards) and normalises them (tuples become lists), so the value an op
sees is the same before and after a snapshot/restore.

Wire payloads (what peers exchange) are plain msgpack without ext types: see
`unpack_payload`, which refuses ext types from peers so they never alias these codes.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from bbnode.engine.envelope import Correlation, CorrelationKind
from bbnode.ids import Address, PeerId

__all__ = ["pack", "roundtrip", "unpack", "unpack_payload"]

_EXT_PEER: Final = 1
_EXT_ADDRESS: Final = 2
_EXT_CORRELATION: Final = 3


def _default(obj: object) -> Any:
    if isinstance(obj, PeerId):
        return msgpack.ExtType(_EXT_PEER, obj.to_bytes())
    if isinstance(obj, Address):
        return msgpack.ExtType(_EXT_ADDRESS, obj.to_bytes())
    if isinstance(obj, Correlation):
        return msgpack.ExtType(_EXT_CORRELATION, msgpack.packb([int(obj.kind), obj.wire_req_id]))
    raise TypeError(f"cannot encode a {type(obj).__name__} as msgpack")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_PEER:
        return PeerId.from_bytes(data)
    if code == _EXT_ADDRESS:
        return Address.from_bytes(data)
    if code == _EXT_CORRELATION:
        kind, wire_req_id = msgpack.unpackb(data)
        return Correlation(CorrelationKind(kind), wire_req_id)
    return msgpack.ExtType(code, data)


def pack(value: Any) -> bytes:
    """Encode an engine value; raises TypeError naming the first type it cannot encode."""
    data: bytes = msgpack.packb(value, default=_default, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    """Decode `pack` output."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, strict_map_key=False)


def roundtrip(value: Any) -> tuple[Any, int]:
    """`(unpack(pack(value)), encoded size)`: validated, copied, normalised."""
    data = pack(value)
    return unpack(data), len(data)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack ext type {code} is not allowed in a payload")


def unpack_payload(data: bytes) -> Any:
    """Decode a wire payload from a peer; ValueError/TypeError for anything malformed."""
    return msgpack.unpackb(data, ext_hook=_refuse_ext)
