"""Two daemons in the test process, ``a`` bootstrapped to ``b`` and connected."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from bbnode.daemon.supervisor import Daemon
from bbnode.engine.component import Component
from tests.daemon._harness import free_port
from tests.daemon._inprocess import inprocess_config

__all__ = ["WAIT_S", "connected_daemons"]

#: Generous bound for every wait (a loaded CI machine), never a timing assertion.
WAIT_S = 60


@asynccontextmanager
async def connected_daemons(
    tmp_path: Path,
    a_components: Sequence[Component] = (),
    b_components: Sequence[Component] = (),
    heartbeat: bool = False,
) -> AsyncIterator[tuple[Daemon, Daemon]]:
    """Daemon ``b`` listening, daemon ``a`` bootstrapped to it; yields once they are
    connected, asks both to stop on exit. Everything is bounded by ``WAIT_S``."""
    port_b = free_port()
    b = Daemon(
        inprocess_config(tmp_path / "b", port_b, heartbeat=heartbeat),
        extra_components=list(b_components),
    )
    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(b.serve)
            await b.ready.wait()
            assert b.backend is not None
            b_peer = b.backend.driver.manager.local_peer
            boot = f"/ip4/127.0.0.1/tcp/{port_b}/p2p/{b_peer}"
            a = Daemon(
                inprocess_config(tmp_path / "a", None, boot, heartbeat),
                extra_components=list(a_components),
            )
            nursery.start_soon(a.serve)
            await a.ready.wait()
            assert a.backend is not None
            manager = a.backend.driver.manager
            while not manager.is_connected(b_peer):  # noqa: ASYNC110 - owned by a's tasks
                await trio.sleep(0.01)
            yield a, b
            a.request_stop()
            b.request_stop()
