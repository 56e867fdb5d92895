"""Read the exact byte layout `encode_envelope` writes, without msgpack (the decoder's fast path).

`unpackb` builds what `decode_parts` then takes apart again: thirteen key strings (decoded,
hashed and interned), three dicts and three lists for a one-fill envelope. That general path
was about 40 % of the engine's per-envelope instructions (34k of 81k, under cachegrind, for
the `bench/engine_throughput.py` envelope). Every bbnode sender writes one layout
(`encode_envelope`: the seven keys in a fixed order, each fill a four-key map, bins and uints
in their shortest form; the fixed parts are `_envelope_layout`'s), so that layout is read here
straight from the bytes: fixed parts are compared as slices (cheaper than `startswith` calls),
adjacent ones as one slice (a comparison costs about what its slice costs, whatever the
length), the rest sliced out, and wide uints read with `struct` (cheaper than slicing for
`int.from_bytes`). For that envelope (100-byte payload, one source address) this costs 2.4 us
against 3.7 us (24k instructions against 34k); for a request of the ping-pong round trip
(64-byte payload, one destination address, a deadline) 30k against 38k.

It pays off for small envelopes only: each fill costs it more than msgpack's C unpacker plus
the general path's dict lookups (timeit, 100-byte payloads, a 64-bit type hash, one
destination and one source address: 3.5 against 4.0 us for one fill, even at two, 6.4 against
5.7 us at three, 12.8 against 10.2 us at eight). One-way sends to one peer are merged into
envelopes of many fills (`_coalesce`), so it gives up on more than `MAX_FAST_FILLS` fills as
soon as it has read the fill count.

The contract, held by a differential property test: `decode_canonical` returns either None or
exactly what `decode_parts_msgpack` returns for the same bytes and limits. It returns None
(and the caller runs that general path, which also words every error and `FillError`) for
anything else: another key order or encoding, an unknown key, more than `MAX_FAST_FILLS` fills
or 15 addresses, a non-empty `edge_rtt_reports` (bbnode never sends one), a fill or an address
the general path would reject, a limit that would trip, truncated or trailing bytes. It never
raises.

Why a truncated input cannot slip through: a bin or uint is sliced by its declared length and
the position moves past it even when fewer bytes remain, so after a truncation the position
stays past the end; every later fixed-part comparison then fails, every byte read raises
IndexError and every `struct` read `struct.error` (both caught), and the last check demands
the tail end the input exactly.
"""

from __future__ import annotations

from struct import Struct
from struct import error as StructError
from typing import Final

from bbnode.engine._envelope_layout import (
    CORRELATION_HEADS,
    DEADLINE,
    FILL,
    FILLS,
    HEAD,
    KINDS,
    NO_DEADLINE,
    NO_RTT_SRC,
    PAYLOAD,
    TAIL,
    TRIGGER_FALSE,
    TRIGGER_TRUE,
)
from bbnode.engine._envelope_types import (
    NO_CORRELATION,
    Correlation,
    EnvelopeLimits,
    RawEnvelope,
    RawFill,
)

__all__ = ["MAX_FAST_FILLS", "decode_canonical"]


# msgpack type bytes (msgpack spec "formats").
_FIXARRAY: Final = 0x90  # 0x90 | count
_FIXARRAY_MAX: Final = 15
_NIL: Final = 0xC0
_BIN8: Final = 0xC4
_UINT64: Final = 0xCF
_BIN_WIDTHS: Final = {0xC5: 2, 0xC6: 4}  # bin16, bin32: big-endian length
_FIXINT_END: Final = 0x80  # 0x00..0x7f is the int itself
# uint8..uint64: the big-endian reader and the width of each (`unpack_from` is cheaper than
# slicing for `int.from_bytes`, and raises `struct.error` past the end of the input).
_UINT_READERS: Final = {
    0xCC: (Struct(">B").unpack_from, 1),
    0xCD: (Struct(">H").unpack_from, 2),
    0xCE: (Struct(">I").unpack_from, 4),
    0xCF: (Struct(">Q").unpack_from, 8),
}
_read_u64: Final = Struct(">Q").unpack_from

