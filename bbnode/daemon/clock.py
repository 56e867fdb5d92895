"""The engine clock the daemon feeds: wall-clock epoch nanoseconds, advanced monotonically.

Decision (issue 5): engine time is **Unix epoch ns**. At start the daemon reads the wall
clock once and from then on advances it by trio's monotonic clock, never backwards. So:

- deadlines inside one run are immune to wall-clock steps (NTP, manual changes), because
  only the monotonic clock moves engine time;
- values the engine persists in snapshots (block expiries ``until_ns``, backoff retry
  times, timer maturities) are absolute epoch times and stay meaningful after a restart:
  a ``block --for 1h`` issued before a restart expires one wall-clock hour after it was
  issued, not one hour after the restart.

A restart seeds the base from the wall clock again; if the wall clock went backwards
across a restart the engine may see time "jump back" relative to restored values, which
only makes restored expiries and retries happen later, never earlier.
"""

from __future__ import annotations

import time

import trio

__all__ = ["EngineClock", "PerfCounterClock"]


class PerfCounterClock(trio.abc.Clock):
    """The trio clock ``bbnode run`` runs under: ``time.perf_counter`` itself.

    Trio's default clock reads the same counter through a Python method that adds a random
    offset (to expose code mixing it up with ``perf_counter``). Its run loop reads the clock
    once per scheduling batch, and the driver and connections read it on every message:
    a Python frame each, about a microsecond apiece on a request's path when the process
    wakes cold. Here a read is the C call alone.
    """

    current_time = staticmethod(time.perf_counter)

    def start_clock(self) -> None:
        """Nothing to start: the counter runs."""

    def deadline_to_sleep_time(self, deadline: float) -> float:
        """Seconds from now until ``deadline`` (trio may sleep that long)."""
        return deadline - time.perf_counter()


class EngineClock:
    """Maps trio's monotonic clock onto epoch nanoseconds; must be used inside ``trio.run``."""

    def __init__(self, wall_base_ns: int | None = None) -> None:
        self._wall_base_ns = time.time_ns() if wall_base_ns is None else wall_base_ns
        #: The run's clock itself: what ``trio.current_time()`` reads through three calls
        #: (the driver asks several times per turn).
        self.trio_time = trio.lowlevel.current_clock().current_time
        self._mono_base_s = self.trio_time()
        self._last_ns = self._wall_base_ns

    def now_ns(self) -> int:
        """Current engine time; never decreases."""
        return self.ns_at(self.trio_time())

    def ns_at(self, trio_s: float) -> int:
        """Engine time at trio clock reading ``trio_s``, read just now (never decreases)."""
        elapsed_ns = int((trio_s - self._mono_base_s) * 1_000_000_000)
        now = self._wall_base_ns + elapsed_ns
        if now < self._last_ns:
            now = self._last_ns
        self._last_ns = now
        return now

    def to_trio_time(self, engine_ns: int) -> float:
        """The trio clock reading at which the engine clock will read ``engine_ns``."""
        return self._mono_base_s + (engine_ns - self._wall_base_ns) / 1_000_000_000
