"""The control-socket protocol: length-prefixed msgpack messages and typed requests.

Framing: every message is a 4-byte big-endian length followed by that many bytes of msgpack.
A request is a map ``{"cmd": <name>, ...arguments}``; the reply is ``{"ok": true, "result":
...}`` or ``{"ok": false, "error": "<what was wrong>"}``. ``subscribe`` replies once and then
streams ``{"ok": true, "event": {"topic", "module", "data"}}`` until the client hangs up.

This module is pure (no sockets): :class:`MessageReader` buffers bytes and yields decoded
messages, :func:`parse_request` turns a decoded map into a typed request or raises
:class:`ControlRequestError` naming what is wrong. A malformed request must never hurt the
daemon, so everything a client can send is validated here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import msgpack

from bbnode.ids import IdError, PeerId

__all__ = [
    "COMMANDS",
    "MAX_MESSAGE_BYTES",
    "BlockRequest",
    "ControlProtocolError",
    "ControlRequest",
    "ControlRequestError",
    "HealthRequest",
    "MessageReader",
    "PeersRequest",
    "PublishRequest",
    "SnapshotRequest",
    "StatusRequest",
    "SubscribeRequest",
    "UnblockRequest",
    "encode_message",
    "error_reply",
    "ok_reply",
    "parse_request",
]

#: Big enough for a ``publish`` of a sizeable value, small enough that a hostile client
#: cannot make the daemon buffer much.
MAX_MESSAGE_BYTES = 1 << 20
_HEADER = struct.Struct(">I")


class ControlProtocolError(Exception):
    """The byte stream itself is broken (oversize or undecodable message); hang up."""


class ControlRequestError(Exception):
    """A well-framed request that is not a valid command; answer with an error reply."""


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """``status``: identity, listen addresses, uptime, counters."""


@dataclass(frozen=True, slots=True)
class PeersRequest:
    """``peers``: every known peer with address, connection state, health, backoff."""


@dataclass(frozen=True, slots=True)
class HealthRequest:
    """``health``: healthy flag and the reasons when not."""


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """``block``: ban ``peer``, for ``for_s`` seconds or indefinitely when None."""

    peer: PeerId
    for_s: float | None = None


@dataclass(frozen=True, slots=True)
class UnblockRequest:
    """``unblock``: lift a ban on ``peer``."""

    peer: PeerId


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """``publish``: publish ``data`` on ``topic``."""

    topic: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    """``subscribe``: stream every AppEvent on ``topic`` (``*`` = all topics)."""

    topic: str


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """``snapshot``: checkpoint now and report the file written."""


ControlRequest = (
    StatusRequest
    | PeersRequest
    | HealthRequest
    | BlockRequest
    | UnblockRequest
    | PublishRequest
    | SubscribeRequest
    | SnapshotRequest
)


def encode_message(obj: Any) -> bytes:
    """Frame one message; raises ``ValueError`` when it exceeds :data:`MAX_MESSAGE_BYTES`."""
    body: bytes = msgpack.packb(obj, use_bin_type=True)
    if len(body) > MAX_MESSAGE_BYTES:
        raise ValueError(f"control message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return _HEADER.pack(len(body)) + body


def ok_reply(result: Any) -> dict[str, Any]:
    """The success reply carrying ``result``."""
    return {"ok": True, "result": result}


def error_reply(message: str) -> dict[str, Any]:
    """The error reply carrying ``message``."""
    return {"ok": False, "error": message}


class MessageReader:
    """Buffers bytes from a stream; :meth:`next_message` returns decoded messages in order."""

    def __init__(self, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_message_bytes

    def receive_data(self, data: bytes) -> None:
        """Store ``data``; decoding happens in :meth:`next_message`."""
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes held but not yet decoded."""
        return len(self._buf)

    def next_message(self) -> Any | None:
        """The next complete message, or None when more bytes are needed.

        Raises :class:`ControlProtocolError` on an oversize length or undecodable body.
        """
        if len(self._buf) < _HEADER.size:
            return None
        (length,) = _HEADER.unpack_from(self._buf)
        if length > self._max:
            raise ControlProtocolError(
                f"message length {length} exceeds the limit of {self._max} bytes"
            )
        end = _HEADER.size + length
        if len(self._buf) < end:
            return None
        body = bytes(self._buf[_HEADER.size : end])
        del self._buf[:end]
        try:
            return msgpack.unpackb(body, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several unrelated types for bad input
            raise ControlProtocolError(
                f"undecodable msgpack message: {type(exc).__name__}: {exc}"
            ) from exc


def _str_arg(req: dict[Any, Any], key: str, cmd: str) -> str:
    if key not in req:
        raise ControlRequestError(f"{cmd}: missing argument {key!r}")
    value = req[key]
    if not isinstance(value, str) or not value:
        raise ControlRequestError(f"{cmd}: argument {key!r} must be a non-empty string")
    return value


def _peer_arg(req: dict[Any, Any], cmd: str) -> PeerId:
    text = _str_arg(req, "peer", cmd)
    try:
        return PeerId.from_string(text)
    except IdError as exc:
        raise ControlRequestError(f"{cmd}: not a valid peer id: {exc}") from exc


def _no_extra(req: dict[Any, Any], cmd: str, allowed: set[str]) -> None:
    extra = sorted(str(k) for k in req if k not in allowed and k != "cmd")
    if extra:
        raise ControlRequestError(f"{cmd}: unexpected argument(s) {', '.join(extra)}")


def _parse_block(req: dict[Any, Any]) -> BlockRequest:
    _no_extra(req, "block", {"peer", "for_s"})
    peer = _peer_arg(req, "block")
    for_s = req.get("for_s")
    if for_s is not None:
        if isinstance(for_s, bool) or not isinstance(for_s, int | float):
            raise ControlRequestError("block: 'for_s' must be a number of seconds")
        if not 0 < for_s < 1e12:
            raise ControlRequestError(f"block: 'for_s' must be positive, got {for_s}")
        for_s = float(for_s)
    return BlockRequest(peer, for_s)


def _parse_unblock(req: dict[Any, Any]) -> UnblockRequest:
    _no_extra(req, "unblock", {"peer"})
    return UnblockRequest(_peer_arg(req, "unblock"))


def _parse_publish(req: dict[Any, Any]) -> PublishRequest:
    _no_extra(req, "publish", {"topic", "data"})
    topic = _str_arg(req, "topic", "publish")
    if topic.startswith("bb."):
        raise ControlRequestError(f"publish: topic {topic!r} is reserved (bb.*)")
    data = req.get("data")
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, bytes):
        raise ControlRequestError("publish: argument 'data' must be bytes or a string")
    return PublishRequest(topic, data)


