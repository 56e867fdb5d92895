"""Peer exchange: nodes share the addresses of peers they may talk to, so one bootstrap peer
is enough to learn the whole mesh.

`PexTable` (the learned peers, pure) and the `PeerExchange` engine component live here; the
wire schema and its validation are in `_pex_wire` and re-exported. What a peer sends is
untrusted: a bad message or entry is counted and dropped, never stored. A blocked peer is never
stored, shared or sent to. The component runs inside the sans-IO engine: no clock, no I/O.

Integration contract (the daemon):

- construct `PeerExchange(node_peer_id, self_addresses=<the node's dialable listen
  addresses>, interval_ns=<protocols.peer_exchange.interval_s>)` and install it;
- at every start (fresh or restored), after adding bootstrap peers with `node.add_peer(...)`,
  call `node.invoke("peer_exchange", "start", {})`: it re-arms the round timer with the
  configured interval and runs the first round at once;
- on `AppEvent(module_name="peer_exchange", topic="peer_exchange.learned")` the value is (msgpack)
  ``{"peer": "<base58 peer id>", "addresses": ["/ip4/.../tcp/N/p2p/<peer>", ...]}``:
  dial that peer if it is not connected (the addresses are in the address book already).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from bbnode.engine.component import Component, Immediate
from bbnode.ids import Address, PeerId
from bbnode.protocols._pex_wire import (
    DEFAULT_LIMITS,
    LEARNED_TOPIC,
    MAX_ADDRESS_BYTES,
    MAX_ADDRESSES_PER_MESSAGE,
    MAX_ADDRESSES_PER_PEER,
    MAX_KNOWN_PEERS,
    MAX_PEERS_PER_MESSAGE,
    PEX_SCHEMA_VERSION,
    UNSPECIFIED_HOSTS,
    PeerExchangeError,
    PeerRecord,
    PexLimits,
    PexLocalError,
    PexMessage,
    PexRemoteError,
    RejectedEntry,
    _decode_entry,
    decode_pex,
    encode_pex,
)

if TYPE_CHECKING:
    from bbnode.engine._context import OpContext

__all__ = [
    "DEFAULT_INTERVAL_NS",
    "DEFAULT_LIMITS",
    "LEARNED_TOPIC",
    "MAX_ADDRESSES_PER_MESSAGE",
    "MAX_ADDRESSES_PER_PEER",
    "MAX_ADDRESS_BYTES",
    "MAX_KNOWN_PEERS",
    "MAX_PEERS_PER_MESSAGE",
    "PEX_SCHEMA_VERSION",
    "PeerExchange",
    "PeerExchangeError",
    "PeerRecord",
    "PexLimits",
    "PexLocalError",
    "PexMessage",
    "PexRemoteError",
    "PexTable",
    "RejectedEntry",
    "decode_pex",
    "encode_pex",
]

# SPEC 7: [protocols.peer_exchange] interval_s = 30.
DEFAULT_INTERVAL_NS: Final = 30_000_000_000

IsBlocked = Callable[[PeerId], bool]


class PexTable:
    """The peers a node has learned, with their addresses, and what it shares in turn.

    `learn()` takes decoded records and returns the records that were new or gained an
    address (those the host should dial); `share()` picks what to send to one recipient.
    Blocked peers are neither stored nor shared, and `drop()` forgets a peer at once (used
    when a peer is blocked at runtime). Sharing rotates through the table so that a table
    larger than one message is still fully shared over a few rounds.
    """

    def __init__(
        self,
        self_peer: PeerId,
        self_addresses: Iterable[Address] = (),
        limits: PexLimits = DEFAULT_LIMITS,
    ) -> None:
        self.self_peer = self_peer
        self.limits = limits
        own: list[Address] = []
        for address in self_addresses:
            if address.peer_id not in (None, self_peer):
                raise PexLocalError(f"own address {address} names another peer")
            endpoint = address.tcp_endpoint()
            if endpoint is None:
                raise PexLocalError(f"own address {address} is not a tcp address")
            if endpoint[0] in UNSPECIFIED_HOSTS or endpoint[1] == 0:
                continue  # a wildcard listen address: peers learn our real one from dials
            if address.without_peer() not in own:
                own.append(address.without_peer())
        self.self_addresses: tuple[Address, ...] = tuple(own[: limits.max_addresses_per_peer])
        self._known: dict[PeerId, tuple[Address, ...]] = {}
        self._cursor = 0

    def __len__(self) -> int:
        return len(self._known)

    def __contains__(self, peer: object) -> bool:
        return peer in self._known

    def peers(self) -> list[PeerId]:
        """Known peers, in a stable (sorted) order."""
        return sorted(self._known)

    def addresses(self, peer: PeerId) -> tuple[Address, ...]:
        """The stored addresses of `peer` (empty when unknown)."""
        return self._known.get(peer, ())

    def learn(self, records: Iterable[PeerRecord], is_blocked: IsBlocked) -> list[PeerRecord]:
        """Store `records`; returns those that are new or gained addresses (to dial)."""
        changed: list[PeerRecord] = []
        for record in records:
            if record.peer == self.self_peer or is_blocked(record.peer):
                continue
            old = self._known.get(record.peer)
            if old is None and len(self._known) >= self.limits.max_known_peers:
                continue
            merged = list(old or ())
            for address in record.addresses:
                if len(merged) >= self.limits.max_addresses_per_peer:
                    break
                if address not in merged:
                    merged.append(address)
            if old is None or len(merged) != len(old):
                self._known[record.peer] = tuple(merged)
                changed.append(PeerRecord(record.peer, tuple(merged)))
        return changed

    def drop(self, peer: PeerId) -> bool:
        """Forget `peer`; True when it was known."""
        return self._known.pop(peer, None) is not None

    def share(self, recipient: PeerId, is_blocked: IsBlocked) -> list[PeerRecord]:
        """Records to send to `recipient`: ourselves first, then a rotating window of peers.

        Never includes `recipient` itself or a blocked peer; at most one message's worth.
        """
        out: list[PeerRecord] = []
        if self.self_addresses:
            out.append(PeerRecord(self.self_peer, self.self_addresses))
        budget_peers = self.limits.max_peers_per_message
        budget_addrs = self.limits.max_addresses_per_message - sum(len(r.addresses) for r in out)
        order = self.peers()
        if not order:
            return out
        start = self._cursor % len(order)
        taken = 0
        for offset in range(len(order)):
            peer = order[(start + offset) % len(order)]
            if len(out) >= budget_peers:
                break
            addresses = self._known[peer]
            if peer == recipient or is_blocked(peer) or len(addresses) > budget_addrs:
                continue
            out.append(PeerRecord(peer, addresses))
            budget_addrs -= len(addresses)
            taken = offset + 1
        self._cursor = start + taken
        return out

    def serialize(self) -> dict[str, Any]:
        """msgpack-able state; `restore()` takes it back."""
        return {
            "known": [
                [peer.to_bytes(), [a.to_bytes() for a in addrs]]
                for peer, addrs in sorted(self._known.items())
            ],
            "cursor": self._cursor,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replace the table with a `serialize()`d state.

        The state went through a snapshot file (which is checksummed), so it is decoded with
        the same validation as a peer's message: a damaged entry raises `PexLocalError`.
        """
        known: dict[PeerId, tuple[Address, ...]] = {}
        try:
            for raw_peer, raw_addrs in state["known"]:
                record = _decode_entry({"peer": raw_peer, "addrs": raw_addrs}, self.limits)
                known[record.peer] = record.addresses
            cursor = int(state.get("cursor", 0))
        except (PexRemoteError, KeyError, TypeError, ValueError) as exc:
            raise PexLocalError(f"peer exchange: bad saved state: {exc}") from exc
        self._known = known
        self._cursor = cursor


