"""Pubsub wire schema, topic rules and message ids (pure; re-exported by `pubsub`).

A peer's message is untrusted: any problem raises `PubsubRemoteError` naming the field.
Nothing here reads a clock, does I/O or keeps state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from bbnode.ids import IdError, PeerId

__all__ = [
    "DEFAULT_HOPS",
    "MAX_DATA_BYTES",
    "MAX_HOPS",
    "MAX_TOPIC_BYTES",
    "PUBSUB_SCHEMA_VERSION",
    "PubsubError",
    "PubsubLocalError",
    "PubsubMessage",
    "PubsubRemoteError",
    "decode_message",
    "encode_message",
    "forwarded",
    "message_id",
    "validate_topic",
]

PUBSUB_SCHEMA_VERSION: Final = 1
# Hop limit given to a fresh message: a flood reaches any node within this many forwards, so
# 8 covers meshes far larger than the clusters bbnode targets while bounding a loop.
DEFAULT_HOPS: Final = 8
MAX_HOPS: Final = 16
MAX_TOPIC_BYTES: Final = 256
# Well under the envelope's 4 MiB per-fill cap (SPEC 3.6), leaving room for the message map.
MAX_DATA_BYTES: Final = 1 << 20
_U64_MAX: Final = (1 << 64) - 1


class PubsubError(Exception):
    """Base of every error raised by this module."""


class PubsubLocalError(PubsubError, ValueError):
    """The caller misused the API: a bad topic or payload given to `publish`, bad state."""


class PubsubRemoteError(PubsubError, ValueError):
    """A peer sent a malformed pubsub message."""


@dataclass(frozen=True, slots=True)
class PubsubMessage:
    """One published message as it travels between nodes."""

    topic: str
    """Validated topic name (never starting with the reserved `bb.`)."""
    origin: PeerId
    """The publishing node."""
    epoch: int
    """Random u64 the publisher picked when its state began; a fresh state is a new stream."""
    seq: int
    """Per-(origin, epoch) sequence number, from 1."""
    hops: int
    """Transmissions left, including the one that carried it here (1..MAX_HOPS)."""
    data: bytes
    """The payload, opaque to pubsub."""

    @property
    def stream(self) -> tuple[PeerId, int]:
        """The publisher stream this message belongs to."""
        return (self.origin, self.epoch)

    @property
    def id(self) -> bytes:
        """The message id used for dedup; see `message_id`."""
        return message_id(self.origin, self.epoch, self.seq)


def message_id(origin: PeerId, epoch: int, seq: int) -> bytes:
    """`b"pubsub/" || origin multihash || epoch (8 bytes BE) || seq (8 bytes BE)`."""
    return b"pubsub/" + origin.to_bytes() + epoch.to_bytes(8, "big") + seq.to_bytes(8, "big")


def validate_topic(topic: object, error: type[PubsubError] = PubsubLocalError) -> str:
    """Return `topic` when it is a usable topic name, else raise `error` naming the problem."""
    if not isinstance(topic, str):
        raise error(f"pubsub: topic must be a string, got {type(topic).__name__}")
    if not topic:
        raise error("pubsub: topic is empty")
    if len(topic.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        raise error(f"pubsub: topic is longer than {MAX_TOPIC_BYTES} bytes")
    if topic.startswith("bb."):
        raise error(f"pubsub: topic {topic!r} is reserved (topics starting 'bb.' are)")
    if any(not ch.isprintable() for ch in topic):
        raise error(f"pubsub: topic {topic!r} contains a control character")
    return topic


def encode_message(message: PubsubMessage) -> dict[str, Any]:
    """The msgpack-able value of `message`."""
    return {
        "v": PUBSUB_SCHEMA_VERSION,
        "topic": message.topic,
        "origin": message.origin.to_bytes(),
        "epoch": message.epoch,
        "seq": message.seq,
        "hops": message.hops,
        "data": message.data,
    }


def decode_message(value: object) -> PubsubMessage:
    """Validate an inbound message value; raises `PubsubRemoteError` naming what is wrong."""
    if not isinstance(value, Mapping):
        raise PubsubRemoteError(f"pubsub: message must be a map, got {type(value).__name__}")
    if value.get("v") != PUBSUB_SCHEMA_VERSION:
        raise PubsubRemoteError(
            f"pubsub: unsupported schema version {value.get('v')!r} "
            f"(expected {PUBSUB_SCHEMA_VERSION})"
        )
    topic = validate_topic(value.get("topic"), PubsubRemoteError)
    raw_origin = value.get("origin")
    if not isinstance(raw_origin, bytes):
        raise PubsubRemoteError("pubsub: 'origin' must be bytes")
    try:
        origin = PeerId.from_bytes(raw_origin)
    except IdError as exc:
        raise PubsubRemoteError(f"pubsub: bad origin peer id: {exc}") from exc
    epoch = _int_field(value, "epoch", 0, _U64_MAX)
    seq = _int_field(value, "seq", 1, _U64_MAX)
    hops = _int_field(value, "hops", 1, MAX_HOPS)
    data = value.get("data")
    if not isinstance(data, bytes):
        raise PubsubRemoteError("pubsub: 'data' must be bytes")
    if len(data) > MAX_DATA_BYTES:
        raise PubsubRemoteError(f"pubsub: data of {len(data)} bytes (at most {MAX_DATA_BYTES})")
    return PubsubMessage(topic, origin, epoch, seq, hops, data)


def _int_field(value: Mapping[Any, Any], key: str, low: int, high: int) -> int:
    field = value.get(key)
    if not isinstance(field, int) or isinstance(field, bool) or not low <= field <= high:
        raise PubsubRemoteError(f"pubsub: {key!r} must be an integer in [{low}, {high}]")
    return field


def forwarded(message: PubsubMessage) -> PubsubMessage | None:
    """The copy to forward (one hop used), or None when the hop limit is reached."""
    if message.hops <= 1:
        return None
    return replace(message, hops=message.hops - 1)
