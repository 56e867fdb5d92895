"""Argument and restore-state validation shared by the primitives (private).

Kept out of the hot paths: `check_inbound`, `seen` and friends trust their arguments' types
(they are engine-internal calls); constructors, configuration setters and restores validate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from bbnode.engine.framework.errors import FrameworkStateError, FrameworkUsageError
from bbnode.ids import IdError, PeerId

__all__ = [
    "state_bool",
    "state_bytes",
    "state_field",
    "state_int",
    "state_list",
    "state_mapping",
    "state_opt_int",
    "state_peer",
    "state_row",
    "state_rows",
    "state_str",
    "usage_int",
]


def usage_int(name: str, value: object, minimum: int = 0) -> int:
    """Return `value` if it is an int (not a bool) >= `minimum`, else raise FrameworkUsageError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameworkUsageError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise FrameworkUsageError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bad(where: str, problem: str) -> NoReturn:
    raise FrameworkStateError(f"{where}: {problem}")


def state_int(where: str, value: object, minimum: int = 0) -> int:
    """An int (not a bool) >= `minimum` from restore data."""
    if isinstance(value, bool) or not isinstance(value, int):
        _bad(where, f"expected an int, got {type(value).__name__}")
    if value < minimum:
        _bad(where, f"must be >= {minimum}, got {value}")
    return value


def state_opt_int(where: str, value: object, minimum: int = 0) -> int | None:
    """An int >= `minimum` or None from restore data."""
    return None if value is None else state_int(where, value, minimum)


def state_bool(where: str, value: object) -> bool:
    """A bool from restore data."""
    if not isinstance(value, bool):
        _bad(where, f"expected a bool, got {type(value).__name__}")
    return value


def state_bytes(where: str, value: object) -> bytes:
    """Bytes from restore data (msgpack may hand back bytes or bytearray)."""
    if not isinstance(value, bytes | bytearray):
        _bad(where, f"expected bytes, got {type(value).__name__}")
    return bytes(value)


def state_str(where: str, value: object) -> str:
    """A str from restore data."""
    if not isinstance(value, str):
        _bad(where, f"expected a str, got {type(value).__name__}")
    return value


def state_peer(where: str, value: object) -> PeerId:
    """A PeerId from its exported multihash bytes."""
    raw = state_bytes(where, value)
    try:
        return PeerId.from_bytes(raw)
    except IdError as exc:
        raise FrameworkStateError(f"{where}: not a peer id ({exc})") from exc


def state_list(where: str, value: object) -> list[Any]:
    """A list (or tuple) from restore data."""
    if not isinstance(value, list | tuple):
        _bad(where, f"expected a list, got {type(value).__name__}")
    return list(value)


def state_rows(where: str, value: object) -> Sequence[Any]:
    """A list or tuple of rows from restore data, as it is (a restore reads it, never changes
    it, so 100 000 rows are not copied just to check their container)."""
    if not isinstance(value, list | tuple):
        _bad(where, f"expected a list, got {type(value).__name__}")
    return value


def state_row(where: str, value: object, width: int) -> list[Any]:
    """A list of exactly `width` items from restore data."""
    row = state_list(where, value)
    if len(row) != width:
        _bad(where, f"expected {width} items, got {len(row)}")
    return row


def state_mapping(where: str, value: object) -> Mapping[Any, Any]:
    """A mapping from restore data."""
    if not isinstance(value, Mapping):
        _bad(where, f"expected a map, got {type(value).__name__}")
    return value


def state_field(where: str, state: Mapping[Any, Any], key: str) -> object:
    """`state[key]`, or a FrameworkStateError naming the missing key."""
    if key not in state:
        _bad(where, f"missing key {key!r}")
    return state[key]
