"""The control server over a real Unix socket, with a small in-process backend."""

from __future__ import annotations

import stat
import struct
from pathlib import Path
from typing import Any

import pytest
import trio

from bbnode.daemon.control import ControlCommandError, serve_control
from bbnode.daemon.control_client import ControlClient, ControlClientError, ControlError
from bbnode.daemon.control_protocol import BlockRequest, ControlRequest, StatusRequest
from bbnode.daemon.subscriptions import SubscriptionHub
from bbnode.ids import PeerId


class Backend:
    def __init__(self) -> None:
        self.seen: list[ControlRequest] = []

    async def execute(self, request: ControlRequest) -> Any:
        self.seen.append(request)
        if isinstance(request, StatusRequest):
            return {"ok": "yes"}
        if isinstance(request, BlockRequest):
            raise ControlCommandError("cannot block that")
        return None


async def _serve(path: Path, backend: Backend, hub: SubscriptionHub, nursery: trio.Nursery) -> None:
    await nursery.start(serve_control, path, backend, hub)


async def test_requests_errors_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    backend = Backend()
    hub = SubscriptionHub()
    async with trio.open_nursery() as nursery:
        await _serve(path, backend, hub, nursery)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660

        def client_work() -> None:
            with ControlClient(path) as c:
                assert c.request("status") == {"ok": "yes"}
                with pytest.raises(ControlError, match="unknown command 'nope'"):
                    c.request("nope")
                with pytest.raises(ControlError, match="cannot block that"):
                    c.request("block", peer=str(PeerId.from_u64(3)))
                # The same connection still works after errors.
                assert c.request("status") == {"ok": "yes"}
            with ControlClient(path) as c:
                c.send_raw(struct.pack(">I", 1 << 30))
                reply = c.receive_message()
                assert reply["ok"] is False
                assert "exceeds the limit" in reply["error"]
                with pytest.raises(ControlClientError, match="closed"):
                    c.receive_message()
            with ControlClient(path) as c:
                c.send_raw(struct.pack(">I", 2) + b"\xc1\xc1")
                assert "undecodable" in c.receive_message()["error"]

        await trio.to_thread.run_sync(client_work)
        assert len(backend.seen) == 3
        nursery.cancel_scope.cancel()
    assert not path.exists()


async def test_subscribe_streams_matching_events(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    hub = SubscriptionHub()
    async with trio.open_nursery() as nursery:
        await _serve(path, Backend(), hub, nursery)
        got: list[dict[str, Any]] = []

        def subscriber() -> None:
            with ControlClient(path) as c:
                for event in c.subscribe("news"):
                    got.append(event)
                    if len(got) == 2:
                        return

        nursery.start_soon(trio.to_thread.run_sync, subscriber)
        with trio.fail_after(5):
            while hub.count == 0:  # noqa: ASYNC110 - the subscriber runs in a thread
                await trio.sleep(0.01)
        hub.publish("other", "m", b"x")
        hub.publish("news", "m", b"1")
        hub.publish("news", "m", b"2")
        with trio.fail_after(5):
            while len(got) < 2:  # noqa: ASYNC110 - the subscriber runs in a thread
                await trio.sleep(0.01)
        assert got == [
            {"topic": "news", "module": "m", "data": b"1"},
            {"topic": "news", "module": "m", "data": b"2"},
        ]
        nursery.cancel_scope.cancel()


async def test_refuses_to_steal_a_live_socket(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    async with trio.open_nursery() as nursery:
        await _serve(path, Backend(), SubscriptionHub(), nursery)
        with pytest.raises(OSError, match="another daemon"):
            await serve_control(path, Backend(), SubscriptionHub())
        nursery.cancel_scope.cancel()


def test_missing_socket_is_a_client_error(tmp_path: Path) -> None:
    with pytest.raises(ControlClientError, match="cannot connect"):
        ControlClient(tmp_path / "none.sock")
