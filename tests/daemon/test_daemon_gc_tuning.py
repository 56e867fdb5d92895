"""`bbnode run` tunes the cyclic GC for serving once the daemon is up (`gc_tuning`)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from bbnode.daemon import supervisor
from bbnode.daemon.clock import PerfCounterClock
from bbnode.daemon.gc_tuning import GEN0_THRESHOLD, tune_gc_for_serving
from bbnode.daemon.supervisor import Daemon, run_daemon
from tests.daemon._inprocess import inprocess_config


@pytest.fixture
def gc_state() -> Iterator[None]:
    """Put the process's GC settings back as they were (they are process-wide)."""
    threshold = gc.get_threshold()
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_tuning_freezes_what_exists_and_raises_the_first_threshold(gc_state: None) -> None:
    gc.unfreeze()
    survivor = [object()]
    tune_gc_for_serving()
    assert gc.get_freeze_count() > 0
    assert all(o is not survivor for o in gc.get_objects())  # frozen: never walked again
    assert gc.get_threshold()[0] == GEN0_THRESHOLD


def test_tuning_collects_startup_garbage_before_freezing_it(gc_state: None) -> None:
    gc.unfreeze()
    gc.disable()  # only the tuning may collect it
    garbage = _Cycle()
    ref = weakref.ref(garbage)
    del garbage  # unreachable now, but a cycle: only the cyclic collector frees it
    assert ref() is not None
    tune_gc_for_serving()
    assert ref() is None  # collected, not frozen forever


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


async def test_a_daemon_asked_to_tune_the_gc_does_so_once_serving(
    tmp_path: Path, gc_state: None
) -> None:
    assert await _frozen_once_ready(tmp_path, tune_gc=True) > 0
    assert gc.get_threshold()[0] == GEN0_THRESHOLD


async def test_a_daemon_leaves_the_gc_alone_by_default(tmp_path: Path, gc_state: None) -> None:
    before = gc.get_threshold()
    assert await _frozen_once_ready(tmp_path, tune_gc=False) == 0
    assert gc.get_threshold() == before


def test_bbnode_run_serves_a_daemon_that_tunes_the_gc_on_the_perf_counter_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = inprocess_config(tmp_path / "state")
    served: list[Daemon] = []
    clocks: list[object] = []

    def run(serve: Callable[[], Any], *, clock: object = None) -> int:
        daemon = getattr(serve, "__self__", None)
        assert isinstance(daemon, Daemon)
        assert serve == daemon.serve
        served.append(daemon)
        clocks.append(clock)
        return 0

    # Neither configures this process's logging nor serves: only the Daemon built matters.
    monkeypatch.setattr(supervisor, "configure_logging", lambda level, fmt: None)
    monkeypatch.setattr(supervisor.trio, "run", run)
    assert run_daemon(config) == 0
    assert len(served) == 1
    assert served[0].config is config
    assert served[0].tune_gc is True
    assert [type(clock) for clock in clocks] == [PerfCounterClock]
