"""sd_notify: tell systemd about readiness, reloads, watchdog pings and shutdown.

A plain ``AF_UNIX`` datagram to ``$NOTIFY_SOCKET`` (no libsystemd dependency). A socket
path beginning with ``@`` names the Linux abstract namespace. When the variable is unset
every call is a no-op, so the daemon never has to ask whether it runs under systemd.
Failures to notify are swallowed after the first warning: systemd being gone must never
take the node down with it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

__all__ = ["SdNotifier", "watchdog_interval_s"]


class SdNotifier:
    """Sends sd_notify datagrams; construct with :meth:`from_environ`."""

    def __init__(self, address: str | None) -> None:
        self._address: str | None = None
        if address:
            # "@name" is the abstract namespace: a leading NUL byte on the wire.
            self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self.failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SdNotifier:
        """Build from ``$NOTIFY_SOCKET`` (``None``/empty → a disabled notifier)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """True when a notify socket is configured."""
        return self._address is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines in one datagram; return True when it was sent."""
        if self._address is None:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(payload, self._address)
        except OSError:
            self.failed = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (plus ``STATUS=`` when given)."""
        if status is None:
            return self.send(READY=1)
        return self.send(READY=1, STATUS=status)

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` as systemd's notify-reload type requires."""
        return self.send(RELOADING=1, MONOTONIC_USEC=time.monotonic_ns() // 1000)

    def stopping(self) -> bool:
        """``STOPPING=1``."""
        return self.send(STOPPING=1)

    def watchdog(self) -> bool:
        """``WATCHDOG=1``."""
        return self.send(WATCHDOG=1)

    def status(self, text: str) -> bool:
        """``STATUS=text``."""
        return self.send(STATUS=text)

    def close(self) -> None:
        """Close the datagram socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, or None when no watchdog is armed.

    systemd recommends pinging at half the timeout; ``$WATCHDOG_PID`` (when set) must be us.
    """
    env = os.environ if environ is None else environ
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2_000_000
