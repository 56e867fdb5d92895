"""Logging setup for the daemon and CLI: structlog, JSON lines or a readable console.

Only the daemon and the CLI log; the sans-IO cores (``bbnode.engine``, ``bbnode.wire``)
return steps and events which the daemon turns into log lines. Every line carries the event
name plus whatever context the caller bound (``peer``, ``address``, ``reason``, ...).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "LogFormat", "configure_logging", "get_logger"]

LogFormat = Literal["json", "console", "auto"]

LOG_FORMATS: tuple[str, ...] = ("json", "console", "auto")
LOG_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _resolve_format(fmt: str, stream: TextIO) -> str:
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; expected one of {', '.join(LOG_FORMATS)}")
    if fmt != "auto":
        return fmt
    # JSON when nobody is watching (journald, docker, pipes); colours only for humans.
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog globally.

    ``level`` is one of :data:`LOG_LEVELS`; ``fmt`` is ``json``, ``console`` or ``auto``
    (JSON when ``stream`` is not a TTY). Raises ``ValueError`` naming a bad level or format.
    May be called again (e.g. after a config reload) to change level or format.
    """
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LOG_LEVELS)}")
    out = stream if stream is not None else sys.stdout
    resolved = _resolve_format(fmt, out)
    renderer: Any
    if resolved == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _stringify_values,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LOG_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def _stringify_values(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Render ids and addresses as their text form so JSON lines never fail to encode."""
    for key, value in list(event_dict.items()):
        if value is None or isinstance(value, str | int | float | bool | list | dict):
            continue
        event_dict[key] = str(value)
    return event_dict


def get_logger(name: str, **context: Any) -> Any:
    """Return a structlog logger bound to ``component=name`` plus ``context``."""
    return structlog.get_logger(component=name, **context)