class PeerExchange(Component):
    """Engine component sharing known peers with every reachable peer each interval.

    Ops:
    - ``start`` (host, at every daemon start): re-arm the round timer with this instance's
      `interval_ns` (a restored timer keeps the old period) and run a round now.
    - ``round`` (timer, or invoked by the host with ``{}``): send our share to every peer in
      the address book that is not ourselves, blocked or down.
    - ``exchange`` (inbound from a peer): validate, learn, insert new addresses into the
      address book, emit one `LEARNED_TOPIC` event per new peer; answer a first contact with
      our own share so a newcomer learns the mesh without waiting a full interval.
    - ``known`` (host query): ``{"peers": {"<peer>": ["<address>", ...]}}``.

    Counters: ``peer_exchange.sent``, ``peer_exchange.learned``,
    ``peer_exchange.rejected_messages``, ``peer_exchange.rejected_entries``.
    """

    TYPE_NAME: ClassVar[str] = "peer_exchange"
    OPS: ClassVar[tuple[str, ...]] = ("start", "round", "exchange", "known")

    def __init__(
        self,
        self_peer: PeerId,
        self_addresses: Iterable[Address] = (),
        interval_ns: int = DEFAULT_INTERVAL_NS,
        limits: PexLimits = DEFAULT_LIMITS,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if not isinstance(interval_ns, int) or interval_ns < 1:
            raise PexLocalError(f"peer exchange: interval_ns must be >= 1, got {interval_ns!r}")
        self.interval_ns = interval_ns
        self.table = PexTable(self_peer, self_addresses, limits)
        self._timer: int | None = None
        self._ops: dict[str, Callable[[Mapping[str, Any], OpContext], Immediate]] = {
            "start": self._start,
            "round": self._round,
            "exchange": self._exchange,
            "known": self._known,
        }

    def on_install(self, ctx: OpContext) -> None:
        self._timer = ctx.interval(self.interval_ns, "round")

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: OpContext) -> Immediate:
        return self._ops[op](inputs, ctx)

    def serialize(self) -> Any:
        return {"table": self.table.serialize(), "timer": self._timer}

    def restore(self, state: Any) -> None:
        if not isinstance(state, Mapping) or not isinstance(state.get("table"), Mapping):
            raise PexLocalError("peer exchange: saved state must be a map with a 'table' map")
        timer = state.get("timer")
        if timer is not None and not isinstance(timer, int):
            raise PexLocalError(f"peer exchange: saved timer id {timer!r} is not an int")
        self.table.restore(state["table"])
        self._timer = timer

    # ops ------------------------------------------------------------------------------------
    def _start(self, inputs: Mapping[str, Any], ctx: OpContext) -> Immediate:
        if self._timer is not None:
            ctx.cancel(self._timer)
        self._timer = ctx.interval(self.interval_ns, "round")
        return self._round(inputs, ctx)

    def _round(self, inputs: Mapping[str, Any], ctx: OpContext) -> Immediate:
        blocked = _blocked_check(ctx)
        for peer in self.table.peers():
            if blocked(peer):
                self.table.drop(peer)
        targets = [
            peer
            for peer in _reachable_peers(ctx)
            if peer != self.table.self_peer and not blocked(peer)
        ]
        for peer in targets:
            self._send_share(peer, ctx, blocked)
        return Immediate({"sent": len(targets)})

    def _exchange(self, inputs: Mapping[str, Any], ctx: OpContext) -> Immediate:
        sender = ctx.src_peer
        if sender is None:
            raise PexLocalError("peer exchange: 'exchange' is only for envelopes from peers")
        blocked = _blocked_check(ctx)
        try:
            message = decode_pex(inputs.get("payload"), self.table.limits)
        except PexRemoteError as exc:
            ctx.incr("peer_exchange.rejected_messages")
            return Immediate({"error": str(exc)})
        if message.rejected:
            ctx.incr("peer_exchange.rejected_entries", len(message.rejected))
        first_contact = sender not in self.table
        learned = self.table.learn(message.records, blocked)
        for record in learned:
            _address_book_insert(ctx, record.peer, record.dial_addresses())
            ctx.emit(
                LEARNED_TOPIC,
                {"peer": str(record.peer), "addresses": [str(a) for a in record.dial_addresses()]},
            )
        if learned:
            ctx.incr("peer_exchange.learned", len(learned))
        if first_contact and not blocked(sender):
            self._send_share(sender, ctx, blocked)
        return Immediate(
            {"learned": [str(r.peer) for r in learned], "rejected": len(message.rejected)}
        )

    def _known(self, inputs: Mapping[str, Any], ctx: OpContext) -> Immediate:
        return Immediate(
            {
                "peers": {
                    str(peer): [
                        str(a)
                        for a in PeerRecord(peer, self.table.addresses(peer)).dial_addresses()
                    ]
                    for peer in self.table.peers()
                }
            }
        )

    def _send_share(self, peer: PeerId, ctx: OpContext, blocked: IsBlocked) -> None:
        records = self.table.share(peer, blocked)
        if records:
            ctx.send([peer], self.name, "exchange", encode_pex(records))
            ctx.incr("peer_exchange.sent")


# --- the few engine services used, in one place --------------------------------------------


def _blocked_check(ctx: OpContext) -> IsBlocked:
    return ctx.is_blocked


def _reachable_peers(ctx: OpContext) -> list[PeerId]:
    """Peers in the address book that the governor does not consider down."""
    return [peer for peer in ctx.known_peers() if not ctx.is_down(peer)]


def _address_book_insert(ctx: OpContext, peer: PeerId, addresses: tuple[Address, ...]) -> None:
    # ref=False: a rumour about a peer must not pin it in the book against eviction.
    ctx.add_peer(peer, addresses, ref=False)
