"""Network admission policy: IP/CIDR allow and deny lists and connection limits.

Checked on every accepted socket *before* the Noise handshake, so a denied address costs us
one ``accept`` and one ``close``, never a handshake's worth of CPU. PeerId policy (block and
allow lists) lives in the engine's PeerGovernor and is checked right after the handshake.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "AdmissionError",
    "ConnectionSlots",
    "IpNetwork",
    "NetworkPolicy",
    "normalize_ip",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


class AdmissionError(Exception):
    """A connection was refused by local policy; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def normalize_ip(host: str) -> IpAddr:
    """Parse ``host``; IPv4-mapped IPv6 (``::ffff:a.b.c.d``) becomes plain IPv4.

    Raises ``ValueError`` naming the bad text.
    """
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError as exc:
        raise ValueError(f"not an IP address: {host!r}") from exc
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """The ``[network]`` admission rules in force (replaced wholesale on reload)."""

    #: Empty = any address may connect; otherwise only these networks.
    allow_cidrs: tuple[IpNetwork, ...] = ()
    #: Always refused, even when also allowed (deny wins).
    deny_cidrs: tuple[IpNetwork, ...] = ()
    #: Total live connections, inbound and outbound together.
    max_connections: int = 256
    #: Live connections sharing one remote IP.
    max_connections_per_ip: int = 8

    @classmethod
    def build(
        cls,
        allow_cidrs: Iterable[str | IpNetwork] = (),
        deny_cidrs: Iterable[str | IpNetwork] = (),
        max_connections: int = 256,
        max_connections_per_ip: int = 8,
    ) -> NetworkPolicy:
        """Build from text or network objects; raises ``ValueError`` naming a bad CIDR."""
        return cls(
            allow_cidrs=tuple(_network(c) for c in allow_cidrs),
            deny_cidrs=tuple(_network(c) for c in deny_cidrs),
            max_connections=max_connections,
            max_connections_per_ip=max_connections_per_ip,
        )

    def check_ip(self, host: str) -> None:
        """Raise :class:`AdmissionError` when ``host`` may not connect."""
        try:
            ip = normalize_ip(host)
        except ValueError as exc:
            raise AdmissionError("bad_address", str(exc)) from exc
        for net in self.deny_cidrs:
            if ip.version == net.version and ip in net:
                raise AdmissionError("denied_cidr", f"{ip} is in deny_cidrs {net}")
        if self.allow_cidrs and not any(
            ip.version == net.version and ip in net for net in self.allow_cidrs
        ):
            raise AdmissionError("not_in_allow_cidrs", f"{ip} is not in allow_cidrs")


def _network(value: str | IpNetwork) -> IpNetwork:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"not a valid CIDR: {value!r}") from exc


class ConnectionSlots:
    """Counts live connections in total and per remote IP against a :class:`NetworkPolicy`.

    ``acquire`` either takes a slot or raises; every successful ``acquire`` must be paired
    with exactly one ``release`` (the connection task does it in ``finally``).
    """

    def __init__(self, policy: NetworkPolicy) -> None:
        self.policy = policy
        self._per_ip: Counter[str] = Counter()
        self._total = 0
        #: Outbound sockets: counted in ``total`` but exempt from the per-IP limit.
        self.total_outbound = 0

    @property
    def total(self) -> int:
        """Live connections counted (inbound and outbound)."""
        return self._total + self.total_outbound

    def count(self, host: str) -> int:
        """Live connections from ``host``."""
        return self._per_ip[_key(host)]

    def acquire(self, host: str) -> None:
        """Take a slot for ``host`` or raise :class:`AdmissionError`."""
        key = _key(host)
        if self.total >= self.policy.max_connections:
            raise AdmissionError(
                "max_connections",
                f"{self.total} connections open (limit {self.policy.max_connections})",
            )
        if self._per_ip[key] >= self.policy.max_connections_per_ip:
            raise AdmissionError(
                "max_connections_per_ip",
                f"{self._per_ip[key]} connections from {key} "
                f"(limit {self.policy.max_connections_per_ip})",
            )
        self._per_ip[key] += 1
        self._total += 1

    def release(self, host: str) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        key = _key(host)
        if self._per_ip[key] <= 0:
            raise RuntimeError(f"release without acquire for {key}")
        self._per_ip[key] -= 1
        if self._per_ip[key] == 0:
            del self._per_ip[key]
        self._total -= 1


def _key(host: str) -> str:
    try:
        return str(normalize_ip(host))
    except ValueError:
        return host
