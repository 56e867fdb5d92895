"""The daemon's clocks: engine time (epoch ns moved by trio's clock, never backwards) and
the trio clock ``bbnode run`` runs under."""

from __future__ import annotations

import time

import trio
import trio.testing

from bbnode.daemon.clock import EngineClock, PerfCounterClock

_S = 1_000_000_000


async def test_engine_time_is_the_wall_base_moved_by_trio_time(
    mock_clock: trio.testing.MockClock,
) -> None:
    clock = EngineClock(wall_base_ns=1_700_000_000 * _S)
    assert clock.now_ns() == 1_700_000_000 * _S
    mock_clock.jump(1.5)
    assert clock.now_ns() == 1_700_000_001 * _S + _S // 2
    # Its inverse: the trio reading at which engine time reaches a given value.
    assert clock.to_trio_time(1_700_000_003 * _S) == trio.current_time() + 1.5


async def test_engine_time_never_goes_back(mock_clock: trio.testing.MockClock) -> None:
    clock = EngineClock(wall_base_ns=5 * _S)
    earlier = trio.current_time()
    mock_clock.jump(2.0)
    later = clock.now_ns()
    assert later == 7 * _S
    # A reading taken before the last one (``ns_at`` with a stale trio time) gives the
    # latest engine time, not an earlier one.
    assert clock.ns_at(earlier) == later
    assert clock.ns_at(trio.current_time()) == later


def test_trio_runs_on_the_perf_counter_clock() -> None:
    """Readings are ``time.perf_counter``'s own, and deadlines fire by them."""

    async def main() -> tuple[float, float, float, float]:
        before = time.perf_counter()
        start = trio.current_time()
        await trio.sleep(0.01)
        woke = trio.current_time()
        return before, start, woke, time.perf_counter()

    before, start, woke, after = trio.run(main, clock=PerfCounterClock())
    assert before <= start <= woke <= after
    assert woke >= start + 0.01
