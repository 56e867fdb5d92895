"""The driver applies every input already waiting before it polls.

It stops taking input when the channel's buffer is empty (``channel_buffer``), or, with a
trio whose buffer it cannot find, at ``WouldBlock``; both must take every waiting input into
the same turn.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from bbnode.daemon import driver as driver_module
from bbnode.daemon.driver import EngineDriver, channel_buffer
from bbnode.daemon.supervisor import Daemon
from tests.daemon._inprocess import inprocess_config

#: Generous bound for every wait (a loaded CI machine), never a timing assertion.
WAIT_S = 60


async def test_the_channel_buffer_is_found_and_tracks_what_waits() -> None:
    """On the trio we run on, the driver finds the buffer (else it falls back silently,
    paying an exception per input: an upgrade that moves it must fail here instead)."""
    send, receive = trio.open_memory_channel[int](8)
    buffer = channel_buffer(receive)
    assert buffer is not None
    assert len(buffer) == 0
    send.send_nowait(1)
    send.send_nowait(2)
    assert len(buffer) == 2
    assert receive.receive_nowait() == 1
    assert len(buffer) == 1


@pytest.mark.parametrize("buffer_found", [True, False], ids=["buffer", "would-block"])
async def test_every_waiting_input_is_applied_before_the_next_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buffer_found: bool
) -> None:
    if not buffer_found:
        monkeypatch.setattr(driver_module, "channel_buffer", lambda receive: None)
    turns = 0
    turn = EngineDriver.turn

    def counted_turn(self: EngineDriver, synced_at: float | None = None) -> int:
        nonlocal turns
        turns += 1
        return turn(self, synced_at)

    monkeypatch.setattr(EngineDriver, "turn", counted_turn)
    seen: list[int] = []
    daemon = Daemon(inprocess_config(tmp_path))
    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon.serve)
            await daemon.ready.wait()
            backend = daemon.backend
            assert backend is not None
            # Started together, the callers all send in one scheduling batch, before the
            # driver runs: the first wakes it, the other four wait in the buffer.
            async with trio.open_nursery() as callers:
                for _ in range(5):
                    callers.start_soon(backend.call, lambda d: seen.append(turns))
            daemon.request_stop()
    assert len(seen) == 5
    assert seen == [seen[0]] * 5
