"""Hypothesis: whatever bytes arrive, in any state, a connection progresses or raises the
documented remote error, and never buffers beyond its bounds."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bbnode.wire import (
    ConnectionState,
    FrameTooLarge,
    IdentityKey,
    KeyFormatError,
    MalformedHandshake,
    RemoteProtocolError,
    SecureConnection,
)
from bbnode.wire.payload import HandshakePayload, decode_payload
from bbnode.wire.transport import FrameDecoder
from tests.wire.wire_helpers import connected_pair, drain

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY_A = IdentityKey.generate()
KEY_B = IdentityKey.generate()


def _awaiting_hello() -> tuple[SecureConnection, bytes]:
    return SecureConnection(KEY_B, initiator=False), SecureConnection(
        KEY_A, initiator=True
    ).data_to_send()


def _awaiting_response() -> tuple[SecureConnection, bytes]:
    i = SecureConnection(KEY_A, initiator=True)
    r = SecureConnection(KEY_B, initiator=False)
    r.receive_data(i.data_to_send())
    drain(r)
    return i, r.data_to_send()


def _awaiting_finish() -> tuple[SecureConnection, bytes]:
    i = SecureConnection(KEY_A, initiator=True)
    r = SecureConnection(KEY_B, initiator=False)
    r.receive_data(i.data_to_send())
    drain(r)
    i.receive_data(r.data_to_send())
    drain(i)
    return r, i.data_to_send()


def _established() -> tuple[SecureConnection, bytes]:
    i, r = connected_pair(max_frame_bytes=100_000)
    for n in (0, 3, 100, 70_000):
        i.send_frame(b"f" * n)
    return r, i.data_to_send()


SETUPS: dict[str, Callable[[], tuple[SecureConnection, bytes]]] = {
    "awaiting_hello": _awaiting_hello,
    "awaiting_response": _awaiting_response,
    "awaiting_finish": _awaiting_finish,
    "established": _established,
}


def _feed_and_check(conn: SecureConnection, chunks: list[bytes], eof: bool) -> None:
    error: RemoteProtocolError | None = None
    try:
        for chunk in filter(None, chunks):  # b"" would mean EOF
            conn.receive_data(chunk)
            drain(conn)
            # Idle: at most one incomplete transport message is held.
            assert conn._buffered() < 2 + 65535
        if eof:
            conn.receive_data(b"")
            drain(conn)
    except RemoteProtocolError as exc:
        error = exc
    if error is not None:
        assert conn.state is ConnectionState.FAILED
        assert error.reason
        assert str(error)


@FUZZ
@given(
    state=st.sampled_from(sorted(SETUPS)),
    chunks=st.lists(st.binary(max_size=300), max_size=6),
    eof=st.booleans(),
)
def test_garbage_in_every_state(state: str, chunks: list[bytes], eof: bool) -> None:
    conn, _valid = SETUPS[state]()
    _feed_and_check(conn, chunks, eof)


@FUZZ
@given(
    state=st.sampled_from(sorted(SETUPS)),
    data=st.data(),
    eof=st.booleans(),
)
def test_mutated_valid_input_in_every_state(state: str, data: st.DataObject, eof: bool) -> None:
    conn, valid = SETUPS[state]()
    stream = bytearray(valid)
    for _ in range(data.draw(st.integers(0, 3), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "drop"]), label="kind")
        at = data.draw(st.integers(0, max(len(stream) - 1, 0)), label="at")
        if kind == "flip" and stream:
            stream[at] ^= data.draw(st.integers(1, 255), label="mask")
        elif kind == "cut":
            del stream[at:]
        elif kind == "insert":
            stream[at:at] = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
        elif kind == "drop" and stream:
            del stream[at]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4), label="cuts"))
    bounds = [0, *cuts, len(stream)]
    chunks = [bytes(stream[a:b]) for a, b in itertools.pairwise(bounds)]
    _feed_and_check(conn, chunks, eof)


@FUZZ
@given(st.binary(max_size=200))
def test_payload_decoder_parses_or_raises_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedHandshake):
        assert isinstance(decode_payload(data), HandshakePayload)


@FUZZ
@given(st.binary(max_size=120))
def test_private_key_parser_parses_or_raises_key_format_error(data: bytes) -> None:
    with contextlib.suppress(KeyFormatError):
        IdentityKey.from_bytes(data)


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_frame_decoder_is_bounded(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(50)
    with contextlib.suppress(FrameTooLarge):
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                assert len(frame) <= 50
            assert decoder.buffered <= 50
