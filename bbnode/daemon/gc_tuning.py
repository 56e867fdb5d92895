"""Cyclic-GC settings for a process whose job is to serve: `bbnode run` applies them.

Python's cyclic collector walks the objects of a generation each time it runs. A daemon's
startup builds tens of thousands of long-lived objects (modules, classes, trio's and the
engine's tables, a restored address book) that every full collection then walks again,
which also evicts the caches the message path runs from. Measured with
`bench/daemon_bench.py` (two processes, 2-core machine): one-way 69k -> 132k messages/s with
`gc.freeze()` alone, 162k with the higher first threshold too; round trips ~1.8k -> ~2.6k/s.

* `gc.freeze()` once serving: everything built at startup moves to the permanent generation
  and is never walked again (it lives as long as the process anyway; the price is that a
  cycle among those objects that later becomes garbage is never collected).
* `gc.set_threshold(GEN0_THRESHOLD, 10, 10)`: the youngest generation is collected every
  10 000 allocations instead of 700, so the older generations (whose collections cost the
  most) run about 14 times less often. Young garbage waits a little longer: a few MB at most.

Only the process owner should change these (they are process-wide), hence an opt-in on
`Daemon` that `run_daemon` turns on; tests and embedding applications keep their own.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["GEN0_THRESHOLD", "tune_gc_for_serving"]

GEN0_THRESHOLD: Final = 10_000


def tune_gc_for_serving() -> None:
    """Freeze what exists now and raise the youngest generation's threshold."""
    gc.collect()  # so that no startup garbage is frozen with the live objects
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
