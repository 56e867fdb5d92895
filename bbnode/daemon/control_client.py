"""Blocking client for the control socket (used by ``bbnode ctl`` and by tests).

Plain ``socket`` on purpose: a one-shot CLI command gains nothing from an event loop.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from bbnode.daemon.control_protocol import (
    ControlProtocolError,
    MessageReader,
    encode_message,
)

__all__ = ["ControlClient", "ControlClientError", "ControlError"]


class ControlClientError(Exception):
    """The client could not talk to the daemon (no socket, refused, hung up, bad reply)."""


class ControlError(Exception):
    """The daemon answered with an error reply; the message is the daemon's."""


class ControlClient:
    """One connection to a daemon's control socket.

    ``request(cmd, **args)`` sends a command and returns the ``result`` of its reply or
    raises :class:`ControlError`; ``subscribe(topic)`` yields events until the daemon ends
    the stream. Use as a context manager.
    """

    def __init__(self, path: str | Path, timeout_s: float | None = 10.0) -> None:
        self.path = Path(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout_s)
        self._reader = MessageReader()
        try:
            self._sock.connect(os.fspath(self.path))
        except OSError as exc:
            self._sock.close()
            raise ControlClientError(
                f"cannot connect to control socket {self.path}: {exc.strerror or exc}"
            ) from exc

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._sock.close()

    def send_raw(self, data: bytes) -> None:
        """Send bytes as-is (tests use it to send malformed requests)."""
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ControlClientError(f"control socket send failed: {exc}") from exc

    def receive_message(self) -> Any:
        """Block until one complete reply arrives; raise on EOF or a broken stream."""
        while True:
            try:
                message = self._reader.next_message()
            except ControlProtocolError as exc:
                raise ControlClientError(f"bad reply from daemon: {exc}") from exc
            if message is not None:
                return message
            try:
                data = self._sock.recv(65536)
            except OSError as exc:
                raise ControlClientError(f"control socket receive failed: {exc}") from exc
            if not data:
                raise ControlClientError("daemon closed the control connection")
            self._reader.receive_data(data)

    def request(self, cmd: str, **args: Any) -> Any:
        """Send ``{"cmd": cmd, **args}``; return the result or raise :class:`ControlError`."""
        self.send_raw(encode_message({"cmd": cmd, **args}))
        return _unwrap(self.receive_message())

    def subscribe(self, topic: str) -> Iterator[dict[str, Any]]:
        """Subscribe to ``topic``; an iterator of each event map (``topic``, ``module``,
        ``data``).

        The subscription is in force when this returns (the daemon acknowledged it), not
        at the first ``next()``: an event published right after the call is not missed.
        """
        self.request("subscribe", topic=topic)
        return self._events()

    def _events(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                message = self.receive_message()
            except ControlClientError:
                return
            if not isinstance(message, dict) or "event" not in message:
                _unwrap(message)
                continue
            event = message["event"]
            if isinstance(event, dict):
                yield event


def _unwrap(reply: Any) -> Any:
    if not isinstance(reply, dict) or "ok" not in reply:
        raise ControlClientError(f"malformed reply from daemon: {reply!r}")
    if not reply["ok"]:
        raise ControlError(str(reply.get("error", "unknown error")))
    return reply.get("result")
