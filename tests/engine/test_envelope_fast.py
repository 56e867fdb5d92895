"""The decoder's fast path (`_envelope_fast`) against the general msgpack path.

Its contract: `decode_canonical(data, limits)` is None or exactly `decode_parts_msgpack(data,
limits)` (same values, same types, the shared `NO_CORRELATION`); every envelope bbnode itself
encodes (no rtt reports) within the limits takes it, whatever its number of fills, and any
other layout of the same values (key order, wider encodings, repeated keys) is left to the
general path.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bbnode.engine._envelope_decode import decode_parts, decode_parts_msgpack
from bbnode.engine._envelope_fast import decode_canonical
from bbnode.engine._envelope_types import NO_CORRELATION, RawEnvelope
from bbnode.engine.envelope import (
    Correlation,
    CorrelationKind,
    EnvelopeDecodeError,
    EnvelopeLimits,
    SlotFill,
    WireEnvelope,
    encode_envelope,
)
from bbnode.ids import Address

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFAULT = EnvelopeLimits()
SUFFIX = Address([("component", 0x1234ABCD), ("op", "on_message")]).to_bytes()

u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
# Edges of every msgpack uint width, so each header (fixint, uint8..uint64) shows up.
uints = u64 | st.sampled_from(
    [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0xFFFFFFFF, 1 << 32, (1 << 64) - 1]
)
# Lengths around the bin8/bin16 boundary as well as small ones.
payloads = st.binary(max_size=64) | st.binary(min_size=250, max_size=300)
fills = st.builds(
    SlotFill,
    dest_suffix=st.binary(min_size=1, max_size=64) | st.binary(min_size=255, max_size=260),
    payload=payloads,
    trigger_only=st.booleans(),
    type_hash=uints,
)
addresses = st.lists(st.binary(min_size=1, max_size=256), max_size=8).map(tuple)


def bbnode_envelopes(min_fills: int, max_fills: int) -> st.SearchStrategy[WireEnvelope]:
    """Envelopes as bbnode builds them (no rtt reports), of `min_fills..max_fills` fills."""
    return st.builds(
        WireEnvelope,
        fills=st.lists(fills, min_size=min_fills, max_size=max_fills).map(tuple),
        dest_peer_addresses=addresses,
        correlation=st.builds(Correlation, st.sampled_from(CorrelationKind), uints),
        remaining_deadline_ns=st.none() | uints,
        src_peer_addresses=addresses,
    )


# What the fast path reads: few fills (the usual case) or many.
own_envelopes = bbnode_envelopes(0, 2) | bbnode_envelopes(3, 17)
any_envelopes = st.builds(
    WireEnvelope,
    # Often few fills: with many, some limit nearly always trips.
    fills=(st.lists(fills, max_size=3) | st.lists(fills, max_size=17)).map(tuple),
    dest_peer_addresses=st.lists(st.binary(min_size=1, max_size=300), max_size=17).map(tuple),
    correlation=st.builds(Correlation, st.sampled_from(CorrelationKind), uints),
    remaining_deadline_ns=st.none() | uints,
    edge_rtt_reports=st.lists(st.tuples(st.binary(min_size=1, max_size=8), u64), max_size=2).map(
        tuple
    ),
    src_peer_addresses=st.lists(st.binary(min_size=1, max_size=300), max_size=9).map(tuple),
)
small_limits = st.builds(
    EnvelopeLimits,
    max_envelope_bytes=st.integers(1, 4096),
    max_fills=st.integers(1, 16),
    max_fill_payload_bytes=st.integers(1, 300),
    max_suffix_bytes=st.integers(1, 300),
    max_src_addresses=st.integers(1, 9),
    max_src_address_bytes=st.integers(1, 300),
    max_dest_addresses=st.integers(1, 17),
    max_rtt_reports=st.integers(1, 3),
    max_map_keys=st.integers(1, 9),
)


def shape(parts: RawEnvelope) -> list[Any]:
    """`parts` with the type of every value, and whether the correlation is the shared one."""
    fills, errors, correlation, deadline, dest, src, rtt = parts
    return [
        [(f, [type(v) for v in f]) for f in fills],
        errors,
        (correlation, type(correlation.kind), correlation is NO_CORRELATION),
        (deadline, type(deadline)),
        (dest, type(dest), [type(a) for a in dest]),
        (src, type(src), [type(a) for a in src]),
        rtt,
    ]


def general(data: bytes, limits: EnvelopeLimits) -> RawEnvelope | str:
    """What the msgpack path makes of `data`: its parts, or its error detail."""
    try:
        return decode_parts_msgpack(data, limits)
    except EnvelopeDecodeError as exc:
        return exc.detail


def assert_agrees(data: bytes, limits: EnvelopeLimits) -> RawEnvelope | None:
    """The fast path gives up or matches the general path; `decode_parts` always matches."""
    expected = general(data, limits)
    fast = decode_canonical(data, limits) if len(data) <= limits.max_envelope_bytes else None
    if fast is not None:
        assert not isinstance(expected, str), expected
        assert shape(fast) == shape(expected)
    try:
        combined: RawEnvelope | str = decode_parts(data, limits)
    except EnvelopeDecodeError as exc:
        combined = exc.detail
    if isinstance(expected, str):
        assert combined == expected
    else:
        assert not isinstance(combined, str)
        assert shape(combined) == shape(expected)
    return fast


@FAST
@given(own_envelopes)
def test_every_envelope_bbnode_sends_takes_the_fast_path(env: WireEnvelope) -> None:
    assert assert_agrees(encode_envelope(env), DEFAULT) is not None


def test_envelopes_of_many_fills_take_the_fast_path() -> None:
    fill = SlotFill(SUFFIX, b"\x01", False, 5)
    at_cap = encode_envelope(WireEnvelope((fill,) * DEFAULT.max_fills))
    above = encode_envelope(WireEnvelope((fill,) * (DEFAULT.max_fills + 1)))
    assert assert_agrees(at_cap, DEFAULT) is not None
    assert assert_agrees(above, DEFAULT) is None  # the general path words the error


@FAST
@given(any_envelopes, small_limits)
def test_any_envelope_under_any_limits(env: WireEnvelope, limits: EnvelopeLimits) -> None:
    assert_agrees(encode_envelope(env), limits)


@FAST
@given(own_envelopes, st.data())
def test_mutated_envelopes(env: WireEnvelope, data: st.DataObject) -> None:
    raw = bytearray(encode_envelope(env))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    assert_agrees(bytes(raw), DEFAULT)


@FAST
@given(own_envelopes, st.data())
def test_truncated_or_extended_envelopes(env: WireEnvelope, data: st.DataObject) -> None:
    raw = encode_envelope(env)
    end = data.draw(st.integers(0, len(raw) - 1))
    assert assert_agrees(raw[:end], DEFAULT) is None
    assert assert_agrees(raw + data.draw(st.binary(min_size=1, max_size=4)), DEFAULT) is None
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert_agrees(raw[:cut] + raw[cut + 1 :], DEFAULT)


def test_large_payload_uses_bin32() -> None:
    env = WireEnvelope((SlotFill(SUFFIX, b"x" * 70_000, False, 7),))
    data = encode_envelope(env)
    assert data.find(b"\xc6\x00\x01\x11\x70") > 0  # bin32, 70 000 bytes
    assert assert_agrees(data, DEFAULT) is not None


def raw_env(**over: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "dest_peer_addresses": [],
        "fills": [
            {"dest_suffix": SUFFIX, "payload": b"\x01", "trigger_only": False, "type_hash": 5}
        ],
        "correlation": {"kind": 1, "wire_req_id": 9},
        "remaining_deadline_ns": 100,
        "edge_rtt_reports": [],
        "src_peer_addresses": [b"\x04\x7f\x00\x00\x01"],
        "schema_version": 1,
    }
    env.update(over)
    return env


def test_the_hand_packed_reference_takes_the_fast_path() -> None:
    assert assert_agrees(msgpack.packb(raw_env()), DEFAULT) is not None


@pytest.mark.parametrize(
    "data",
    [
        # well-formed, but laid out otherwise: the general path reads them
        msgpack.packb(dict(reversed(raw_env().items()))),
        msgpack.packb({**raw_env(), "extra": 1}),
        msgpack.packb(raw_env(edge_rtt_reports=[[b"\x00\x01\x07", 3]])),
        msgpack.packb(raw_env(remaining_deadline_ns=-1)),
        msgpack.packb(raw_env(correlation={"kind": 0, "wire_req_id": 1.0})),
        msgpack.packb(raw_env(correlation={"kind": 3, "wire_req_id": 1})),
        msgpack.packb(raw_env(schema_version=2)),
        msgpack.packb(raw_env(src_peer_addresses=["a"])),
        msgpack.packb(raw_env(dest_peer_addresses=[b""])),
        msgpack.packb(raw_env(fills=[{**raw_env()["fills"][0], "dest_suffix": "s"}])),
        msgpack.packb(raw_env(fills=[{**raw_env()["fills"][0], "trigger_only": 1}])),
        msgpack.packb(raw_env(fills=[{**raw_env()["fills"][0], "type_hash": -1}])),
        msgpack.packb(raw_env(fills=[{**raw_env()["fills"][0], "dest_suffix": b""}])),
        msgpack.packb(raw_env(fills=[None])),
        msgpack.packb(raw_env(fills=[raw_env()["fills"][0]] * 16)),
        msgpack.packb(raw_env(src_peer_addresses=[b"\x04"] * 9)),
    ],
)
def test_other_layouts_agree(data: bytes) -> None:
    assert_agrees(data, DEFAULT)


@pytest.mark.parametrize(
    ("narrow", "wide"),
    [
        (b"\xa9type_hash\x05", b"\xa9type_hash\xcf" + bytes(7) + b"\x05"),
        (b"\xa7payload\xc4\x01", b"\xa7payload\xc5\x00\x01"),
        (b"\x87", b"\xde\x00\x07"),  # the envelope map as a map16
    ],
)
def test_non_minimal_encodings_are_left_to_the_general_path(narrow: bytes, wide: bytes) -> None:
    packed = msgpack.packb(raw_env())
    assert packed.count(narrow) == 1
    widened = packed.replace(narrow, wide)
    assert assert_agrees(widened, DEFAULT) is None
    assert decode_parts(widened) == decode_parts(packed)


@pytest.mark.parametrize(
    ("repeats", "max_map_keys", "general_refuses"),
    [(1, 64, False), (1, 7, False), (4, 7, True)],
    ids=["within_the_cap", "within_a_cap_of_seven", "past_the_cap"],
)
def test_repeated_keys_are_left_to_the_general_path(
    repeats: int, max_map_keys: int, general_refuses: bool
) -> None:
    """msgspec keeps the last of repeated keys without counting them against `max_map_keys`;
    the general path counts them: a fill map of 4 + `repeats` entries is refused past the
    cap, and read (the last value wins) within it."""
    packed = msgpack.packb(raw_env())
    fill_map = packed.index(b"\x84\xabdest_suffix")
    repeat = msgpack.packb("type_hash") + msgpack.packb(6)
    repeated = packed[:fill_map] + bytes((0x84 + repeats,)) + packed[fill_map + 1 :]
    repeated = repeated.replace(b"\xa9type_hash\x05", b"\xa9type_hash\x05" + repeat * repeats)
    limits = EnvelopeLimits(max_map_keys=max_map_keys)
    expected = general(repeated, limits)
    if general_refuses:
        assert isinstance(expected, str)
    else:
        assert not isinstance(expected, str)
        assert expected[0][0][4] == 6  # the fill's type_hash: the last one given
    assert assert_agrees(repeated, limits) is None


@pytest.mark.parametrize("max_map_keys", [6, 7])
def test_map_key_cap_below_seven_leaves_it_to_the_general_path(max_map_keys: int) -> None:
    limits = EnvelopeLimits(max_map_keys=max_map_keys)
    fast = assert_agrees(msgpack.packb(raw_env()), limits)
    assert (fast is None) == (max_map_keys < 7)


def edges(env: WireEnvelope, data: bytes) -> dict[str, int]:
    """For each limit `env` can trip, the smallest value that still admits `data`."""
    fills = env.fills
    addresses = env.dest_peer_addresses + env.src_peer_addresses
    used = {
        "max_envelope_bytes": len(data),
        "max_fills": len(fills),
        "max_fill_payload_bytes": max((len(f.payload) for f in fills), default=0),
        "max_suffix_bytes": max((len(f.dest_suffix) for f in fills), default=0),
        "max_src_addresses": len(env.src_peer_addresses),
        "max_src_address_bytes": max(map(len, addresses), default=0),
        "max_dest_addresses": len(env.dest_peer_addresses),
        "max_map_keys": 7,
    }
    return {name: value for name, value in used.items() if value >= 1}


@FAST
@given(own_envelopes)
def test_each_limit_at_its_edge(env: WireEnvelope) -> None:
    data = encode_envelope(env)
    for name, edge in edges(env, data).items():
        assert assert_agrees(data, EnvelopeLimits(**{name: edge})) is not None, name
        if edge > 1:
            assert assert_agrees(data, EnvelopeLimits(**{name: edge - 1})) is None, name


@pytest.mark.parametrize(
    "env",
    [
        WireEnvelope(
            (
                SlotFill(SUFFIX, b"\x01\x02", True, 200),
                SlotFill(b"\xe2", b"", False, (1 << 64) - 1),
            ),
            dest_peer_addresses=(b"\x04\x0a\x00\x00\x01",),
            correlation=Correlation(CorrelationKind.REQUEST, 300),
            remaining_deadline_ns=70_000,
            src_peer_addresses=(b"\x04\x0a\x00\x00\x02", b"\x04\x0a\x00\x00\x03"),
        ),
        WireEnvelope((SlotFill(SUFFIX, b"\xc4\x01x", False, 5),), src_peer_addresses=(b"\x04",)),
        WireEnvelope(()),
    ],
    ids=["request", "one_way", "no_fills"],
)
def test_every_byte_replaced_by_every_value(env: WireEnvelope) -> None:
    data = encode_envelope(env)
    for pos in range(len(data)):
        for value in range(256):
            assert_agrees(data[:pos] + bytes((value,)) + data[pos + 1 :], DEFAULT)


def test_an_array_header_must_be_an_array_header() -> None:
    """16 addresses need an array16 header; a fixstr byte that would count 16 is not one."""
    env = WireEnvelope((), dest_peer_addresses=(b"\x04",) * 16)
    data = encode_envelope(env)
    array16 = b"\xdc\x00\x10"
    assert data.count(array16) == 1
    assert assert_agrees(data, DEFAULT) is not None
    assert assert_agrees(data.replace(array16, b"\xa0"), DEFAULT) is None
