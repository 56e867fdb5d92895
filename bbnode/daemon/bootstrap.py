"""Links to bootstrap addresses configured without ``/p2p``.

A bootstrap address with ``/p2p/<id>`` is an ordinary peer: it joins the engine's address
book at start and the engine dials it when it has something to send. One without (a seed
whose key is created on its first start, say, in a container cluster) names no peer the
engine could address, so the daemon keeps a link to it itself: dial whoever is there, learn
its PeerId in the handshake (the driver then knows the address as ``.../p2p/<id>``), and
dial again whenever no connection to that peer is left. Failures back off exponentially;
an address that turns out to be this node is dropped (every pod of a cluster may share one
bootstrap list that names itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
import trio

from bbnode.ids import Address, PeerId

if TYPE_CHECKING:
    from bbnode.daemon.connections import ConnectionManager

__all__ = ["LearnedPeer", "keep_bootstrap_link"]

log = structlog.get_logger(component="bootstrap")

#: Told the PeerId found at a bootstrap address, and the address with ``/p2p`` added.
LearnedPeer = Callable[[PeerId, Address], None]


async def keep_bootstrap_link(
    manager: ConnectionManager,
    address: Address,
    learned: LearnedPeer,
    min_s: float = 1.0,
    max_s: float = 60.0,
) -> None:
    """Keep a connection to ``address`` until cancelled (see the module docstring)."""
    delay_s = min_s
    peer: PeerId | None = None
    while True:
        conn = manager.connection(peer) if peer is not None else None
        if conn is None:
            result = await manager.dial_address(address)
            if isinstance(result, str):
                if result == "peer_self_connection":
                    log.info("bootstrap_is_self", address=str(address))
                    return
                log.info(
                    "bootstrap_dial_failed", address=str(address), reason=result, retry_in_s=delay_s
                )
                await trio.sleep(delay_s)
                delay_s = min(delay_s * 2, max_s)
                continue
            conn = result
            if conn.peer != peer:
                peer = conn.peer
                learned(peer, address.with_peer(peer))
                log.info("bootstrap_peer_learned", address=str(address), peer=str(peer))
        await conn.finished.wait()
        # A link that carried frames was healthy: start over from the shortest delay. One
        # the remote closed without a word (a refusal) waits longer each time.
        delay_s = min_s if conn.frames_in else min(delay_s * 2, max_s)
        await trio.sleep(delay_s)  # the engine's own redial may win meanwhile
