import contextlib
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbnode.daemon.control_protocol import (
    MAX_MESSAGE_BYTES,
    BlockRequest,
    ControlProtocolError,
    ControlRequestError,
    MessageReader,
    PublishRequest,
    StatusRequest,
    SubscribeRequest,
    encode_message,
    parse_request,
)
from bbnode.ids import PeerId

PEER = PeerId.from_u64(7)


def test_round_trip_byte_by_byte() -> None:
    data = encode_message({"cmd": "status"}) + encode_message({"cmd": "peers"})
    reader = MessageReader()
    out = []
    for i in range(len(data)):
        reader.receive_data(data[i : i + 1])
        while (msg := reader.next_message()) is not None:
            out.append(msg)
    assert out == [{"cmd": "status"}, {"cmd": "peers"}]
    assert reader.buffered == 0


def test_oversize_length_is_refused_before_buffering() -> None:
    reader = MessageReader()
    reader.receive_data(struct.pack(">I", MAX_MESSAGE_BYTES + 1))
    with pytest.raises(ControlProtocolError, match="exceeds the limit"):
        reader.next_message()


def test_garbage_body_is_a_protocol_error() -> None:
    reader = MessageReader()
    reader.receive_data(struct.pack(">I", 1) + b"\xc1")
    with pytest.raises(ControlProtocolError, match="undecodable"):
        reader.next_message()


def test_encode_refuses_oversize() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        encode_message(b"x" * MAX_MESSAGE_BYTES)


def test_parse_valid_requests() -> None:
    assert parse_request({"cmd": "status"}) == StatusRequest()
    assert parse_request({"cmd": "block", "peer": str(PEER), "for_s": 3600}) == BlockRequest(
        PEER, 3600.0
    )
    assert parse_request({"cmd": "block", "peer": str(PEER)}) == BlockRequest(PEER, None)
    assert parse_request({"cmd": "publish", "topic": "t", "data": "hi"}) == PublishRequest(
        "t", b"hi"
    )
    assert parse_request({"cmd": "subscribe", "topic": "*"}) == SubscribeRequest("*")


@pytest.mark.parametrize(
    ("request_obj", "message"),
    [
        ([1, 2], "request must be a map, got list"),
        ({"x": 1}, "request has no 'cmd' string"),
        ({"cmd": "launch"}, "unknown command 'launch'"),
        ({"cmd": "status", "extra": 1}, "status: unexpected argument(s) extra"),
        ({"cmd": "block"}, "block: missing argument 'peer'"),
        ({"cmd": "block", "peer": "nope!"}, "block: not a valid peer id"),
        ({"cmd": "block", "peer": str(PEER), "for_s": -1}, "must be positive"),
        ({"cmd": "block", "peer": str(PEER), "for_s": True}, "must be a number"),
        ({"cmd": "unblock", "peer": 5}, "unblock: argument 'peer' must be a non-empty string"),
        ({"cmd": "publish", "topic": "bb.x", "data": b""}, "reserved"),
        ({"cmd": "publish", "topic": "t", "data": 3}, "'data' must be bytes"),
        ({"cmd": "subscribe", "topic": ""}, "non-empty string"),
    ],
)
def test_parse_rejects_with_named_problem(request_obj: object, message: str) -> None:
    with pytest.raises(ControlRequestError) as info:
        parse_request(request_obj)
    assert message in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_reader_parses_or_raises_documented_error(data: bytes) -> None:
    reader = MessageReader(max_message_bytes=1024)
    reader.receive_data(data)
    try:
        while (msg := reader.next_message()) is not None:
            with contextlib.suppress(ControlRequestError):
                parse_request(msg)
    except ControlProtocolError:
        pass


def test_msgpack_framing_matches_documented_layout() -> None:
    framed = encode_message({"cmd": "health"})
    body = msgpack.packb({"cmd": "health"}, use_bin_type=True)
    assert framed == struct.pack(">I", len(body)) + body
