"""Peer-exchange wire schema and validation (pure; re-exported by `peer_exchange`).

What a peer sends is untrusted: every problem becomes a `PexRemoteError` (for the whole
message) or a `RejectedEntry` (for one entry, whose siblings are still used). Nothing here
reads a clock, does I/O or keeps state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bbnode.ids import Address, IdError, PeerId

__all__ = [
    "DEFAULT_LIMITS",
    "LEARNED_TOPIC",
    "MAX_ADDRESSES_PER_MESSAGE",
    "MAX_ADDRESSES_PER_PEER",
    "MAX_ADDRESS_BYTES",
    "MAX_KNOWN_PEERS",
    "MAX_PEERS_PER_MESSAGE",
    "PEX_SCHEMA_VERSION",
    "UNSPECIFIED_HOSTS",
    "PeerExchangeError",
    "PeerRecord",
    "PexLimits",
    "PexLocalError",
    "PexMessage",
    "PexRemoteError",
    "RejectedEntry",
    "decode_pex",
    "encode_pex",
]

PEX_SCHEMA_VERSION: Final = 1
# AppEvent topic (module "peer_exchange"): one event per newly learned peer, which the daemon
# turns into a dial. Not under "bb.": the engine reserves that prefix for itself.
LEARNED_TOPIC: Final = "peer_exchange.learned"
# Caps. A message larger than these is a peer misbehaving, not a big mesh: 32 peers x 4
# addresses covers a sizeable cluster per round, and rounds repeat every interval.
MAX_PEERS_PER_MESSAGE: Final = 32
MAX_ADDRESSES_PER_PEER: Final = 4
MAX_ADDRESSES_PER_MESSAGE: Final = 128
# Same bound as the envelope's sender addresses (SPEC 3.6).
MAX_ADDRESS_BYTES: Final = 256
# Learned peers kept; past this, new peers are ignored rather than evicting known ones, so a
# flood of fabricated peers cannot push out the mesh a node already has.
MAX_KNOWN_PEERS: Final = 1024
# Wildcard listen hosts: fine to bind, meaningless to dial, so never shared or accepted.
UNSPECIFIED_HOSTS: Final = frozenset({"0.0.0.0", "::"})


class PeerExchangeError(Exception):
    """Base of every error raised by this module."""


class PexLocalError(PeerExchangeError, ValueError):
    """The caller misused the API (bad limits, a malformed own address)."""


class PexRemoteError(PeerExchangeError, ValueError):
    """A peer sent a malformed or self-contradicting peer-exchange message or entry."""


@dataclass(frozen=True, slots=True)
class PexLimits:
    """Caps applied to one inbound message and to the learned table."""

    max_peers_per_message: int = MAX_PEERS_PER_MESSAGE
    """Entries per message; more rejects the whole message."""
    max_addresses_per_peer: int = MAX_ADDRESSES_PER_PEER
    """Addresses per entry (more rejects the entry) and per stored peer (merging stops)."""
    max_addresses_per_message: int = MAX_ADDRESSES_PER_MESSAGE
    """Addresses summed over all entries; more rejects the whole message."""
    max_known_peers: int = MAX_KNOWN_PEERS
    """Learned peers kept in the table."""

    def __post_init__(self) -> None:
        for name in (
            "max_peers_per_message",
            "max_addresses_per_peer",
            "max_addresses_per_message",
            "max_known_peers",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PexLocalError(f"PexLimits.{name} must be an int >= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """One peer and the transport addresses it may be reached at (without `/p2p`)."""

    peer: PeerId
    """The peer the addresses belong to."""
    addresses: tuple[Address, ...]
    """Dialable addresses, `/p2p` stripped; `dial_addresses()` adds it back."""

    def dial_addresses(self) -> tuple[Address, ...]:
        """The addresses ending in `/p2p/<peer>`, ready to dial."""
        return tuple(a.with_peer(self.peer) for a in self.addresses)


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    """An entry of an inbound message that was dropped; its siblings were still used."""

    index: int
    """Position of the entry in the message's `peers` list."""
    error: PexRemoteError
    """What was wrong with it."""


@dataclass(frozen=True, slots=True)
class PexMessage:
    """A decoded inbound message: the usable records and the rejected entries."""

    records: tuple[PeerRecord, ...]
    rejected: tuple[RejectedEntry, ...]


# --- wire schema ---------------------------------------------------------------------------
# {"v": 1, "peers": [{"peer": <PeerId multihash bytes>, "addrs": [<multiaddr bytes>, ...]}]}


def encode_pex(records: Iterable[PeerRecord]) -> dict[str, Any]:
    """The msgpack-able value of one peer-exchange message carrying `records`."""
    return {
        "v": PEX_SCHEMA_VERSION,
        "peers": [
            {"peer": r.peer.to_bytes(), "addrs": [a.to_bytes() for a in r.addresses]}
            for r in records
        ],
    }