# The fixed parts come from `_envelope_layout`, shared with the encoder. Runs of them with no
# value in between are compared as one slice (each comparison costs as much as the slice):
# the fills key and a one-fill array with that fill's first key;
_ONE_FILL: Final = FILLS + b"\x91" + FILL
# `CORRELATION_HEADS` the other way round: the bytes read -> the CorrelationKind
_KIND_OF_HEAD: Final = {head: kind for kind, head in CORRELATION_HEADS.items()}
# a one-way envelope's `wire_req_id` 0, no deadline, no rtt reports, up to the source addresses;
_ONE_WAY_REST: Final = b"\x00" + NO_DEADLINE + NO_RTT_SRC
# Their lengths, spelled out once (a `len()` call per use would cost as much as the compare).
_HEAD_LEN: Final = len(HEAD)
_FILLS_LEN: Final = len(FILLS)
_ONE_FILL_LEN: Final = len(_ONE_FILL)
_FILL_LEN: Final = len(FILL)
_PAYLOAD_LEN: Final = len(PAYLOAD)
_TRIGGER_LEN: Final = len(TRIGGER_FALSE)
_CORRELATION_HEAD_LEN: Final = len(CORRELATION_HEADS[KINDS[0]])  # the same for every kind
_ONE_WAY_REST_LEN: Final = len(_ONE_WAY_REST)
_DEADLINE_LEN: Final = len(DEADLINE)
_NO_RTT_SRC_LEN: Final = len(NO_RTT_SRC)
# The layout's largest map: a `max_map_keys` below this makes the general path refuse it.
_MAP_ENTRIES: Final = 7
_NONE: Final = KINDS[0]


MAX_FAST_FILLS: Final = 2
"""Above this many fills the general path is faster (see the module docstring); at most 15."""


class _Deviation(Exception):
    """The input leaves the canonical layout (the general path takes over)."""


def _bin16_or_32(data: bytes, pos: int) -> tuple[bytes, int]:
    """The bin16 or bin32 whose header is at `pos`, and the position after it.

    Callers read a bin8 (the usual case) inline first; any other header is a deviation.
    """
    width = _BIN_WIDTHS.get(data[pos])
    if width is None:
        raise _Deviation
    start = pos + 1 + width
    end = start + int.from_bytes(data[pos + 1 : start], "big")
    return data[start:end], end


