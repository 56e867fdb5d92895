"""Value parsers for `bbnode.config`: raw TOML value in, typed value (or a problem) out.

Each parser takes `(raw, key_path, problems)` and returns the typed value, or `INVALID` after
recording exactly one problem naming what is wrong. Parsers never raise for bad input, so a
config with ten mistakes is reported as ten lines in one run.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bbnode.ids import Address, IdError, PeerId

__all__ = [
    "INVALID",
    "ConfigProblem",
    "Parser",
    "Problems",
    "address_list",
    "boolean",
    "choice",
    "cidr_list",
    "host_port",
    "integer",
    "path",
    "peer_id_list",
    "seconds",
    "toml_type_name",
]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config file; `str()` is the line shown to the operator."""

    file: str
    """The file as the operator named it (or `<string>` / a caller-chosen source name)."""
    key_path: str
    """Dotted key with list indexes, e.g. `peers.block[2]`; empty for file-level problems."""
    message: str
    """What is wrong, with the offending value, and a suggestion where one is known."""

    def __str__(self) -> str:
        if not self.key_path:
            return f"{self.file}: {self.message}"
        return f"{self.file}: {self.key_path}: {self.message}"


class Problems:
    """Collects every problem found while parsing one source."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[ConfigProblem] = []

    def add(self, key_path: str, message: str) -> None:
        """Record a problem at `key_path`."""
        self.items.append(ConfigProblem(self.file, key_path, message))


class _Invalid:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()
"""Returned by a parser that recorded a problem; the field keeps its default."""

Parser = Callable[[object, str, Problems], Any]

_TOML_TYPES: Final[Sequence[tuple[type, str]]] = (
    (bool, "boolean"),  # before int: bool is an int subclass in Python, not in TOML
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (list, "array"),
    (dict, "table"),
    (datetime.datetime, "datetime"),
    (datetime.date, "date"),
    (datetime.time, "time"),
)


def toml_type_name(value: object) -> str:
    """The TOML name of a parsed value's type ("integer", "array", ...)."""
    for cls, name in _TOML_TYPES:
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _shown(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong_type(raw: object, key: str, problems: Problems, expected: str) -> _Invalid:
    problems.add(key, f"expected {expected}, got {toml_type_name(raw)} {_shown(raw)}")
    return INVALID


def boolean(raw: object, key: str, problems: Problems) -> bool | _Invalid:
    """`true` / `false`."""
    if isinstance(raw, bool):
        return raw
    return _wrong_type(raw, key, problems, "a boolean (true or false)")


def integer(minimum: int, maximum: int | None = None, unit: str = "") -> Parser:
    """A whole number in `[minimum, maximum]`."""
    suffix = f" {unit}" if unit else ""

    def parse(raw: object, key: str, problems: Problems) -> int | _Invalid:
        if isinstance(raw, bool) or not isinstance(raw, int):
            return _wrong_type(raw, key, problems, "an integer")
        if raw < minimum:
            problems.add(key, f"must be at least {minimum}{suffix}, got {raw}")
            return INVALID
        if maximum is not None and raw > maximum:
            problems.add(key, f"must be at most {maximum}{suffix}, got {raw}")
            return INVALID
        return raw

    return parse


def seconds(raw: object, key: str, problems: Problems) -> float | _Invalid:
    """A positive, finite duration in seconds (integer or float)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return _wrong_type(raw, key, problems, "a number of seconds")
    value = float(raw)
    if not math.isfinite(value):
        problems.add(key, f"must be a finite number of seconds, got {raw}")
        return INVALID
    if value <= 0:
        problems.add(key, f"must be greater than 0 seconds, got {raw}")
        return INVALID
    return value


def choice(options: Sequence[str]) -> Parser:
    """One string out of `options` (case-sensitive, as TOML keys and values are)."""

    def parse(raw: object, key: str, problems: Problems) -> str | _Invalid:
        if not isinstance(raw, str):
            return _wrong_type(raw, key, problems, "a string")
        if raw not in options:
            problems.add(key, f"must be one of {', '.join(options)}; got {raw!r}")
            return INVALID
        return raw

    return parse


def path(raw: object, key: str, problems: Problems) -> Path | _Invalid:
    """A non-empty path string (resolved later, against its documented base)."""
    if not isinstance(raw, str):
        return _wrong_type(raw, key, problems, "a path string")
    if not raw or "\0" in raw:
        problems.add(key, "must be a non-empty path without NUL characters")
        return INVALID
    return Path(raw).expanduser()


def _list_of(expected: str, item: Callable[[str, str, Problems], Any]) -> Parser:
    def parse(raw: object, key: str, problems: Problems) -> tuple[Any, ...] | _Invalid:
        if not isinstance(raw, list):
            return _wrong_type(raw, key, problems, f"an array of {expected}")
        values: list[Any] = []
        ok = True
        for index, element in enumerate(raw):
            element_key = f"{key}[{index}]"
            if not isinstance(element, str):
                _wrong_type(element, element_key, problems, f"a {expected[:-1]}")
                ok = False
                continue
            value = item(element, element_key, problems)
            if value is INVALID:
                ok = False
            else:
                values.append(value)
        return tuple(values) if ok else INVALID

    return parse


def _peer_id(text: str, key: str, problems: Problems) -> PeerId | _Invalid:
    try:
        return PeerId.from_string(text)
    except IdError as exc:
        problems.add(key, f"not a valid peer id: {exc}")
        return INVALID


peer_id_list: Final = _list_of("peer id strings", _peer_id)
"""An array of base58 PeerIds ("12D3KooW...")."""


def address_list(*, allow_peer: bool) -> Parser:
    """An array of TCP multiaddrs; with `allow_peer=False`, `/p2p` is refused."""

    def item(text: str, key: str, problems: Problems) -> Address | _Invalid:
        try:
            address = Address.from_string(text)
        except IdError as exc:
            problems.add(key, f"not a valid multiaddr: {exc} (got {_shown(text)})")
            return INVALID
        if address.tcp_endpoint() is None:
            problems.add(key, f"needs an ip4/ip6/dns host and a tcp port, got {text!r}")
            return INVALID
        if not allow_peer and address.peer_id is not None:
            problems.add(key, f"a listen address must not name a peer (/p2p); got {text!r}")
            return INVALID
        return address

    return _list_of("multiaddr strings", item)


def _cidr(
    text: str, key: str, problems: Problems
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | _Invalid:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        problems.add(key, f"not a valid CIDR network: {exc}")
        return INVALID


cidr_list: Final = _list_of("CIDR strings", _cidr)
"""An array of networks ("10.0.0.0/8", "fd00::/8"; a bare address is a /32 or /128)."""


def host_port(raw: object, key: str, problems: Problems) -> tuple[str, int] | _Invalid | None:
    """`"host:port"` or `"[v6]:port"`; the empty string means off (None)."""
    if not isinstance(raw, str):
        return _wrong_type(raw, key, problems, 'a "host:port" string')
    if raw == "":
        return None
    host, sep, port_text = raw.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        problems.add(key, f'expected "host:port" with a port 0-65535, got {raw!r}')
        return INVALID
    return host, int(port_text)