def _parse_subscribe(req: dict[Any, Any]) -> SubscribeRequest:
    _no_extra(req, "subscribe", {"topic"})
    return SubscribeRequest(_str_arg(req, "topic", "subscribe"))


def _simple(
    cls: type[StatusRequest | PeersRequest | HealthRequest | SnapshotRequest], name: str
) -> Any:
    def parse(req: dict[Any, Any]) -> ControlRequest:
        _no_extra(req, name, set())
        return cls()

    return parse


_PARSERS: dict[str, Any] = {
    "status": _simple(StatusRequest, "status"),
    "peers": _simple(PeersRequest, "peers"),
    "health": _simple(HealthRequest, "health"),
    "snapshot": _simple(SnapshotRequest, "snapshot"),
    "block": _parse_block,
    "unblock": _parse_unblock,
    "publish": _parse_publish,
    "subscribe": _parse_subscribe,
}

COMMANDS: tuple[str, ...] = tuple(_PARSERS)


def parse_request(obj: Any) -> ControlRequest:
    """Validate a decoded message; raises :class:`ControlRequestError` naming the problem."""
    if not isinstance(obj, dict):
        raise ControlRequestError(f"request must be a map, got {type(obj).__name__}")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise ControlRequestError("request has no 'cmd' string")
    parser = _PARSERS.get(cmd)
    if parser is None:
        raise ControlRequestError(f"unknown command {cmd!r}; expected one of {', '.join(COMMANDS)}")
    request: ControlRequest = parser(obj)
    return request
