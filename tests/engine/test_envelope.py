"""Wire envelope codec (SPEC §3.6): round trips, wire names, every cap, every malformed field.

The parser invariant (STYLE §7): any input either decodes or raises `EnvelopeDecodeError`;
one bad fill is a `FillError` and its siblings still arrive.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bbnode.engine.envelope import (
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
    decode_envelope,
    encode_envelope,
    type_hash_of,
)
from bbnode.ids import Address, PeerId

MIB = 1024 * 1024
SUFFIX = Address([("component", 0x1234ABCD), ("op", "on_message")]).to_bytes()
DELETE = object()
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def raw_fill(**over: Any) -> dict[str, Any]:
    fill: dict[str, Any] = {
        "dest_suffix": SUFFIX,
        "payload": msgpack.packb("hello"),
        "trigger_only": False,
        "type_hash": type_hash_of("str"),
    }
    return _apply(fill, over)


def raw_env(**over: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "dest_peer_addresses": [],
        "fills": [raw_fill()],
        "correlation": {"kind": 0, "wire_req_id": 0},
        "remaining_deadline_ns": None,
        "edge_rtt_reports": [],
        "src_peer_addresses": [],
        "schema_version": 1,
    }
    return _apply(env, over)


def _apply(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if value is DELETE:
            del base[key]
        else:
            base[key] = value
    return base


def pack(obj: Any) -> bytes:
    data = msgpack.packb(obj)
    assert isinstance(data, bytes)
    return data


def decode_error(data: bytes, limits: EnvelopeLimits | None = None) -> EnvelopeDecodeError:
    with pytest.raises(EnvelopeDecodeError) as info:
        decode_envelope(data, limits or EnvelopeLimits())
    assert info.value.payload_size == len(data)
    return info.value


# -- round trips and the wire form ----------------------------------------------------------------
u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
fills = st.builds(
    SlotFill,
    dest_suffix=st.binary(min_size=1, max_size=64),
    payload=st.binary(max_size=256),
    trigger_only=st.booleans(),
    type_hash=u64,
)
envelopes = st.builds(
    WireEnvelope,
    fills=st.lists(fills, max_size=6).map(tuple),
    dest_peer_addresses=st.lists(st.binary(min_size=1, max_size=256), max_size=4).map(tuple),
    correlation=st.builds(Correlation, st.sampled_from(CorrelationKind), u64),
    remaining_deadline_ns=st.none() | u64,
    edge_rtt_reports=st.lists(st.tuples(st.binary(min_size=1, max_size=128), u64), max_size=4).map(
        tuple
    ),
    src_peer_addresses=st.lists(st.binary(min_size=1, max_size=256), max_size=8).map(tuple),
)


@FAST
@given(envelopes)
def test_round_trip(env: WireEnvelope) -> None:
    decoded = decode_envelope(encode_envelope(env))
    assert decoded == DecodedEnvelope(env, ())
    assert hash(decoded.envelope) == hash(env)
    assert type(decoded.envelope.correlation.kind) is CorrelationKind


@FAST
@given(envelopes)
def test_encoding_is_exactly_msgpack_of_the_wire_map(env: WireEnvelope) -> None:
    """The encoder writes the map's bytes itself (no dicts built): they must be exactly what
    msgpack makes of the seven-key map, keys in wire order, values in shortest form."""
    wire_map = {
        "dest_peer_addresses": list(env.dest_peer_addresses),
        "fills": [
            {
                "dest_suffix": f.dest_suffix,
                "payload": f.payload,
                "trigger_only": f.trigger_only,
                "type_hash": f.type_hash,
            }
            for f in env.fills
        ],
        "correlation": {
            "kind": int(env.correlation.kind),
            "wire_req_id": env.correlation.wire_req_id,
        },
        "remaining_deadline_ns": env.remaining_deadline_ns,
        "edge_rtt_reports": [list(r) for r in env.edge_rtt_reports],
        "src_peer_addresses": list(env.src_peer_addresses),
        "schema_version": SCHEMA_VERSION,
    }
    assert encode_envelope(env) == msgpack.packb(wire_map)


def test_wire_form_uses_upstream_field_names() -> None:
    env = WireEnvelope(
        fills=(SlotFill(SUFFIX, b"\x01", True, 7),),
        dest_peer_addresses=(b"\x04\x7f\x00\x00\x01",),
        correlation=Correlation(CorrelationKind.RESPONSE, 9),
        remaining_deadline_ns=1_000,
        edge_rtt_reports=((PeerId.from_u64(3).to_bytes(), 250),),
        src_peer_addresses=(b"\x04\x0a\x00\x00\x02",),
    )
    assert msgpack.unpackb(encode_envelope(env)) == {
        "dest_peer_addresses": [b"\x04\x7f\x00\x00\x01"],
        "fills": [
            {"dest_suffix": SUFFIX, "payload": b"\x01", "trigger_only": True, "type_hash": 7}
        ],
        "correlation": {"kind": 2, "wire_req_id": 9},
        "remaining_deadline_ns": 1_000,
        "edge_rtt_reports": [[PeerId.from_u64(3).to_bytes(), 250]],
        "src_peer_addresses": [b"\x04\x0a\x00\x00\x02"],
        "schema_version": 1,
    }


def test_decodes_an_envelope_packed_by_hand() -> None:
    decoded = decode_envelope(pack(raw_env(correlation={"kind": 1, "wire_req_id": 5})))
    assert decoded.fill_errors == ()
    assert decoded.envelope == WireEnvelope(
        fills=(SlotFill(SUFFIX, msgpack.packb("hello"), False, type_hash_of("str")),),
        correlation=Correlation(CorrelationKind.REQUEST, 5),
    )


def test_optional_fields_default_when_absent() -> None:
    data = pack({"fills": [], "schema_version": 1})
    assert decode_envelope(data).envelope == WireEnvelope(fills=())


def test_unknown_keys_are_ignored_at_every_level() -> None:
    obj = raw_env(
        future_field=[1, 2, {"x": b"y"}],
        fills=[raw_fill(priority=3)],
        correlation={"kind": 1, "wire_req_id": 2, "trace": "abc"},
    )
    decoded = decode_envelope(pack(obj))
    assert decoded.fill_errors == ()
    assert (
        decoded.envelope
        == decode_envelope(pack(raw_env(correlation={"kind": 1, "wire_req_id": 2}))).envelope
    )


def test_accepts_bytearray_and_memoryview() -> None:
    data = pack(raw_env())
    assert decode_envelope(bytearray(data)) == decode_envelope(data)
    assert decode_envelope(memoryview(data)) == decode_envelope(data)


def test_non_bytes_input_is_a_local_type_error() -> None:
    with pytest.raises(TypeError, match="expected bytes, got str"):
        decode_envelope("not bytes")  # type: ignore[arg-type]


def test_type_hash_of_is_fnv1a_64_of_the_utf8_name() -> None:
    # Published FNV-1a 64-bit test vectors (Fowler/Noll/Vo reference test suite).
    assert type_hash_of("") == 0xCBF29CE484222325
    assert type_hash_of("a") == 0xAF63DC4C8601EC8C
    assert type_hash_of("foobar") == 0x85944171F73967E8
    with pytest.raises(TypeError, match="must be a str"):
        type_hash_of(b"a")


def test_value_types_are_frozen_and_slotted() -> None:
    fill = SlotFill(SUFFIX, b"")
    env = decode_envelope(encode_envelope(WireEnvelope(fills=(fill,)))).envelope
    for value in (
        fill,
        env,
        env.fills[0],
        Correlation(),
        FillError(0, "x", 0, 0),
        EnvelopeLimits(),
    ):
        assert not hasattr(value, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.__setattr__(dataclasses.fields(value)[0].name, None)


def test_schema_version_constant() -> None:
    assert SCHEMA_VERSION == 1
    assert WireEnvelope(fills=()).schema_version == 1


# -- caps: at the limit passes, one over fails -----------------------------------------------------
def test_envelope_size_cap() -> None:
    data = pack(raw_env())
    assert decode_envelope(data, EnvelopeLimits(max_envelope_bytes=len(data))).fill_errors == ()
    err = decode_error(data, EnvelopeLimits(max_envelope_bytes=len(data) - 1))
    assert err.detail == f"envelope: {len(data)} bytes exceeds max_envelope_bytes {len(data) - 1}"


def test_default_envelope_cap_is_16_mib() -> None:
    assert EnvelopeLimits().max_envelope_bytes == 16 * MIB
    err = decode_error(b"\x00" * (16 * MIB + 1))
    assert "max_envelope_bytes" in err.detail


@pytest.mark.parametrize("max_fills", [256, 4])
def test_fill_count_cap(max_fills: int) -> None:
    limits = EnvelopeLimits(max_fills=max_fills)
    ok = decode_envelope(pack(raw_env(fills=[raw_fill()] * max_fills)), limits)
    assert len(ok.envelope.fills) == max_fills
    err = decode_error(pack(raw_env(fills=[raw_fill()] * (max_fills + 1))), limits)
    assert err.detail.startswith("fills: ")
    assert f"{max_fills + 1} " in err.detail
    assert f"max_fills {max_fills}" in err.detail


def test_fill_payload_cap_is_per_fill() -> None:
    at_cap = raw_fill(payload=b"\x00" * (4 * MIB))
    over = raw_fill(payload=b"\x00" * (4 * MIB + 1), type_hash=77)
    decoded = decode_envelope(pack(raw_env(fills=[at_cap, over, raw_fill()])))
    assert [len(f.payload) for f in decoded.envelope.fills] == [4 * MIB, len(raw_fill()["payload"])]
    assert decoded.fill_errors == (
        FillError(
            1,
            f"fills[1].payload: {4 * MIB + 1} bytes exceeds max_fill_payload_bytes {4 * MIB}",
            4 * MIB + 1,
            77,
        ),
    )


def test_suffix_cap() -> None:
    decoded = decode_envelope(
        pack(raw_env(fills=[raw_fill(dest_suffix=b"s" * 4096), raw_fill(dest_suffix=b"s" * 4097)]))
    )
    assert [len(f.dest_suffix) for f in decoded.envelope.fills] == [4096]
    (error,) = decoded.fill_errors
    assert error.fill_index == 1
    assert error.detail == "fills[1].dest_suffix: 4097 bytes exceeds max_suffix_bytes 4096"


@pytest.mark.parametrize(
    ("field", "cap_name", "cap"),
    [
        ("src_peer_addresses", "max_src_addresses", 8),
        ("dest_peer_addresses", "max_dest_addresses", 64),
    ],
)
def test_address_count_caps(field: str, cap_name: str, cap: int) -> None:
    addr = Address.tcp("127.0.0.1", 7400).to_bytes()
    decoded = decode_envelope(pack(raw_env(**{field: [addr] * cap})))
    assert getattr(decoded.envelope, field) == (addr,) * cap
    err = decode_error(pack(raw_env(**{field: [addr] * (cap + 1)})))
    assert err.detail == f"{field}: {cap + 1} addresses exceed {cap_name} {cap}"


@pytest.mark.parametrize("field", ["src_peer_addresses", "dest_peer_addresses"])
def test_address_size_cap(field: str) -> None:
    decoded = decode_envelope(pack(raw_env(**{field: [b"a" * 256]})))
    assert getattr(decoded.envelope, field) == (b"a" * 256,)
    err = decode_error(pack(raw_env(**{field: [b"a", b"a" * 257]})))
    assert err.detail == f"{field}[1]: 257 bytes is outside 1..256 (max_src_address_bytes)"


def test_rtt_report_cap() -> None:
    report = [PeerId.from_u64(1).to_bytes(), 10]
    decoded = decode_envelope(pack(raw_env(edge_rtt_reports=[report] * 256)))
    assert len(decoded.envelope.edge_rtt_reports) == 256
    err = decode_error(pack(raw_env(edge_rtt_reports=[report] * 257)))
    assert err.detail == "edge_rtt_reports: 257 entries exceed max_rtt_reports 256"
    small = EnvelopeLimits(max_rtt_reports=2)
    err = decode_error(pack(raw_env(edge_rtt_reports=[report] * 3)), small)
    assert err.detail == "edge_rtt_reports: 3 reports exceed max_rtt_reports 2"


def test_map_key_cap_bounds_unknown_keys() -> None:
    base = raw_env()
    extra = {f"x{i}": i for i in range(64 - len(base))}
    assert decode_envelope(pack({**base, **extra})).fill_errors == ()
    err = decode_error(pack({**base, **extra, "one_more": 0}))
    assert err.detail == "envelope: 65 keys exceed max_map_keys 64"


@pytest.mark.parametrize(
    "field",
    [
        "max_envelope_bytes",
        "max_fills",
        "max_fill_payload_bytes",
        "max_suffix_bytes",
        "max_src_addresses",
        "max_src_address_bytes",
        "max_dest_addresses",
        "max_rtt_reports",
        "max_map_keys",
    ],
)
@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_limits_reject_non_positive_ints(field: str, bad: object) -> None:
    with pytest.raises(ValueError, match=f"EnvelopeLimits.{field} must be a positive int"):
        EnvelopeLimits(**{field: bad})  # type: ignore[arg-type]


# -- hostile length prefixes never allocate --------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"\xdd\xff\xff\xff\xff", "envelope: expected a msgpack map: "),
        (b"\xdf\xff\xff\xff\xff", "envelope: 4294967295 keys exceed max_map_keys 64"),
        (b"\x81\xa5fills\xdd\xff\xff\xff\xff", "fills: 4294967295 entries exceed max_fills 256"),
        (b"\x81\xa5fills\x91\xdf\xff\xff\xff\xff", "fills[0]: 4294967295 exceeds max_map_len(64)"),
        (b"\x81\xa1x\xc6\xff\xff\xff\xff", "x: truncated (the input ends inside this value)"),
        (b"\x81\xa1x\xdb\xff\xff\xff\xff", "x: truncated (the input ends inside this value)"),
        # ext32 of 4 GiB: msgpack reports it against max_ext_len (with a wrapped-around length).
        (b"\x81\xa1x\xc9\xff\xff\xff\xff\x01", "x: "),
    ],
)
def test_hostile_length_prefixes(data: bytes, detail: str) -> None:
    assert decode_error(data).detail.startswith(detail)


def test_deep_nesting_is_a_decode_error() -> None:
    data = b"\x81\xa1x" + b"\x91" * 5000 + b"\x00"
    assert decode_error(data).detail == "x: nested too deeply"


# -- whole-envelope problems -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("over", "detail"),
    [
        ({"schema_version": DELETE}, "schema_version: missing"),
        ({"schema_version": 2}, "schema_version: got 2, this build reads only 1"),
        ({"schema_version": "1"}, "schema_version: expected an int, got str"),
        ({"schema_version": True}, "schema_version: expected an int, got bool"),
        ({"fills": DELETE}, "fills: missing"),
        ({"fills": {"a": 1}}, "fills: expected an array, got map"),
        ({"fills": b"x"}, "fills: expected an array, got bin"),
        ({"correlation": [0, 0]}, "correlation: expected a map, got array"),
        ({"correlation": {"kind": 3, "wire_req_id": 0}}, "correlation.kind: expected 0 (none), 1"),
        ({"correlation": {"kind": "x", "wire_req_id": 0}}, "correlation.kind: expected 0 (none)"),
        ({"correlation": {"wire_req_id": 0}}, "correlation.kind: expected 0 (none)"),
        ({"correlation": {"kind": 1}}, "correlation.wire_req_id: expected a u64, got missing"),
        (
            {"correlation": {"kind": 1, "wire_req_id": -1}},
            "correlation.wire_req_id: expected a u64",
        ),
        ({"correlation": None}, "correlation: expected a map, got nil"),
        ({"remaining_deadline_ns": -1}, "remaining_deadline_ns: expected a u64 or nil, got int"),
        ({"remaining_deadline_ns": 1.5}, "remaining_deadline_ns: expected a u64 or nil, got float"),
        ({"remaining_deadline_ns": "5"}, "remaining_deadline_ns: expected a u64 or nil, got str"),
        ({"edge_rtt_reports": {}}, "edge_rtt_reports: expected an array, got map"),
        ({"edge_rtt_reports": [[b"p"]]}, "edge_rtt_reports[0]: expected [peer id bin"),
        ({"edge_rtt_reports": [[b"p", -1]]}, "edge_rtt_reports[0]: expected [peer id bin"),
        ({"edge_rtt_reports": [[b"", 1]]}, "edge_rtt_reports[0]: expected [peer id bin"),
        ({"edge_rtt_reports": [[b"p" * 129, 1]]}, "edge_rtt_reports[0]: expected [peer id bin"),
        ({"edge_rtt_reports": [["p", 1]]}, "edge_rtt_reports[0]: expected [peer id bin"),
        ({"src_peer_addresses": "x"}, "src_peer_addresses: expected an array, got str"),
        ({"src_peer_addresses": ["x"]}, "src_peer_addresses[0]: expected bin, got str"),
        ({"src_peer_addresses": [b""]}, "src_peer_addresses[0]: 0 bytes is outside 1..256"),
        ({"dest_peer_addresses": 7}, "dest_peer_addresses: expected an array, got int"),
        ({"dest_peer_addresses": [None]}, "dest_peer_addresses[0]: expected bin, got nil"),
    ],
)
def test_malformed_top_level_field(over: dict[str, Any], detail: str) -> None:
    assert decode_error(pack(raw_env(**over))).detail.startswith(detail)


@pytest.mark.parametrize(
    ("obj", "detail"),
    [
        ([1, 2], "envelope: expected a msgpack map, got array"),
        (b"bytes", "envelope: expected a msgpack map, got bin"),
        (None, "envelope: expected a msgpack map, got nil"),
        ({1: 2}, "envelope: key #0: expected a str key, got int"),
    ],
)
def test_not_an_envelope_map(obj: Any, detail: str) -> None:
    assert decode_error(pack(obj)).detail.startswith(detail)


def test_empty_input() -> None:
    assert decode_error(b"").detail == "envelope: empty input"


def test_reserved_msgpack_byte() -> None:
    assert decode_error(b"\xc1").detail.startswith("envelope: expected a msgpack map")
    assert decode_error(b"\x81\xa1x\xc1").detail == "x: not msgpack (reserved type byte)"


def test_trailing_bytes() -> None:
    data = pack(raw_env())
    assert decode_error(data + b"\x00").detail == (
        "envelope: 1 trailing bytes after the envelope map"
    )
    assert decode_error(data + data).detail == (
        f"envelope: {len(data)} trailing bytes after the envelope map"
    )


def test_truncated_at_every_offset() -> None:
    env = WireEnvelope(
        fills=(SlotFill(SUFFIX, b"\x01\x02", True, 1), SlotFill(b"\xe2" + b"\x00" * 8, b"")),
        dest_peer_addresses=(Address.tcp("10.0.0.1", 1).to_bytes(),),
        correlation=Correlation(CorrelationKind.REQUEST, 1 << 40),
        remaining_deadline_ns=123,
        edge_rtt_reports=((PeerId.from_u64(9).to_bytes(), 77),),
        src_peer_addresses=(Address.tcp("10.0.0.2", 2).to_bytes(),),
    )
    data = encode_envelope(env)
    for end in range(len(data)):
        with pytest.raises(EnvelopeDecodeError) as info:
            decode_envelope(data[:end])
        assert info.value.payload_size == end
        assert "truncated" in info.value.detail or end == 0
    assert decode_envelope(data).envelope == env


# -- a bad fill among good ones --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fill", "detail", "payload_size", "type_hash"),
    [
        (raw_fill(dest_suffix=DELETE), "fills[1].dest_suffix: missing", 6, type_hash_of("str")),
        (raw_fill(payload=DELETE), "fills[1].payload: missing", 0, type_hash_of("str")),
        (raw_fill(trigger_only=DELETE), "fills[1].trigger_only: missing", 6, type_hash_of("str")),
        (raw_fill(type_hash=DELETE), "fills[1].type_hash: missing", 6, 0),
        (raw_fill(dest_suffix="s"), "fills[1].dest_suffix: expected bin, got str", 6, 0x9E),
        (raw_fill(dest_suffix=b""), "fills[1].dest_suffix: empty", 6, 0x9E),
        (raw_fill(payload="p"), "fills[1].payload: expected bin, got str", 0, 0x9E),
        (raw_fill(payload=None), "fills[1].payload: expected bin, got nil", 0, 0x9E),
        (raw_fill(trigger_only=1), "fills[1].trigger_only: expected bool, got int", 6, 0x9E),
        (raw_fill(type_hash=-1), "fills[1].type_hash: expected a u64, got -1", 6, 0),
        (raw_fill(type_hash="h"), "fills[1].type_hash: expected a u64, got str", 6, 0),
        (raw_fill(type_hash=False), "fills[1].type_hash: expected a u64, got bool", 6, 0),
        ([1, 2], "fills[1]: expected a map, got array", 0, 0),
        (None, "fills[1]: expected a map, got nil", 0, 0),
    ],
)
def test_bad_fill_among_good_ones(
    fill: Any, detail: str, payload_size: int, type_hash: int
) -> None:
    if (
        isinstance(fill, dict)
        and fill.get("type_hash") == type_hash_of("str")
        and type_hash == 0x9E
    ):
        fill["type_hash"] = 0x9E
    good0, good2 = raw_fill(payload=b"\x00"), raw_fill(payload=b"\x02", trigger_only=True)
    decoded = decode_envelope(pack(raw_env(fills=[good0, fill, good2])))
    assert [f.payload for f in decoded.envelope.fills] == [b"\x00", b"\x02"]
    assert decoded.envelope.fills[1].trigger_only is True
    assert decoded.fill_errors == (FillError(1, detail, payload_size, type_hash),)


def test_every_fill_bad_still_decodes_the_envelope() -> None:
    decoded = decode_envelope(pack(raw_env(fills=[None, raw_fill(payload=1)])))
    assert decoded.envelope.fills == ()
    assert [e.fill_index for e in decoded.fill_errors] == [0, 1]


# -- random input: decodes or raises EnvelopeDecodeError, nothing else ---------------------------
def assert_parses_or_raises_decode_error(data: bytes) -> None:
    error: EnvelopeDecodeError | None = None
    try:
        result = decode_envelope(data)
    except EnvelopeDecodeError as exc:
        error = exc
    if error is None:
        assert isinstance(result, DecodedEnvelope)
    else:
        assert error.detail
        assert error.payload_size == len(data)


@FAST
@given(st.binary(max_size=512))
def test_random_garbage(data: bytes) -> None:
    assert_parses_or_raises_decode_error(data)


@FAST
@given(envelopes, st.data())
def test_mutated_envelopes(env: WireEnvelope, data: st.DataObject) -> None:
    raw = bytearray(encode_envelope(env))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    assert_parses_or_raises_decode_error(bytes(raw))


# -- encoding refuses what the wire cannot carry (local error) ------------------------------------
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("nope", "envelope: expected a WireEnvelope, got str"),
        (WireEnvelope(fills=[]), "fills: expected a tuple, got list"),  # type: ignore[arg-type]
        (WireEnvelope(fills=(b"x",)), "fills[0]: expected a SlotFill, got bytes"),  # type: ignore[arg-type]
        (
            WireEnvelope(fills=(SlotFill(SUFFIX, b""), SlotFill("s", b""))),  # type: ignore[arg-type]
            "fills[1].dest_suffix: expected bytes, got 's'",
        ),
        (
            WireEnvelope(fills=(SlotFill(SUFFIX, "p"),)),  # type: ignore[arg-type]
            "fills[0].payload: expected bytes, got 'p'",
        ),
        (
            WireEnvelope(fills=(SlotFill(SUFFIX, b"", 1),)),  # type: ignore[arg-type]
            "fills[0].trigger_only: expected a bool, got 1",
        ),
        (
            WireEnvelope(fills=(SlotFill(SUFFIX, b"", False, 1 << 64),)),
            "fills[0].type_hash: expected a u64 int, got 18446744073709551616",
        ),
        (
            WireEnvelope(fills=(), correlation=Correlation(CorrelationKind.REQUEST, -1)),
            "correlation: ",
        ),
        (
            WireEnvelope(fills=(), correlation=Correlation(7)),  # type: ignore[arg-type]
            "correlation: ",
        ),
        (
            WireEnvelope(fills=(), remaining_deadline_ns=-5),
            "remaining_deadline_ns: -5 is not a u64 or None",
        ),
        (WireEnvelope(fills=(), schema_version=2), "schema_version: 2 is not supported"),
        (
            WireEnvelope(fills=(), src_peer_addresses=["a"]),  # type: ignore[arg-type]
            "src_peer_addresses: expected a tuple of bytes, got list",
        ),
        (
            WireEnvelope(fills=(), dest_peer_addresses=(b"a", "b")),  # type: ignore[arg-type]
            "dest_peer_addresses[1]: expected bytes, got str",
        ),
        (
            WireEnvelope(fills=(), edge_rtt_reports=((b"p", -1),)),
            "edge_rtt_reports[0]: expected (peer id bytes, rtt_ns u64)",
        ),
        (
            WireEnvelope(fills=(), edge_rtt_reports=[(b"p", 1)]),  # type: ignore[arg-type]
            "edge_rtt_reports: expected a tuple of (bytes, int), got list",
        ),
    ],
)
def test_encode_rejects_ill_typed_fields(env: Any, message: str) -> None:
    with pytest.raises(EnvelopeEncodeError) as info:
        encode_envelope(env)
    assert str(info.value).startswith(message)


def test_encode_then_decode_keeps_correlation_none_with_id() -> None:
    env = WireEnvelope(fills=(), correlation=Correlation(CorrelationKind.NONE, 5))
    assert decode_envelope(encode_envelope(env)).envelope == env
