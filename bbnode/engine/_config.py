"""`NodeConfig`: the engine's own small, frozen configuration (aioquic `QuicConfiguration`).

Every field has a documented default and its unit in its name. The daemon builds one from
the TOML file (`bbnode.config`); tests build them directly. Validation happens in
`__post_init__` and raises `InvalidConfig` naming the field.

Defaults cite upstream where upstream fixes them: failure threshold 5 and backoff 10 ms ..
60 s (`bb-runtime` `PeerGovernor` / `BackoffTable`), outbound queue 10 000, dedup window 8192,
address book 16 384 peers (SPEC §3.5).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from typing import Any, Final

from bbnode.engine.envelope import EnvelopeLimits
from bbnode.engine.errors import InvalidConfig
from bbnode.ids import IdError, PeerId

__all__ = ["NodeConfig"]

_U64: Final = (1 << 64) - 1


def _os_seed() -> int:
    # SystemRandom reads the OS entropy source without this module importing `os`.
    return random.SystemRandom().getrandbits(64)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Engine configuration.

    - `rng_seed`: seed of the engine's one `random.Random` (default: 64 bits from the OS).
    - `failure_threshold`: consecutive failures before `PeerDown` (clamped to >= 1).
    - `backoff_base_ns`, `backoff_max_ns`, `backoff_jitter`: BackoffTable parameters.
    - `cycle_op_budget`: ops one `poll()` may run before `CycleBudgetExceeded`.
    - `max_outbound_queue`: outbound queue capacity (drop oldest) and the per-peer bound of
      envelopes held during cooldown.
    - `ingress_capacity`: events the ingress queue holds before `IngressFull`.
    - `max_inflight_bytes`: cumulative bytes queued in ingress before `InflightBudgetExceeded`.
    - `max_input_bytes`: per-item cap of `invoke` inputs / `deliver_event` values / results.
    - `envelope_limits`: caps enforced when decoding inbound envelopes.
    - `default_request_ttl_ns`: request deadline when `ctx.send(request=True)` gives none.
    - `dedup_window`: keys remembered by `ctx.seen` (FIFO eviction).
    - `address_book_cap`: peers the address book holds.
    - `max_fills_per_envelope`: one-way sends to one peer in one cycle are merged into
      envelopes of up to this many fills (1 = one envelope per send; see `_coalesce`). At most
      `envelope_limits.max_fills`, which peers with the same limits accept.
    - `blocklist` / `allowlist`: initial policy (`source="config"` blocks; None = open).
    """

    rng_seed: int = field(default_factory=_os_seed)
    failure_threshold: int = 5
    backoff_base_ns: int = 10_000_000
    backoff_max_ns: int = 60_000_000_000
    backoff_jitter: bool = False
    cycle_op_budget: int = 10_000
    max_outbound_queue: int = 10_000
    ingress_capacity: int = 65_536
    max_inflight_bytes: int = 256 * 1024 * 1024
    max_input_bytes: int = 4 * 1024 * 1024
    envelope_limits: EnvelopeLimits = field(default_factory=EnvelopeLimits)
    default_request_ttl_ns: int = 10_000_000_000
    dedup_window: int = 8192
    address_book_cap: int = 16_384
    max_fills_per_envelope: int = 256
    blocklist: frozenset[PeerId] = frozenset()
    allowlist: frozenset[PeerId] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rng_seed, int) or not 0 <= self.rng_seed <= _U64:
            raise InvalidConfig(f"rng_seed: {self.rng_seed!r} is not a u64")
        positive = (
            "failure_threshold",
            "backoff_base_ns",
            "backoff_max_ns",
            "cycle_op_budget",
            "max_outbound_queue",
            "ingress_capacity",
            "max_inflight_bytes",
            "max_input_bytes",
            "default_request_ttl_ns",
            "dedup_window",
            "address_book_cap",
            "max_fills_per_envelope",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfig(f"{name}: {value!r} must be a positive int")
        if self.backoff_max_ns < self.backoff_base_ns:
            raise InvalidConfig(
                f"backoff_max_ns: {self.backoff_max_ns} is below backoff_base_ns "
                f"{self.backoff_base_ns}"
            )
        if not isinstance(self.backoff_jitter, bool):
            raise InvalidConfig(f"backoff_jitter: {self.backoff_jitter!r} must be a bool")
        if not isinstance(self.envelope_limits, EnvelopeLimits):
            raise InvalidConfig("envelope_limits: must be an EnvelopeLimits")
        if self.max_fills_per_envelope > self.envelope_limits.max_fills:
            raise InvalidConfig(
                f"max_fills_per_envelope: {self.max_fills_per_envelope} is above "
                f"envelope_limits.max_fills ({self.envelope_limits.max_fills})"
            )
        _check_peers("blocklist", self.blocklist)
        if self.allowlist is not None:
            _check_peers("allowlist", self.allowlist)

    # snapshot form -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """msgpack-able form (stored in `NodeSnapshot.config` for inspection)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "envelope_limits":
                value = {lf.name: getattr(value, lf.name) for lf in fields(value) if lf.init}
            elif f.name in ("blocklist", "allowlist") and value is not None:
                value = sorted(p.to_bytes() for p in value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeConfig:
        """Inverse of `to_dict`; unknown keys are ignored, missing keys take defaults."""
        if not isinstance(data, dict):
            raise InvalidConfig(f"config: expected a map, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        try:
            if "envelope_limits" in kwargs:
                kwargs["envelope_limits"] = EnvelopeLimits(**kwargs["envelope_limits"])
            for name in ("blocklist", "allowlist"):
                if kwargs.get(name) is not None:
                    kwargs[name] = frozenset(PeerId.from_bytes(b) for b in kwargs[name])
        except (TypeError, ValueError, IdError) as exc:
            raise InvalidConfig(f"config: {exc}") from None
        return cls(**kwargs)


def _check_peers(name: str, peers: object) -> None:
    if not isinstance(peers, frozenset) or not all(isinstance(p, PeerId) for p in peers):
        raise InvalidConfig(f"{name}: must be a frozenset of PeerId")
