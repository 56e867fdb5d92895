"""The metrics endpoint: ``[metrics] listen = "host:port"`` serves ``GET /metrics``.

A tiny HTTP/1.0 server running as a trio task in the supervisor nursery, not
prometheus_client's threaded server: scrape-time reads then never race the driver, and
shutdown is just a cancel. One request per connection, a bounded request head and deadline,
at most :data:`MAX_CLIENTS` concurrent scrapers. It never writes to the engine.
``[metrics] listen`` is read at start only: a SIGHUP reload does not move the endpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import structlog
import trio
from prometheus_client import generate_latest

from bbnode.daemon.metrics import EngineSample, MetricsState, build_registry

__all__ = ["CONTENT_TYPE", "EngineSampler", "serve_metrics"]

log = structlog.get_logger(component="metrics")

#: The Prometheus text format 0.0.4, which ``generate_latest`` writes (spelled out because
#: prometheus_client's own ``CONTENT_TYPE_LATEST`` became 1.0.0 in 0.22).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: How long a scrape waits for the driver to sample engine state (below Prometheus's
#: default 10 s scrape timeout, so a stuck driver still yields a scrape that says so).
ENGINE_SAMPLE_TIMEOUT_S = 2.0
#: Concurrent scrape connections; more wait for a slot (the listener's backlog holds them).
MAX_CLIENTS = 8
#: Bytes and seconds a client gets to send its request head.
MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0


#: Samples engine state for one scrape (raises on timeout; see ``serve_metrics``).
EngineSampler = Callable[[], Awaitable[EngineSample]]


async def serve_metrics(
    listen: tuple[str, int],
    state: MetricsState,
    sample: EngineSampler,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``GET /metrics`` on ``listen`` until cancelled; reports the bound address."""
    registry = build_registry(state)
    host, port = listen
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    log.info("metrics_listening", address=f"{host}:{bound[1]}", path="/metrics")
    limiter = trio.CapacityLimiter(MAX_CLIENTS)

    async def scrape() -> bytes:
        engine: EngineSample | None = None
        with trio.move_on_after(ENGINE_SAMPLE_TIMEOUT_S):
            try:
                engine = await sample()
            except Exception as exc:  # a stuck or failing driver must not fail the scrape
                log.warning("metrics_engine_sample_failed", reason=str(exc))
        # No await between these two: concurrent scrapes cannot swap samples.
        state.engine = engine
        return generate_latest(registry)

    async def handle(stream: trio.SocketStream) -> None:
        # A scraper that goes away mid-response leaves nothing to clean up.
        async with limiter, stream:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await _handle_request(stream, scrape)

    async with trio.open_nursery() as nursery:
        task_status.started((host, bound[1]))
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)


async def _handle_request(
    stream: trio.SocketStream, scrape: Callable[[], Awaitable[bytes]]
) -> None:
    head = b""
    with trio.move_on_after(REQUEST_TIMEOUT_S):
        while b"\r\n\r\n" not in head and b"\n\n" not in head:
            if len(head) > MAX_REQUEST_BYTES:
                await _respond(stream, 431, b"request head too large\n")
                return
            data = await stream.receive_some(4096)
            if not data:
                return
            head += data
    if b"\n" not in head:
        return  # timed out before a request line
    parts = head.split(b"\n", 1)[0].decode("latin-1").strip().split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        await _respond(stream, 400, b"bad request\n")
        return
    method, target = parts[0], parts[1]
    path = target.split("?", 1)[0]
    if path not in ("/metrics", "/"):
        await _respond(stream, 404, b"not found; try /metrics\n")
        return
    if method not in ("GET", "HEAD"):
        await _respond(stream, 405, b"method not allowed\n", extra=b"Allow: GET, HEAD\r\n")
        return
    if path == "/":
        body = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
        await _respond(stream, 200, body, "text/html; charset=utf-8", head_only=method == "HEAD")
        return
    await _respond(stream, 200, await scrape(), CONTENT_TYPE, head_only=method == "HEAD")


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
}


async def _respond(
    stream: trio.SocketStream,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    head_only: bool = False,
    extra: bytes = b"",
) -> None:
    header = (
        f"HTTP/1.0 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
    ).encode("latin-1")
    await stream.send_all(header + extra + b"\r\n" + (b"" if head_only else body))
