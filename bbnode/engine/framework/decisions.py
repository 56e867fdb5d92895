"""Outcomes of a peer-policy consultation: `Allow()` or `Deny(reason)`.

Ported from the seed's `Decision` / `BlockReason` enums. The same reasons are surfaced inbound
(the envelope is dropped) and outbound (the send gate fails), so they carry a stable string
`code` for counters, logs and the `PeerBlocked(peer, reason)` step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "ALLOW",
    "DENY_BLOCKLISTED",
    "DENY_NOT_ALLOWLISTED",
    "Allow",
    "BlockReason",
    "Blocklisted",
    "Cooldown",
    "Decision",
    "Deny",
    "LifecycleTransition",
    "NotAllowlisted",
]


@dataclass(frozen=True, slots=True)
class Blocklisted:
    """The peer is on the blocklist (a config entry or a runtime ban still in force)."""

    @property
    def code(self) -> Literal["blocklisted"]:
        """Stable reason string: "blocklisted"."""
        return "blocklisted"


@dataclass(frozen=True, slots=True)
class NotAllowlisted:
    """An allowlist is configured and the peer is not on it."""

    @property
    def code(self) -> Literal["not_allowlisted"]:
        """Stable reason string: "not_allowlisted"."""
        return "not_allowlisted"


@dataclass(frozen=True, slots=True)
class Cooldown:
    """The peer is in failure-driven backoff; outbound sends wait until `retry_ns`."""

    retry_ns: int
    """Clock value (ns) from which the peer is eligible again (the backoff's next_retry_ns)."""

    @property
    def code(self) -> Literal["cooldown"]:
        """Stable reason string: "cooldown"."""
        return "cooldown"


BlockReason = Blocklisted | NotAllowlisted | Cooldown
"""Why a peer cannot receive (or send) an envelope."""


@dataclass(frozen=True, slots=True)
class Allow:
    """Delivery / send is permitted."""


@dataclass(frozen=True, slots=True)
class Deny:
    """Delivery / send is refused."""

    reason: BlockReason
    """Why: `Blocklisted()`, `NotAllowlisted()` or `Cooldown(retry_ns)`."""


Decision = Allow | Deny
"""The answer of `PeerGovernor.check_inbound` / `check_outbound`."""

# The hot path returns these shared instances instead of allocating a decision per envelope;
# they are frozen, so sharing is safe and equality with fresh instances still holds.
ALLOW: Final = Allow()
DENY_BLOCKLISTED: Final = Deny(Blocklisted())
DENY_NOT_ALLOWLISTED: Final = Deny(NotAllowlisted())


class LifecycleTransition(enum.Enum):
    """Side effect of recording a success or failure; the engine turns it into a step."""

    NONE = "none"
    """No observable change."""
    WENT_DOWN = "went_down"
    """The failure streak just reached the threshold (surfaced as `PeerDown`)."""
    CAME_UP = "came_up"
    """A success ended a streak that had marked the peer down (surfaced as `PeerUp`)."""