DEFAULT_LIMITS: Final = PexLimits()
"""The caps above, as one value."""


def decode_pex(value: object, limits: PexLimits = DEFAULT_LIMITS) -> PexMessage:
    """Validate an inbound message value (as msgpack-decoded by the engine).

    Raises `PexRemoteError` when the message as a whole is unusable (wrong shape or version,
    over a cap). A bad entry (malformed peer id or address, an address whose `/p2p` names a
    different peer, too many addresses, a duplicate peer) becomes a `RejectedEntry`.
    """
    if not isinstance(value, Mapping):
        raise PexRemoteError(f"peer exchange: message must be a map, got {type(value).__name__}")
    version = value.get("v")
    if version != PEX_SCHEMA_VERSION:
        raise PexRemoteError(
            f"peer exchange: unsupported schema version {version!r} (expected {PEX_SCHEMA_VERSION})"
        )
    entries = value.get("peers")
    if not isinstance(entries, list | tuple):
        raise PexRemoteError("peer exchange: 'peers' must be a list")
    if len(entries) > limits.max_peers_per_message:
        raise PexRemoteError(
            f"peer exchange: {len(entries)} peers in one message "
            f"(at most {limits.max_peers_per_message})"
        )
    total = sum(len(e["addrs"]) for e in entries if _has_addr_list(e))
    if total > limits.max_addresses_per_message:
        raise PexRemoteError(
            f"peer exchange: {total} addresses in one message "
            f"(at most {limits.max_addresses_per_message})"
        )
    records: list[PeerRecord] = []
    rejected: list[RejectedEntry] = []
    seen: set[PeerId] = set()
    for index, entry in enumerate(entries):
        try:
            record = _decode_entry(entry, limits)
            if record.peer in seen:
                raise PexRemoteError(f"peer exchange: peer {record.peer} listed twice")
        except PexRemoteError as exc:
            rejected.append(RejectedEntry(index, exc))
            continue
        seen.add(record.peer)
        records.append(record)
    return PexMessage(tuple(records), tuple(rejected))


def _has_addr_list(entry: object) -> bool:
    return isinstance(entry, Mapping) and isinstance(entry.get("addrs"), list | tuple)


def _decode_entry(entry: object, limits: PexLimits) -> PeerRecord:
    if not isinstance(entry, Mapping):
        raise PexRemoteError(f"peer exchange: entry must be a map, got {type(entry).__name__}")
    raw_peer = entry.get("peer")
    if not isinstance(raw_peer, bytes):
        raise PexRemoteError("peer exchange: entry 'peer' must be bytes")
    try:
        peer = PeerId.from_bytes(raw_peer)
    except IdError as exc:
        raise PexRemoteError(f"peer exchange: bad peer id: {exc}") from exc
    raw_addrs = entry.get("addrs")
    if not isinstance(raw_addrs, list | tuple):
        raise PexRemoteError(f"peer exchange: entry for {peer}: 'addrs' must be a list")
    if not raw_addrs:
        raise PexRemoteError(f"peer exchange: entry for {peer} has no addresses")
    if len(raw_addrs) > limits.max_addresses_per_peer:
        raise PexRemoteError(
            f"peer exchange: entry for {peer} has {len(raw_addrs)} addresses "
            f"(at most {limits.max_addresses_per_peer})"
        )
    addresses: list[Address] = []
    for raw in raw_addrs:
        address = _decode_address(peer, raw)
        if address not in addresses:
            addresses.append(address)
    return PeerRecord(peer, tuple(addresses))


def _decode_address(peer: PeerId, raw: object) -> Address:
    if not isinstance(raw, bytes):
        raise PexRemoteError(f"peer exchange: entry for {peer}: address must be bytes")
    if len(raw) > MAX_ADDRESS_BYTES:
        raise PexRemoteError(
            f"peer exchange: entry for {peer}: address of {len(raw)} bytes "
            f"(at most {MAX_ADDRESS_BYTES})"
        )
    try:
        address = Address.from_bytes(raw)
    except IdError as exc:
        raise PexRemoteError(f"peer exchange: entry for {peer}: bad address: {exc}") from exc
    for name, named in address.segments:
        if name == "p2p" and named != peer:
            raise PexRemoteError(
                f"peer exchange: entry for {peer}: address {address} names another peer {named}"
            )
    endpoint = address.tcp_endpoint()
    if endpoint is None:
        raise PexRemoteError(
            f"peer exchange: entry for {peer}: address {address} is not a tcp address"
        )
    if endpoint[0] in UNSPECIFIED_HOSTS or endpoint[1] == 0:
        raise PexRemoteError(f"peer exchange: entry for {peer}: address {address} is not dialable")
    return address.without_peer()