def _uint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned int whose header is at `pos`, and the position after it."""
    head = data[pos]
    if head < _FIXINT_END:
        return head, pos + 1
    reader = _UINT_READERS.get(head)
    if reader is None:
        raise _Deviation
    read, width = reader
    return read(data, pos + 1)[0], pos + 1 + width


def _addresses(
    data: bytes, pos: int, max_count: int, max_bytes: int
) -> tuple[tuple[bytes, ...], int]:
    """The fixarray of address bins at `pos` (dest or src), within its caps."""
    count = data[pos] - _FIXARRAY
    if count == 0:
        return (), pos + 1
    if not 0 < count <= max_count or count > _FIXARRAY_MAX:
        raise _Deviation
    pos += 1
    if count == 1 and data[pos] == _BIN8:  # one bin8 address: no list to build
        end = pos + 2 + data[pos + 1]
        item = data[pos + 2 : end]
        if not 0 < len(item) <= max_bytes:
            raise _Deviation
        return (item,), end
    out = []
    for _ in range(count):
        if data[pos] == _BIN8:
            end = pos + 2 + data[pos + 1]
            item = data[pos + 2 : end]
            pos = end
        else:
            item, pos = _bin16_or_32(data, pos)
        if not 0 < len(item) <= max_bytes:
            raise _Deviation
        out.append(item)
    return tuple(out), pos


def decode_canonical(data: bytes, limits: EnvelopeLimits) -> RawEnvelope | None:
    """`decode_parts(data, limits)` for a canonically laid out envelope, else None.

    `data` must be `bytes` no longer than `limits.max_envelope_bytes` (the caller checks).
    Bin8 headers (the usual suffix and payload) and 64-bit type hashes are read inline: a
    call each costs as much as the rest of the read.
    """
    if data[:_HEAD_LEN] != HEAD or limits.max_map_keys < _MAP_ENTRIES:
        return None
    try:
        max_address_bytes = limits.max_src_address_bytes
        if data[_HEAD_LEN] == _FIXARRAY:  # no destination addresses
            dest: tuple[bytes, ...] = ()
            pos = _HEAD_LEN + 1
        else:
            dest, pos = _addresses(data, _HEAD_LEN, limits.max_dest_addresses, max_address_bytes)
        # The first fill's map header and first key are checked with the fills' header.
        if data[pos : pos + _ONE_FILL_LEN] == _ONE_FILL:
            count = 1
            pos += _ONE_FILL_LEN
        else:
            if data[pos : pos + _FILLS_LEN] != FILLS:
                return None
            pos += _FILLS_LEN
            count = data[pos] - _FIXARRAY
            if not 0 <= count <= MAX_FAST_FILLS:
                return None  # more fills, or not a fixarray header at all
            pos += 1
            if count:
                if data[pos : pos + _FILL_LEN] != FILL:
                    return None
                pos += _FILL_LEN
        if count > limits.max_fills:
            return None
        max_suffix = limits.max_suffix_bytes
        max_payload = limits.max_fill_payload_bytes
        fills: list[RawFill] = []
        for index in range(count):
            if index:
                if data[pos : pos + _FILL_LEN] != FILL:
                    return None
                pos += _FILL_LEN
            if data[pos] == _BIN8:
                end = pos + 2 + data[pos + 1]
                suffix = data[pos + 2 : end]
                pos = end
            else:
                suffix, pos = _bin16_or_32(data, pos)
            if data[pos : pos + _PAYLOAD_LEN] != PAYLOAD:
                return None
            pos += _PAYLOAD_LEN
            if data[pos] == _BIN8:
                end = pos + 2 + data[pos + 1]
                payload = data[pos + 2 : end]
                pos = end
            else:
                payload, pos = _bin16_or_32(data, pos)
            flag = data[pos : pos + _TRIGGER_LEN]
            if flag == TRIGGER_FALSE:
                trigger = False
            elif flag == TRIGGER_TRUE:
                trigger = True
            else:
                return None
            pos += _TRIGGER_LEN
            if data[pos] == _UINT64:  # a 64-bit hash rarely fits a shorter form
                type_hash = _read_u64(data, pos + 1)[0]
                pos += 9
            else:
                type_hash, pos = _uint(data, pos)
            if not (0 < len(suffix) <= max_suffix and len(payload) <= max_payload):
                return None  # a FillError: the general path words it
            fills.append((index, suffix, payload, trigger, type_hash))

        kind = _KIND_OF_HEAD.get(data[pos : pos + _CORRELATION_HEAD_LEN])
        if kind is None:
            return None
        pos += _CORRELATION_HEAD_LEN
        deadline: int | None
        if kind is _NONE and data[pos : pos + _ONE_WAY_REST_LEN] == _ONE_WAY_REST:
            correlation = NO_CORRELATION
            deadline = None
            pos += _ONE_WAY_REST_LEN
        else:
            req_id, pos = _uint(data, pos)
            if kind is _NONE and req_id == 0:
                correlation = NO_CORRELATION
            else:
                correlation = Correlation(kind, req_id)
            if data[pos : pos + _DEADLINE_LEN] != DEADLINE:
                return None
            pos += _DEADLINE_LEN
            head = data[pos]
            if head == _NIL:
                deadline = None
                pos += 1
            elif head == _UINT64:  # any deadline past 4.3 s
                deadline = _read_u64(data, pos + 1)[0]
                pos += 9
            else:
                deadline, pos = _uint(data, pos)
            if data[pos : pos + _NO_RTT_SRC_LEN] != NO_RTT_SRC:
                return None
            pos += _NO_RTT_SRC_LEN
        if data[pos] == _FIXARRAY:  # no source addresses
            src: tuple[bytes, ...] = ()
            pos += 1
        else:
            src, pos = _addresses(data, pos, limits.max_src_addresses, max_address_bytes)
        if data[pos:] != TAIL:
            return None
    except (_Deviation, IndexError, StructError):
        return None
    return fills, (), correlation, deadline, dest, src, ()
