"""The byte layout every bbnode sender writes, shared by its writer and its fast reader.

`_envelope_encode` writes an envelope as msgpack would write the seven-key map with its keys
in one fixed order and every value in its shortest form; `_envelope_fast` reads exactly that
layout back without msgpack. Both take the fixed parts from here, so a change to the layout
changes both at once: were they spelled out twice, a change to one copy would silently send
every envelope down the fast reader's fallback (or worse, leave it reading a stale layout).

Wire order: dest_peer_addresses, fills (each `{dest_suffix, payload, trigger_only,
type_hash}`), correlation (`{kind, wire_req_id}`), remaining_deadline_ns, edge_rtt_reports,
src_peer_addresses, schema_version. 0x87, 0x84, 0x82 open maps of 7, 4 and 2 entries; 0xc0 is
nil, 0xc2/0xc3 false/true, 0x90 the empty array (msgpack spec "formats").
"""

from __future__ import annotations

from typing import Final

import msgpack

from bbnode.engine._envelope_types import SCHEMA_VERSION, CorrelationKind

__all__ = [
    "CORRELATION",
    "DEADLINE",
    "FILL",
    "FILLS",
    "HEAD",
    "KINDS",
    "NO_DEADLINE",
    "NO_RTT_SRC",
    "PAYLOAD",
    "REQ_ID",
    "RTT",
    "SRC",
    "TAIL",
    "TRIGGER_FALSE",
    "TRIGGER_TRUE",
]


def _key(name: str) -> bytes:
    packed: bytes = msgpack.packb(name)
    return packed


HEAD: Final = b"\x87" + _key("dest_peer_addresses")
"""The envelope map's header and its first key; the destination addresses follow."""
FILLS: Final = _key("fills")
FILL: Final = b"\x84" + _key("dest_suffix")
"""One fill's map header and first key; its suffix bin follows."""
PAYLOAD: Final = _key("payload")
TRIGGER_FALSE: Final = _key("trigger_only") + b"\xc2" + _key("type_hash")
TRIGGER_TRUE: Final = _key("trigger_only") + b"\xc3" + _key("type_hash")
"""`trigger_only` with its value, then the `type_hash` key; the hash follows."""
CORRELATION: Final = _key("correlation") + b"\x82" + _key("kind")
REQ_ID: Final = _key("wire_req_id")
DEADLINE: Final = _key("remaining_deadline_ns")
NO_DEADLINE: Final = DEADLINE + b"\xc0"
RTT: Final = _key("edge_rtt_reports")
SRC: Final = _key("src_peer_addresses")
NO_RTT_SRC: Final = RTT + b"\x90" + SRC
"""No RTT reports (what bbnode sends), then the source addresses key."""
TAIL: Final = _key("schema_version") + msgpack.packb(SCHEMA_VERSION)

KINDS: Final = (CorrelationKind.NONE, CorrelationKind.REQUEST, CorrelationKind.RESPONSE)
"""The `correlation.kind` wire discriminants, in order: `KINDS[kind]` is its CorrelationKind."""
CORRELATION_HEADS: Final = {kind: CORRELATION + bytes([kind]) + REQ_ID for kind in KINDS}
"""The correlation map up to its `wire_req_id` value, for each kind (whose wire value, a
positive fixint, is its int value); the encoder writes these, the fast reader matches them."""
