"""Build already-validated envelope values without the frozen-dataclass `__init__` cost.

A frozen dataclass `__init__` sets every field through `object.__setattr__(self, name, v)`;
for the decoder, which builds one `WireEnvelope`, one `DecodedEnvelope` and a `SlotFill` per
fill for every received envelope, that was about half of the decode time. These builders fill
the slots through the classes' own slot descriptors instead (the same storage, no name lookup).
They skip nothing the constructors do: the value types have no `__post_init__`. Use them only
with values the decoder has already checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from bbnode.engine._envelope_types import (
    Correlation,
    CorrelationKind,
    DecodedEnvelope,
    FillError,
    SlotFill,
    WireEnvelope,
)

__all__ = ["build_correlation", "build_decoded", "build_envelope", "build_fill"]

_new: Final = object.__new__


def _setters(cls: type, *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    assert tuple(fields) == names, f"{cls.__name__} fields changed: update _envelope_build"
    return tuple(cls.__dict__[name].__set__ for name in names)


_FILL: Final = _setters(SlotFill, "dest_suffix", "payload", "trigger_only", "type_hash")
_ENV: Final = _setters(
    WireEnvelope,
    "fills",
    "dest_peer_addresses",
    "correlation",
    "remaining_deadline_ns",
    "edge_rtt_reports",
    "src_peer_addresses",
    "schema_version",
)
_DEC: Final = _setters(DecodedEnvelope, "envelope", "fill_errors")
_CORR: Final = _setters(Correlation, "kind", "wire_req_id")


def build_fill(
    dest_suffix: bytes,
    payload: bytes,
    trigger_only: bool,
    type_hash: int,
    _s: tuple[Callable[[Any, Any], None], ...] = _FILL,
) -> SlotFill:
    fill: SlotFill = _new(SlotFill)
    _s[0](fill, dest_suffix)
    _s[1](fill, payload)
    _s[2](fill, trigger_only)
    _s[3](fill, type_hash)
    return fill


def build_envelope(
    fills: tuple[SlotFill, ...],
    dest_peer_addresses: tuple[bytes, ...],
    correlation: Correlation,
    remaining_deadline_ns: int | None,
    edge_rtt_reports: tuple[tuple[bytes, int], ...],
    src_peer_addresses: tuple[bytes, ...],
    schema_version: int,
    _s: tuple[Callable[[Any, Any], None], ...] = _ENV,
) -> WireEnvelope:
    env: WireEnvelope = _new(WireEnvelope)
    _s[0](env, fills)
    _s[1](env, dest_peer_addresses)
    _s[2](env, correlation)
    _s[3](env, remaining_deadline_ns)
    _s[4](env, edge_rtt_reports)
    _s[5](env, src_peer_addresses)
    _s[6](env, schema_version)
    return env


def build_decoded(
    envelope: WireEnvelope,
    fill_errors: tuple[FillError, ...],
    _s: tuple[Callable[[Any, Any], None], ...] = _DEC,
) -> DecodedEnvelope:
    decoded: DecodedEnvelope = _new(DecodedEnvelope)
    _s[0](decoded, envelope)
    _s[1](decoded, fill_errors)
    return decoded


def build_correlation(
    kind: CorrelationKind,
    wire_req_id: int,
    _s: tuple[Callable[[Any, Any], None], ...] = _CORR,
) -> Correlation:
    corr: Correlation = _new(Correlation)
    _s[0](corr, kind)
    _s[1](corr, wire_req_id)
    return corr
