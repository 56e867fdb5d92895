"""The daemon's copy of the PeerId policy, for admission right after the handshake.

The engine's PeerGovernor is the authority, but only the driver task may touch the Node.
Connection tasks therefore consult this mirror, a PeerGovernor of its own that the driver
updates with every policy change it makes to the Node (config lists at start and reload,
runtime bans from the snapshot and from ``ctl block``/``unblock``). Both are changed in the
same driver step, so they never disagree at an await point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from bbnode.engine.framework import Deny, PeerGovernor
from bbnode.ids import PeerId

__all__ = ["PeerPolicy"]


class PeerPolicy:
    """Block/allow decisions for connection admission (``check(peer)`` → reason or None)."""

    def __init__(self, now_ns: Callable[[], int]) -> None:
        self._now_ns = now_ns
        self._gov = PeerGovernor()

    def load_from(self, restored: PeerGovernor) -> None:
        """Adopt the block/allow lists of ``restored`` (the restored Node's governor)."""
        gov = PeerGovernor()
        gov.set_allowlist(restored.allowlist)
        for entry in restored.block_entries():
            gov.block(entry.peer, until_ns=entry.until_ns, source=entry.source)
        self._gov = gov

    def set_config(self, block: Iterable[PeerId], allow: Iterable[PeerId] | None) -> None:
        """Replace the config-sourced lists; runtime bans stay."""
        self._gov.replace_config_blocks(block)
        self._gov.set_allowlist(None if allow is None else set(allow))

    def block(self, peer: PeerId, until_ns: int | None) -> None:
        """Record a runtime ban."""
        self._gov.block(peer, until_ns=until_ns, source="runtime")

    def unblock(self, peer: PeerId) -> None:
        """Lift a ban."""
        self._gov.unblock(peer)

    def check(self, peer: PeerId) -> str | None:
        """``blocklisted`` / ``not_allowlisted`` when ``peer`` may not connect, else None."""
        decision = self._gov.check_inbound(peer, self._now_ns())
        if isinstance(decision, Deny):
            return decision.reason.code
        return None

    def blocked(self) -> list[dict[str, Any]]:
        """Block entries in force, for ``ctl status``."""
        now = self._now_ns()
        return [
            {"peer": str(e.peer), "until_ns": e.until_ns, "source": e.source}
            for e in self._gov.block_entries()
            if e.in_force(now)
        ]
