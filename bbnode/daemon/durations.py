"""Parse human durations such as ``90``, ``30s``, ``15m``, ``1h``, ``2d`` or ``1h30m``."""

from __future__ import annotations

import re

__all__ = ["parse_duration_s"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration_s(text: str) -> float:
    """Return the duration in seconds; a bare number means seconds.

    Raises ``ValueError`` naming the text when it is empty, negative, zero or malformed.
    """
    raw = text.strip().lower()
    if not raw:
        raise ValueError("empty duration")
    try:
        value = float(raw)
    except ValueError:
        pos = 0
        value = 0.0
        for match in _PART.finditer(raw):
            if match.start() != pos:
                break
            value += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or pos == 0:
            raise ValueError(
                f"not a duration: {text!r} (use e.g. 30s, 15m, 1h, 2d, 1h30m)"
            ) from None
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"duration must be positive and finite: {text!r}")
    return value
