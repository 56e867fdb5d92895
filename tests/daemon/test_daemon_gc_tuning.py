"""`bbnode run` tunes the cyclic GC for serving once the daemon is up (`gc_tuning`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from bbnode.daemon.gc_tuning import GEN0_THRESHOLD, tune_gc_for_serving
from bbnode.daemon.supervisor import Daemon
from tests.daemon._inprocess import inprocess_config


@pytest.fixture
def gc_state() -> Iterator[None]:
    """Put the process's GC settings back as they were (they are process-wide)."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuning_freezes_what_exists_and_raises_the_first_threshold(gc_state: None) -> None:
    gc.unfreeze()
    survivor = [object()]
    tune_gc_for_serving()
    assert gc.get_freeze_count() > 0
    assert all(o is not survivor for o in gc.get_objects())  # frozen: never walked again
    assert gc.get_threshold()[0] == GEN0_THRESHOLD


async def _frozen_once_ready(tmp_path: Path, tune_gc: bool) -> int:
    gc.unfreeze()
    daemon = Daemon(inprocess_config(tmp_path / "state"), tune_gc=tune_gc)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        with trio.fail_after(30):
            await daemon.ready.wait()
        frozen = gc.get_freeze_count()
        daemon.request_stop()
    return frozen


async def test_a_daemon_asked_to_tunes_the_gc_once_serving(tmp_path: Path, gc_state: None) -> None:
    assert await _frozen_once_ready(tmp_path, tune_gc=True) > 0
    assert gc.get_threshold()[0] == GEN0_THRESHOLD


async def test_a_daemon_leaves_the_gc_alone_by_default(tmp_path: Path, gc_state: None) -> None:
    before = gc.get_threshold()
    assert await _frozen_once_ready(tmp_path, tune_gc=False) == 0
    assert gc.get_threshold() == before
