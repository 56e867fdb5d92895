"""PeerId and Address (SPEC §2), cross-checked against published multiformats/libp2p vectors.

Vectors: multiaddr binary forms from the multiaddr spec and go-multiaddr's test suite; the
Ed25519 key from the libp2p peer-id spec's test vectors (the same key rust-libp2p's
`keypair_protobuf_roundtrip_ed25519` test uses); FNV-1a from the reference FNV test suite.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import TypeVar

import base58
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.ids import Address, IdError, PeerId, Segment, fnv1a_32, fnv1a_64

T = TypeVar("T")
R = TypeVar("R")
FAST = settings(max_examples=150, deadline=None)

# A sha2-256 peer id (CIDv0 style, "Qm...") and its multihash bytes.
QM_PEER = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
_QM_RAW = base58.b58decode(QM_PEER)
# go-multiaddr's /ipfs vector and its binary form.
GO_QM_PEER = "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
GO_QM_P2P_HEX = "a503221220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b"
# libp2p peer-id spec test vector: Ed25519 seed, its public key protobuf, and the peer id.
ED25519_SEED_HEX = "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
ED25519_PUBKEY_PROTOBUF_HEX = (
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
ED25519_PEER = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"


def _parse(parse: Callable[[T], R], arg: T) -> R | IdError:
    """`parse(arg)`, or the IdError it raised (any other exception propagates and fails)."""
    try:
        return parse(arg)
    except IdError as exc:
        return exc


def _b58(raw: bytes) -> str:
    return base58.b58encode(raw).decode("ascii")


# -- PeerId -------------------------------------------------------------------------------------
def test_sha2_256_peer_id_round_trips() -> None:
    peer = PeerId.from_string(QM_PEER)
    raw = peer.to_bytes()
    assert raw[:2] == b"\x12\x20"
    assert len(raw) == 34
    assert peer.code == 0x12
    assert peer.digest == raw[2:]
    assert str(peer) == QM_PEER
    assert PeerId.from_bytes(raw) == peer


def test_libp2p_ed25519_spec_vector() -> None:
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(ED25519_SEED_HEX))
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert public.hex() == ED25519_PUBKEY_PROTOBUF_HEX[8:]
    peer = PeerId.from_public_key(public)
    assert peer.to_bytes() == b"\x00\x24" + bytes.fromhex(ED25519_PUBKEY_PROTOBUF_HEX)
    assert peer.code == 0x00
    assert peer.digest == bytes.fromhex(ED25519_PUBKEY_PROTOBUF_HEX)
    assert str(peer) == ED25519_PEER
    assert PeerId.from_string(ED25519_PEER) == peer


@FAST
@given(st.binary(min_size=32, max_size=32))
def test_every_ed25519_key_gives_a_12D3KooW_peer_id(public: bytes) -> None:
    peer = PeerId.from_public_key(public)
    assert str(peer).startswith("12D3KooW")
    assert PeerId.from_string(str(peer)) == peer


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_from_public_key_rejects_wrong_length(size: int) -> None:
    with pytest.raises(IdError, match=f"Ed25519 public key must be 32 bytes, got {size}"):
        PeerId.from_public_key(b"\x01" * size)


def test_from_u64() -> None:
    assert PeerId.from_u64(0).to_bytes() == b"\x00\x08" + bytes(8)
    peer = PeerId.from_u64(0x0102030405060708)
    assert peer.to_bytes() == bytes.fromhex("00080102030405060708")
    assert peer.code == 0
    assert peer.digest == bytes.fromhex("0102030405060708")
    assert PeerId.from_u64((1 << 64) - 1).digest == b"\xff" * 8
    assert PeerId.from_string(str(peer)) == peer


@pytest.mark.parametrize("n", [-1, 1 << 64])
def test_from_u64_rejects_out_of_range(n: int) -> None:
    with pytest.raises(IdError, match=f"{n} is not a u64"):
        PeerId.from_u64(n)


@pytest.mark.parametrize(
    ("code_varint", "code"),
    [(b"\x11", 0x11), (b"\x13", 0x13), (b"\x1b", 0x1B), (b"\xa0\xe4\x02", 0xB220)],
)
def test_other_multihash_codes_round_trip_unchanged(code_varint: bytes, code: int) -> None:
    raw = code_varint + b"\x20" + bytes(range(32))
    peer = PeerId.from_bytes(raw)
    assert peer.to_bytes() == raw
    assert peer.code == code
    assert peer.digest == bytes(range(32))
    assert PeerId.from_string(str(peer)).to_bytes() == raw


@FAST
@given(st.integers(0, (1 << 63) - 1), st.binary(max_size=100))
def test_multihash_round_trips(code: int, digest: bytes) -> None:
    raw = _varint(code) + _varint(len(digest)) + digest
    if len(raw) > 128:
        with pytest.raises(IdError, match="longer than 128"):
            PeerId.from_bytes(raw)
        return
    peer = PeerId.from_bytes(raw)
    assert (peer.to_bytes(), peer.code, peer.digest) == (raw, code, digest)
    assert PeerId.from_string(str(peer)) == peer
    assert pickle.loads(pickle.dumps(peer)) == peer


def test_ordering_and_hashing_follow_the_bytes() -> None:
    peers = [PeerId.from_u64(n) for n in (5, 1, 3)] + [PeerId.from_string(QM_PEER)]
    assert sorted(peers) == sorted(peers, key=lambda p: p.to_bytes())
    assert [p.digest for p in sorted(peers)[:3]] == [n.to_bytes(8, "big") for n in (1, 3, 5)]
    a, b = PeerId.from_u64(1), PeerId.from_u64(2)
    assert a < b
    assert a <= b
    assert b > a
    assert b >= a
    assert a <= a
    assert a >= a
    assert PeerId.from_u64(1) == a
    assert hash(PeerId.from_u64(1)) == hash(a)
    assert len({a, PeerId.from_u64(1), b}) == 2
    assert a != a.to_bytes()
    assert repr(a) == f"PeerId({a})"
    assert a.short() == str(a)[-8:]


def test_ordering_against_other_types_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = PeerId.from_u64(1) < 1  # type: ignore[operator]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "peer id: empty multihash"),
        (b"\x80", "peer id code: truncated varint"),
        (b"\x00", "peer id digest length: truncated varint"),
        (b"\x00\x05abc", "declares a 5-byte digest but carries 3 bytes"),
        (b"\x00\x02abc", "declares a 2-byte digest but carries 3 bytes"),
        (b"\x80\x00\x00", "peer id code: varint at byte 0 is not minimally encoded"),
        (b"\x00\x80\x00", "peer id digest length: varint at byte 1 is not minimally encoded"),
        (b"\xff" * 10, "peer id code: varint at byte 0 is longer than 9 bytes"),
        (b"\x00\x7f" + b"\x00" * 127, "peer id: 129 bytes is longer than 128"),
    ],
)
def test_malformed_peer_id_bytes(raw: bytes, message: str) -> None:
    with pytest.raises(IdError, match=message):
        PeerId.from_bytes(raw)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "peer id: empty string"),
        ("0OIl", "is not base58btc"),
        ("Qm+", "is not base58btc"),
        ("Qmé", "is not base58btc"),
        ("1", "truncated varint"),
        (_b58(_QM_RAW[:-1]), "declares a 32-byte digest but carries 31 bytes"),
        (_b58(_QM_RAW + b"\x00"), "declares a 32-byte digest but carries 33 bytes"),
    ],
)
def test_malformed_peer_id_text(text: str, message: str) -> None:
    with pytest.raises(IdError, match=message):
        PeerId.from_string(text)


@FAST
@given(st.binary(max_size=140))
def test_random_peer_id_bytes(raw: bytes) -> None:
    peer = _parse(PeerId.from_bytes, raw)
    if isinstance(peer, IdError):
        assert str(peer).startswith("peer id")
    else:
        assert peer.to_bytes() == raw


@FAST
@given(st.text(max_size=60))
def test_random_peer_id_text(text: str) -> None:
    peer = _parse(PeerId.from_string, text)
    if isinstance(peer, IdError):
        assert "peer id" in str(peer)
    else:
        assert PeerId.from_bytes(peer.to_bytes()) == peer


# -- Address: published vectors -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "hex_bytes"),
    [
        ("/ip4/127.0.0.1/tcp/4001", "047f000001060fa1"),
        ("/ip4/0.0.0.0", "0400000000"),
        ("/ip4/255.255.255.255/tcp/65535", "04ffffffff06ffff"),
        ("/ip6/::1/tcp/8080", "29" + "00" * 15 + "01" + "061f90"),
        (
            "/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/tcp/8000",
            "29200108a07ac542013ac986fffe317095061f40",
        ),
        ("/ip6/::", "29" + "00" * 16),
        ("/dns4/example.com/tcp/443", "360b" + b"example.com".hex() + "0601bb"),
        ("/dns6/example.com", "370b" + b"example.com".hex()),
        ("/dns/example.com/tcp/80", "350b" + b"example.com".hex() + "060050"),
        (f"/p2p/{GO_QM_PEER}", GO_QM_P2P_HEX),
        (f"/ip4/127.0.0.1/tcp/4001/p2p/{GO_QM_PEER}", "047f000001060fa1" + GO_QM_P2P_HEX),
        ("/site/1", "e2010000000000000001"),
        ("/site/18446744073709551615", "e201ffffffffffffffff"),
        ("/component/7", "e30100000007"),
        ("/component/4294967295", "e301ffffffff"),
        ("/op/ping", "e40104" + b"ping".hex()),
        ("/component/305441741/op/on_message", "e3011234abcd" + "e4010a" + b"on_message".hex()),
    ],
)
def test_multiaddr_vectors(text: str, hex_bytes: str) -> None:
    addr = Address.from_string(text)
    assert addr.to_bytes().hex() == hex_bytes
    assert str(addr) == text
    back = Address.from_bytes(bytes.fromhex(hex_bytes))
    assert back == addr
    assert str(back) == text
    assert back.segments == addr.segments
    assert hash(back) == hash(addr)


def test_ed25519_peer_in_an_address() -> None:
    text = f"/ip4/127.0.0.1/tcp/7400/p2p/{ED25519_PEER}"
    addr = Address.from_string(text)
    raw = bytes.fromhex("047f000001061ce8" + "a503" + "26" + "0024" + ED25519_PUBKEY_PROTOBUF_HEX)
    assert addr.to_bytes() == raw
    assert Address.from_bytes(raw) == addr
    assert addr.peer_id == PeerId.from_string(ED25519_PEER)


def test_ipfs_is_an_alias_for_p2p() -> None:
    addr = Address.from_string(f"/ipfs/{GO_QM_PEER}")
    assert str(addr) == f"/p2p/{GO_QM_PEER}"
    assert addr.to_bytes().hex() == GO_QM_P2P_HEX


def test_text_normalisation() -> None:
    assert str(Address.from_string("/ip6/0:0:0:0:0:0:0:1/tcp/1")) == "/ip6/::1/tcp/1"
    assert str(Address.from_string("/ip6/2001:DB8::1")) == "/ip6/2001:db8::1"
    assert str(Address.from_string("/tcp/0080")) == "/tcp/80"
    assert str(Address.from_string("/ip4/1.2.3.4/")) == "/ip4/1.2.3.4"


# -- Address: views and builders ------------------------------------------------------------------
def test_segments_are_typed() -> None:
    peer = PeerId.from_u64(9)
    addr = Address.from_string(f"/ip4/10.0.0.1/tcp/7400/p2p/{peer}/site/3/component/4/op/x")
    assert addr.segments == (
        ("ip4", "10.0.0.1"),
        ("tcp", 7400),
        ("p2p", peer),
        ("site", 3),
        ("component", 4),
        ("op", "x"),
    )


def test_peer_id_is_the_first_p2p_segment() -> None:
    a, b = PeerId.from_u64(1), PeerId.from_u64(2)
    assert Address.from_string("/ip4/1.2.3.4/tcp/1").peer_id is None
    assert Address.from_string(f"/p2p/{a}/p2p/{b}").peer_id == a


def test_tcp_endpoint() -> None:
    assert Address.from_string("/ip4/1.2.3.4/tcp/80").tcp_endpoint() == ("1.2.3.4", 80)
    assert Address.from_string("/ip6/::1/tcp/81/p2p/" + QM_PEER).tcp_endpoint() == ("::1", 81)
    assert Address.from_string("/dns4/a.example/tcp/82").tcp_endpoint() == ("a.example", 82)
    assert Address.from_string("/ip4/1.2.3.4").tcp_endpoint() is None
    assert Address.from_string("/tcp/80/ip4/1.2.3.4").tcp_endpoint() is None
    assert Address.from_string("/site/1/tcp/80").tcp_endpoint() is None


def test_tcp_builder_picks_the_host_segment() -> None:
    peer = PeerId.from_u64(3)
    assert str(Address.tcp("127.0.0.1", 7400)) == "/ip4/127.0.0.1/tcp/7400"
    assert str(Address.tcp("::1", 7400)) == "/ip6/::1/tcp/7400"
    assert (
        str(Address.tcp("node-1.example", 7400, peer)) == f"/dns/node-1.example/tcp/7400/p2p/{peer}"
    )
    with pytest.raises(IdError, match="out of range"):
        Address.tcp("127.0.0.1", 65536)


def test_with_and_without_peer() -> None:
    a, b = PeerId.from_u64(1), PeerId.from_u64(2)
    base = Address.from_string("/ip4/1.2.3.4/tcp/5")
    assert base.with_peer(a) == Address.from_string(f"/ip4/1.2.3.4/tcp/5/p2p/{a}")
    assert base.with_peer(a).with_peer(b).peer_id == b
    assert base.with_peer(a).without_peer() == base
    assert base.without_peer() == base


def test_address_equality_hash_order_pickle() -> None:
    a = Address.from_string("/ip4/1.2.3.4/tcp/5")
    b = Address.from_bytes(a.to_bytes())
    assert a == b
    assert hash(a) == hash(b)
    assert a != str(a)
    assert repr(a) == "Address(/ip4/1.2.3.4/tcp/5)"
    assert sorted([Address.from_string("/tcp/2"), Address.from_string("/tcp/1")])[0] == (
        Address.from_string("/tcp/1")
    )
    assert pickle.loads(pickle.dumps(a)) == a


def test_constructor_from_segments() -> None:
    peer = PeerId.from_u64(4)
    segments: list[Segment] = [("ip4", "1.2.3.4"), ("tcp", 5), ("p2p", peer)]
    addr = Address(segments)
    assert addr == Address.from_string(f"/ip4/1.2.3.4/tcp/5/p2p/{peer}")
    assert addr.segments == tuple(segments)


def test_constructor_normalises_segment_values() -> None:
    addr = Address([("ip4", "1.2.3.4"), ("tcp", "80")])
    assert addr.segments == (("ip4", "1.2.3.4"), ("tcp", 80))
    assert addr.tcp_endpoint() == ("1.2.3.4", 80)
    assert str(Address([("ip6", "0:0::1")])) == "/ip6/::1"


def test_ip6_rejects_a_zone() -> None:
    with pytest.raises(IdError, match="ip6"):
        Address.from_string("/ip6/fe80::1%eth0")


# -- Address: malformed input ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must start with '/'"),
        ("ip4/1.2.3.4", "must start with '/'"),
        ("/", "empty multiaddr"),
        ("//", "unknown protocol ''"),
        ("/ip4", "/ip4 is missing its value"),
        ("/ip4/1.2.3.4/tcp", "/tcp is missing its value"),
        ("/ip4/999.1.1.1", r"/ip4/999.1.1.1: not an IPv4 address"),
        ("/ip4/1.2.3", r"not an IPv4 address"),
        ("/ip4/::1", r"/ip4/::1: not an IPv4 address"),
        ("/ip6/1.2.3.4", r"/ip6/1.2.3.4: not an IPv6 address"),
        ("/ip6/:::", r"not an IPv6 address"),
        ("/tcp/65536", r"/tcp/65536: out of range \(max 65535\)"),
        ("/tcp/-1", "/tcp/-1: not a decimal number"),
        ("/tcp/http", "/tcp/http: not a decimal number"),
        ("/tcp/\uff18\uff10", "not a decimal number"),
        ("/site/18446744073709551616", "out of range"),
        ("/component/4294967296", r"out of range \(max 4294967295\)"),
        ("/udp/1234", "unknown protocol 'udp'"),
        ("/foo/1", "unknown protocol 'foo'"),
        ("/p2p/0OIl", "is not base58btc"),
        ("/p2p/1", "truncated varint"),
        ("/dns4//tcp/1", "/dns4 needs a non-empty value"),
        ("/op//", "/op needs a non-empty value"),
    ],
)
def test_malformed_address_text(text: str, message: str) -> None:
    with pytest.raises(IdError, match=message):
        Address.from_string(text)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "address: empty multiaddr"),
        (b"\x04\x7f\x00", "/ip4 needs 4 bytes, 2 left"),
        (bytes.fromhex("047f000001") + b"\x06", "/tcp needs 2 bytes, 0 left"),
        (bytes.fromhex("047f000001060fa1") + b"\x06\x01", "/tcp needs 2 bytes, 1 left"),
        (bytes.fromhex("047f000001060fa1") + b"\x80", "protocol code: truncated varint"),
        (b"\x63\x00", "unknown protocol code 0x63"),
        (b"\x84\x00\x7f\x00\x00\x01", "not minimally encoded"),
        (b"\xff" * 10, "longer than 9 bytes"),
        (b"\x36\x05abc", "/dns4 declares 5 bytes, 3 left"),
        (b"\x36\x02\xff\xfe", "/dns4 value is not UTF-8"),
        (b"\x36\x03a/b", "is empty or contains '/'"),
        (b"\x36\x00", "is empty or contains '/'"),
        (b"\xe4\x01\x00", "/op value '' is empty"),
        (b"\xa5\x03\x03\x00\x05a", "declares a 5-byte digest"),
        (b"\xa5\x03\x80", "/p2p length: truncated varint"),
        (b"\x04" + b"\x00" * 1024, "1025 bytes is longer than 1024"),
    ],
)
def test_malformed_address_bytes(raw: bytes, message: str) -> None:
    with pytest.raises(IdError, match=message):
        Address.from_bytes(raw)


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([("bogus", 1)], "unknown protocol 'bogus'"),
        ([("tcp", 70000)], "out of range"),
        ([("tcp", None)], "wrong type"),
        ([("ip4", "x")], "not an IPv4 address"),
        ([("ip4", 3.5)], "wrong type"),
        ([("p2p", "Qm")], "/p2p value must be a PeerId"),
        ([("op", "a/b")], "contains '/'"),
        ([("dns", PeerId.from_u64(1))], "wrong type"),
    ],
)
def test_constructor_rejects_bad_segments(segments: list[Segment], message: str) -> None:
    with pytest.raises(IdError, match=message):
        Address(segments)


# -- Address: hypothesis round trips --------------------------------------------------------------
_label = st.text(
    alphabet=st.characters(blacklist_characters="/", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=20,
)
_segment: st.SearchStrategy[Segment] = st.one_of(
    st.ip_addresses(v=4).map(lambda ip: ("ip4", str(ip))),
    st.ip_addresses(v=6).map(lambda ip: ("ip6", str(ip))),
    st.tuples(st.sampled_from(["dns", "dns4", "dns6", "op"]), _label),
    st.tuples(st.just("tcp"), st.integers(0, 65535)),
    st.tuples(st.just("site"), st.integers(0, (1 << 64) - 1)),
    st.tuples(st.just("component"), st.integers(0, (1 << 32) - 1)),
    st.integers(0, (1 << 64) - 1).map(lambda n: ("p2p", PeerId.from_u64(n))),
    st.binary(min_size=32, max_size=32).map(lambda k: ("p2p", PeerId.from_public_key(k))),
)


@FAST
@given(st.lists(_segment, min_size=1, max_size=6))
def test_address_round_trips(segments: list[Segment]) -> None:
    addr = Address(segments)
    from_bytes = Address.from_bytes(addr.to_bytes())
    from_text = Address.from_string(str(addr))
    assert from_bytes == addr == from_text
    assert from_bytes.segments == from_text.segments == tuple(segments)
    assert str(from_bytes) == str(addr)


@FAST
@given(st.binary(max_size=80))
def test_random_address_bytes(raw: bytes) -> None:
    addr = _parse(Address.from_bytes, raw)
    if isinstance(addr, IdError):
        assert str(addr).startswith(("address", "peer id"))
    else:
        assert addr.to_bytes() == raw
        assert Address.from_string(str(addr)) == addr


@FAST
@given(st.text(alphabet="/ip46tcpdns2p0123456789.:abcdefQm", max_size=40))
def test_random_address_text(text: str) -> None:
    addr = _parse(Address.from_string, text)
    if isinstance(addr, IdError):
        assert str(addr)
    else:
        assert Address.from_bytes(addr.to_bytes()) == addr


# -- FNV-1a -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "h32", "h64"),
    [
        (b"", 0x811C9DC5, 0xCBF29CE484222325),
        (b"a", 0xE40C292C, 0xAF63DC4C8601EC8C),
        (b"foobar", 0xBF9CF968, 0x85944171F73967E8),
    ],
)
def test_fnv1a_reference_vectors(data: bytes, h32: int, h64: int) -> None:
    assert fnv1a_32(data) == h32
    assert fnv1a_64(data) == h64


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)
