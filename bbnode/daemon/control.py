"""The control-socket server: a Unix socket in the state dir, mode 0660.

Each client connection reads framed msgpack requests (:mod:`.control_protocol`) and answers
each with one reply; ``subscribe`` turns the connection into an event stream. Anything a
client sends that is not a valid request gets an error reply (or, for a broken byte stream,
a final error reply and a hang-up); nothing a client does can raise out of this module.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any, Protocol

import structlog
import trio

from bbnode.daemon.control_protocol import (
    ControlProtocolError,
    ControlRequest,
    ControlRequestError,
    MessageReader,
    SubscribeRequest,
    encode_message,
    error_reply,
    ok_reply,
    parse_request,
)
from bbnode.daemon.subscriptions import SubscriptionHub

__all__ = ["MAX_CONTROL_CLIENTS", "ControlBackend", "ControlCommandError", "serve_control"]

log = structlog.get_logger(component="control")

#: Concurrent control clients; more are answered with an error and closed.
MAX_CONTROL_CLIENTS = 64
#: Unix socket paths are limited to 108 bytes by sockaddr_un.
_MAX_UNIX_PATH = 107


class ControlCommandError(Exception):
    """A valid command that could not be carried out; its message goes to the client."""


class ControlBackend(Protocol):
    """What the control server needs from the daemon (the engine driver implements it)."""

    async def execute(self, request: ControlRequest) -> Any:
        """Run one non-streaming command; raise :class:`ControlCommandError` on failure."""
        ...


def _prepare_paths(path: Path) -> Path:
    """Remove a stale socket (a killed daemon's), refusing to steal a live one."""
    if path.is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(os.fspath(path))
        except OSError:
            path.unlink(missing_ok=True)
        else:
            raise OSError(f"another daemon is serving the control socket {path}")
        finally:
            probe.close()
    # Bind under a temporary name and chmod before renaming into place, so the socket is
    # never reachable with the umask's (possibly wider) permissions.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    return tmp


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


async def _bind_unix(path: Path) -> trio.SocketListener:
    if len(os.fsencode(path)) > _MAX_UNIX_PATH:
        raise OSError(f"control socket path too long ({len(os.fsencode(path))} bytes): {path}")
    tmp = _prepare_paths(path)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await sock.bind(os.fspath(tmp))
        os.chmod(tmp, 0o660)
        os.rename(tmp, path)
        sock.listen(16)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def serve_control(
    path: Path,
    backend: ControlBackend,
    hub: SubscriptionHub,
    *,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the control socket at ``path`` until cancelled; started() gets the path."""
    listener = await _bind_unix(path)
    clients = 0
    try:
        async with trio.open_nursery() as nursery:
            task_status.started(path)
            while True:
                stream = await listener.accept()
                if clients >= MAX_CONTROL_CLIENTS:
                    nursery.start_soon(_refuse, stream)
                    continue
                clients += 1

                async def run(s: trio.SocketStream = stream) -> None:
                    nonlocal clients
                    try:
                        await _serve_client(s, backend, hub)
                    finally:
                        clients -= 1

                nursery.start_soon(run)
    finally:
        _remove(path)
        await listener.aclose()


async def _refuse(stream: trio.SocketStream) -> None:
    with trio.move_on_after(1):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(encode_message(error_reply("too many control clients")))
    await trio.aclose_forcefully(stream)


async def _serve_client(
    stream: trio.SocketStream, backend: ControlBackend, hub: SubscriptionHub
) -> None:
    reader = MessageReader()
    try:
        async with stream:
            while True:
                try:
                    message = reader.next_message()
                except ControlProtocolError as exc:
                    log.warning("control_bad_stream", reason=str(exc))
                    await stream.send_all(encode_message(error_reply(str(exc))))
                    return
                if message is None:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    reader.receive_data(data)
                    continue
                try:
                    request = parse_request(message)
                except ControlRequestError as exc:
                    log.info("control_bad_request", reason=str(exc))
                    await stream.send_all(encode_message(error_reply(str(exc))))
                    continue
                if isinstance(request, SubscribeRequest):
                    await _stream_events(stream, request.topic, hub)
                    return
                await stream.send_all(encode_message(await _execute(backend, request)))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return  # the client went away; nothing to clean up beyond the stream


async def _execute(backend: ControlBackend, request: ControlRequest) -> dict[str, Any]:
    try:
        return ok_reply(await backend.execute(request))
    except ControlCommandError as exc:
        return error_reply(str(exc))


async def _stream_events(stream: trio.SocketStream, topic: str, hub: SubscriptionHub) -> None:
    sub = hub.open(topic)
    try:
        await stream.send_all(encode_message(ok_reply({"subscribed": topic})))
        async with trio.open_nursery() as nursery:

            async def watch_hangup() -> None:
                # Whatever the client sends now is ignored; EOF ends the subscription.
                while await stream.receive_some(4096):
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_hangup)
            async for event in sub.receive:
                await stream.send_all(encode_message({"ok": True, "event": event}))
            # The hub closed us (shutdown): end the stream cleanly.
            nursery.cancel_scope.cancel()
    finally:
        hub.close(sub)
