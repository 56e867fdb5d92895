"""Control commands, carried out by the engine driver between polls.

The control server (:mod:`.control`) runs one task per client; each command becomes a
:class:`~.driver.ControlCall` on the driver's input channel, so the Node is still touched
only by the driver. ``health`` is the exception that proves the rule: it sends a no-op
call and reports the driver *stuck* when it is not answered in time, which is exactly the
liveness a container HEALTHCHECK wants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from bbnode.daemon.control import ControlCommandError
from bbnode.daemon.control_protocol import (
    BlockRequest,
    ControlRequest,
    HealthRequest,
    PeersRequest,
    PublishRequest,
    SnapshotRequest,
    StatusRequest,
    UnblockRequest,
)
from bbnode.daemon.driver import ControlCall, EngineDriver
from bbnode.daemon.events import DriverInput
from bbnode.ids import PeerId
from bbnode.store.errors import SnapshotWriteError

__all__ = ["DriverControlBackend"]

#: How long a command may wait for the driver before the daemon is reported stuck.
CALL_TIMEOUT_S = 10.0
HEALTH_TIMEOUT_S = 5.0


class DriverControlBackend:
    """Implements :class:`~.control.ControlBackend` on top of an :class:`EngineDriver`."""

    def __init__(
        self,
        driver: EngineDriver,
        send: trio.MemorySendChannel[DriverInput | ControlCall],
        started_s: float,
        restore_failed: bool = False,
    ) -> None:
        self.driver = driver
        self._send = send
        self.started_s = started_s
        self.restore_failed = restore_failed
        self.module_names: set[str] = set()

    async def call(
        self, fn: Callable[[EngineDriver], Any], timeout_s: float = CALL_TIMEOUT_S
    ) -> Any:
        """Run ``fn(driver)`` in the driver task and return its result."""
        call = ControlCall(fn)
        with trio.move_on_after(timeout_s):
            await self._send.send(call)
            await call.done.wait()
        if not call.done.is_set():
            raise ControlCommandError("the engine driver did not answer in time (stuck?)")
        if call.error is not None:
            raise ControlCommandError(f"{type(call.error).__name__}: {call.error}")
        return call.result

    async def execute(self, request: ControlRequest) -> Any:
        """Carry out one command (see :mod:`.control_protocol` for the request types)."""
        if isinstance(request, StatusRequest):
            return await self.call(self._status)
        if isinstance(request, PeersRequest):
            return await self.call(self._peers)
        if isinstance(request, HealthRequest):
            return await self.health()
        if isinstance(request, BlockRequest):
            until = await self.call(lambda d: d.block(request.peer, request.for_s))
            return {"peer": str(request.peer), "until_ns": until}
        if isinstance(request, UnblockRequest):
            await self.call(lambda d: d.unblock(request.peer))
            return {"peer": str(request.peer)}
        if isinstance(request, PublishRequest):
            return await self.call(lambda d: self._publish(d, request))
        if isinstance(request, SnapshotRequest):
            snapshot = await self.call(lambda d: d.node.snapshot())
            try:
                path = await self.driver.checkpointer.write_now(snapshot)
            except SnapshotWriteError as exc:
                raise ControlCommandError(f"snapshot write failed: {exc}") from exc
            return {"path": str(path)}
        raise ControlCommandError(f"unsupported command {type(request).__name__}")

    async def health(self) -> dict[str, Any]:
        """``{"healthy": bool, "problems": [...]}``; never raises."""
        problems: list[str] = []
        try:
            await self.call(lambda d: None, timeout_s=HEALTH_TIMEOUT_S)
        except ControlCommandError:
            problems.append("driver_stuck")
        if not self.driver.checkpointer.healthy:
            problems.append(f"snapshot_write_failed: {self.driver.checkpointer.last_error}")
        if self.restore_failed:
            problems.append("snapshot_restore_failed")
        return {"healthy": not problems, "problems": problems}

    def _status(self, d: EngineDriver) -> dict[str, Any]:
        return {
            "peer_id": str(d.manager.local_peer),
            "listen": [str(a) for a in d.manager.listen_addresses],
            "uptime_s": round(trio.current_time() - self.started_s, 3),
            "connections": d.manager.connection_count,
            "connected_peers": [str(p) for p in d.manager.connected_peers()],
            "blocked": d.policy.blocked(),
            "last_snapshot": None
            if d.checkpointer.last_path is None
            else str(d.checkpointer.last_path),
            "counters": d.counters.as_dict(),
        }

    def _peers(self, d: EngineDriver) -> list[dict[str, Any]]:
        peers: set[PeerId] = set(d.known_peers) | set(d.manager.connected_peers())
        rows = []
        now = d.clock.now_ns()
        for peer in sorted(peers):
            conn = d.manager.info(peer)
            health = d.node.peer_health(peer)
            backoff = d.node.backoff.state(peer)
            rows.append(
                {
                    "peer": str(peer),
                    "state": "connected"
                    if conn is not None
                    else ("dialing" if d.manager.is_dialing(peer) else "disconnected"),
                    "address": conn["address"]
                    if conn is not None
                    else ", ".join(str(a) for a in d.addresses_of(peer)),
                    "direction": None if conn is None else conn["direction"],
                    "health": None
                    if health is None
                    else {
                        "down": health.down,
                        "consecutive_failures": health.consecutive_failures,
                    },
                    "backoff": None
                    if backoff is None
                    else {
                        "attempts": backoff.attempts,
                        "retry_in_s": max(0.0, (backoff.next_retry_ns - now) / 1e9),
                    },
                    "blocked": d.policy.check(peer) is not None,
                }
            )
        return rows

    def _publish(self, d: EngineDriver, request: PublishRequest) -> dict[str, Any]:
        if "pubsub" in self.module_names:
            exec_id = d.node.invoke(
                "pubsub", "publish", {"topic": request.topic, "data": request.data}
            )
            return {"topic": request.topic, "exec_id": exec_id}
        # No pubsub component: deliver to local subscribers only.
        delivered = d.hub.publish(request.topic, "control", request.data)
        return {"topic": request.topic, "local_subscribers": delivered}
