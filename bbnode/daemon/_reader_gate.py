"""Connection readers that handed input to the driver wait for its turn before reading on.

A reader forwards what it read on the driver's channel, which makes the driver runnable; trio
runs it in its next scheduling batch, once every task of the current batch has reached its
next wait. A reader that went straight back to its socket would make setting up that wait
(an epoll registration: Python work and a syscall) part of every request's critical path,
since the driver cannot start on the request before it. So a reader that forwarded something
parks here instead (no registration, no syscall), and the driver lets every parked reader go
at the end of its turn (:meth:`ReaderGate.release`), after the turn's writes, when a peer is
busy answering. The reader then reads on: whatever arrived meanwhile is waiting in the
socket.

This also bounds what one reader forwards to one read per driver turn. A reader cancelled
while parked (its connection closing, its idle deadline) simply leaves.
"""

from __future__ import annotations

from typing import Any

import trio

__all__ = ["ReaderGate"]


class ReaderGate:
    """Where readers wait for the end of the driver's next turn (one per connection manager)."""

    def __init__(self) -> None:
        self._parked: list[trio.lowlevel.Task] = []

    @property
    def parked(self) -> int:
        """Readers waiting for the end of a turn."""
        return len(self._parked)

    async def wait_for_turn(self) -> None:
        """Wait until the driver's next :meth:`release` (or a cancellation)."""
        task = trio.lowlevel.current_task()
        self._parked.append(task)

        def abort(_: Any) -> trio.lowlevel.Abort:
            # Still parked, so still in the current list: release() swaps the list out
            # before it reschedules anyone, and trio aborts only tasks not yet rescheduled.
            self._parked.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def release(self) -> None:
        """Let every parked reader go (the driver, at the end of each turn)."""
        parked = self._parked
        if parked:
            self._parked = []
            reschedule = trio.lowlevel.reschedule
            for task in parked:
                reschedule(task)
