"""Pause Python's cyclic garbage collector around bulk snapshot work.

Capturing, decoding or restoring a snapshot of a node that knows 100 000 peers allocates
several hundred thousand small containers (rows, lists, entries) in one go. Every 700
allocations the cyclic collector runs, and its older generations walk everything built so
far, which made those operations 3-5 times slower than the work itself (msgpack's `unpackb`
pauses the collector for the same reason). The structures built are acyclic, so nothing is
lost by deferring collection until the bulk work ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block (re-enabled after, if it was enabled)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
