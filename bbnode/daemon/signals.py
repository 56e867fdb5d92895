"""Signal handling: SIGTERM/SIGINT request a graceful stop, a second one exits at once;
SIGHUP requests a config reload.

The watcher only *requests*: it calls the supervisor's callbacks, which decide what to do.
The hard exit on a second stop signal uses ``os._exit`` because a graceful stop that is
itself stuck must not be able to block an operator's second Ctrl-C.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import structlog
import trio

__all__ = ["HARD_EXIT_CODE", "watch_signals"]

log = structlog.get_logger(component="signals")

#: Exit code after a second stop signal: 128 + SIGTERM, as shells report a signal death.
HARD_EXIT_CODE = 128 + signal.SIGTERM


async def watch_signals(
    on_stop: Callable[[str], None],
    on_reload: Callable[[], None],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Deliver signals to the callbacks until cancelled; started() once handlers are set."""
    stopping = False
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as receiver:
        task_status.started()
        async for signum in receiver:
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                log.info("signal_reload", signal=name)
                on_reload()
                continue
            if stopping:
                log.warning("signal_hard_exit", signal=name)
                os._exit(HARD_EXIT_CODE)
            stopping = True
            log.info("signal_stop", signal=name)
            on_stop(name)
