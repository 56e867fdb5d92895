"""`Counters`: named monotonic event counters (upstream `Engine.counters`).

Counts only go up (they are u64 upstream and exported as Prometheus counters by the daemon),
so a negative delta is a caller bug and is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bbnode.engine.framework._check import state_int, state_mapping, state_str
from bbnode.engine.framework.errors import FrameworkUsageError

__all__ = ["Counters"]


class Counters:
    """A `name -> int` map where unknown names read as 0."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        """All counters at 0."""
        self._values: dict[str, int] = {}

    def incr(self, name: str, delta: int = 1) -> int:
        """Add `delta` (>= 0) to counter `name`; return its new value."""
        if not isinstance(name, str) or not name:
            raise FrameworkUsageError(f"counter name must be a non-empty str, got {name!r}")
        if isinstance(delta, bool) or not isinstance(delta, int) or delta < 0:
            raise FrameworkUsageError(f"counter {name!r}: delta must be an int >= 0, got {delta!r}")
        value = self._values.get(name, 0) + delta
        self._values[name] = value
        return value

    def get(self, name: str) -> int:
        """Counter `name`'s value (0 if never incremented)."""
        return self._values.get(name, 0)

    def as_dict(self) -> dict[str, int]:
        """A copy of every counter, sorted by name."""
        return dict(sorted(self._values.items()))

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def export_state(self) -> dict[str, int]:
        """Same as `as_dict()`: the upstream `FrameworkSnapshot.counters` map."""
        return self.as_dict()

    def restore_state(self, values: Mapping[str, Any]) -> None:
        """Replace every counter with `values`; nothing changes if an entry is bad."""
        where = "counters"
        fresh: dict[str, int] = {}
        for key, value in state_mapping(where, values).items():
            name = state_str(f"{where} key", key)
            fresh[name] = state_int(f"{where}[{name!r}]", value)
        self._values = fresh
