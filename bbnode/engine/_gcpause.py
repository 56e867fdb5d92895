"""Pause Python's cyclic garbage collector around bulk snapshot work.

Capturing, decoding or restoring a snapshot of a node that knows 100 000 peers allocates
several hundred thousand small containers (rows, address lists) in one go. Every 700
allocations the cyclic collector runs, and its older generations walk everything built so
far, which made those operations 3-5 times slower than the work itself (even a plain
`msgpack.unpackb` of such a snapshot spends two thirds of its time in the collector). The
structures built are acyclic, so nothing is lost by deferring collection until the work ends.

Deferring alone is not enough: everything allocated meanwhile waits in the youngest
generation, and the first collection after re-enabling walks all of it (about 30 ms for
300 000 objects), then the middle generation walks it again. The objects that survive bulk
snapshot work are the node's long-lived tables, which the collector would promote to the
oldest generation anyway; `promote=True` does that directly (`gc.freeze()` then
`gc.unfreeze()`: two list splices, no walk). It is skipped when the process froze objects
itself (`gc.get_freeze_count()`), so a host's own `gc.freeze()` is never undone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused(promote: bool = False) -> Iterator[None]:
    """Disable the cyclic collector for the block (re-enabled after, if it was enabled).

    With `promote`, objects still alive when the block ends go straight to the oldest
    generation (see the module docstring); use it where the block builds long-lived state.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if promote and gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
