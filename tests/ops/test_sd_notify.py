"""The daemon's sd_notify conversation is the one systemd/bbnode.service asks for.

The unit says Type=notify, NotifyAccess=main, WatchdogSec=, ExecReload=kill -HUP. So a real
`bbnode run` started the way systemd starts it (``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC``) must,
from its main process: send READY=1 only once it listens and answers on its control socket,
within TimeoutStartSec; ping WATCHDOG=1 more often than the watchdog timeout; answer SIGHUP
with RELOADING=1 + a current MONOTONIC_USEC then READY=1 (also when the new file is bad: the
old config stays); answer SIGTERM with STOPPING=1 and exit 0 within TimeoutStopSec.
The test plays systemd's side of the socket, with SO_PASSCRED to see which PID is talking.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ops.opsutil import free_port, node_toml, require_daemon
from tests.ops.unitfile import seconds, service

pytestmark = pytest.mark.ops

#: A short watchdog so the test sees several pings quickly; the unit's 30 s is checked below.
TEST_WATCHDOG_S = 2.0


@dataclass(frozen=True, slots=True)
class Notice:
    """One sd_notify datagram as systemd sees it."""

    fields: dict[str, str]
    pid: int
    at_monotonic_us: int


class NotifySocket:
    """systemd's end of ``$NOTIFY_SOCKET``: an AF_UNIX datagram socket with credentials."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.received: list[Notice] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None

    def next(self, deadline_s: float) -> Notice:
        """The next datagram, or fail once ``deadline_s`` (monotonic) passes."""
        remaining = deadline_s - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no sd_notify datagram before the deadline")
        self.sock.settimeout(remaining)
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except TimeoutError:
            raise TimeoutError("no sd_notify datagram before the deadline") from None
        pid = -1
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _uid, _gid = struct.unpack("iII", payload[:12])
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        notice = Notice(fields, pid, time.monotonic_ns() // 1000)
        self.received.append(notice)
        return notice

    def wait_for(self, key: str, within_s: float) -> Notice:
        """Skip other datagrams until one carries ``key``; fail after ``within_s``.

        Also fails at once, with the daemon's log, if the daemon exits meanwhile (unless
        ``key`` is STOPPING, which may be the last thing it says before exiting).
        """
        deadline = time.monotonic() + within_s
        while True:
            try:
                notice = self.next(min(deadline, time.monotonic() + 0.5))
            except TimeoutError:
                seen = [n.fields for n in self.received]
                if time.monotonic() >= deadline:
                    pytest.fail(f"no {key} within {within_s} s; received so far: {seen}")
                if self.proc is not None and self.proc.poll() is not None:
                    log = self.log.read_text()[-3000:] if self.log else ""
                    pytest.fail(
                        f"daemon exited {self.proc.returncode} while waiting for {key}; "
                        f"received so far: {seen}\n{log}"
                    )
                continue
            if key in notice.fields:
                return notice

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer than that.
    with tempfile.TemporaryDirectory(prefix="bbops-") as d:
        yield Path(d)


def start_under_fake_systemd(
    bbnode: str, workdir: Path, notify: NotifySocket, watchdog_s: float
) -> tuple[subprocess.Popen[bytes], Path, int]:
    port = free_port()
    config = workdir / "bbnode.toml"
    config.write_text(node_toml(state_dir=str(workdir / "state"), port=port))
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify.path),
        "WATCHDOG_USEC": str(int(watchdog_s * 1_000_000)),
    }
    env.pop("WATCHDOG_PID", None)
    notify.log = workdir / "daemon.log"
    with notify.log.open("wb") as log:
        proc = subprocess.Popen(
            [bbnode, "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    notify.proc = proc
    return proc, config, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_notify_conversation_matches_the_unit(short_dir: Path) -> None:
    bbnode = require_daemon()
    unit = service()
    assert (unit["Type"], unit["NotifyAccess"]) == ("notify", "main")
    start_s = seconds(unit["TimeoutStartSec"])
    stop_s = seconds(unit["TimeoutStopSec"])
    assert seconds(unit["WatchdogSec"]) > TEST_WATCHDOG_S

    notify = NotifySocket(short_dir / "notify.sock")
    proc, config, port = start_under_fake_systemd(bbnode, short_dir, notify, TEST_WATCHDOG_S)
    try:
        # READY=1 only once the node listens and its control socket exists.
        ready = notify.wait_for("READY", start_s)
        assert ready.fields["READY"] == "1"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert (short_dir / "state" / "control.sock").is_socket()

        # Watchdog pings keep coming, each gap shorter than the watchdog timeout.
        first = notify.wait_for("WATCHDOG", TEST_WATCHDOG_S)
        previous = first
        for _ in range(3):
            ping = notify.wait_for("WATCHDOG", TEST_WATCHDOG_S)
            assert ping.fields["WATCHDOG"] == "1"
            assert ping.at_monotonic_us - previous.at_monotonic_us < TEST_WATCHDOG_S * 1e6
            previous = ping

        # SIGHUP: RELOADING=1 with a current CLOCK_MONOTONIC timestamp, then READY=1.
        before_us = time.monotonic_ns() // 1000
        proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING", 10)
        assert reloading.fields["RELOADING"] == "1"
        assert before_us <= int(reloading.fields["MONOTONIC_USEC"]) <= reloading.at_monotonic_us
        notify.wait_for("READY", 10)

        # A broken file is rejected; systemd still gets READY=1 and the node keeps running.
        config.write_text("[node\nthis is not toml\n")
        proc.send_signal(signal.SIGHUP)
        notify.wait_for("RELOADING", 10)
        notify.wait_for("READY", 10)
        assert proc.poll() is None

        # SIGTERM: STOPPING=1, then a clean exit before systemd would SIGKILL.
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING", stop_s)
        assert proc.wait(timeout=stop_s) == 0
    finally:
        stop(proc)
        notify.close()

    # NotifyAccess=main: systemd ignores datagrams from any other PID.
    assert {n.pid for n in notify.received} == {proc.pid}
    states = [
        key
        for n in notify.received
        for key in ("READY", "RELOADING", "STOPPING")
        if key in n.fields
    ]
    assert states == ["READY", "RELOADING", "READY", "RELOADING", "READY", "STOPPING"]


def test_unit_watchdog_is_pinged_in_time(short_dir: Path) -> None:
    # With the unit's own WatchdogSec the first ping must come well within the timeout.
    bbnode = require_daemon()
    watchdog_s = seconds(service()["WatchdogSec"])
    notify = NotifySocket(short_dir / "notify.sock")
    proc, _config, _port = start_under_fake_systemd(bbnode, short_dir, notify, watchdog_s)
    try:
        ready = notify.wait_for("READY", seconds(service()["TimeoutStartSec"]))
        ping = notify.wait_for("WATCHDOG", watchdog_s)
        assert ping.at_monotonic_us - ready.at_monotonic_us < watchdog_s * 1e6
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=seconds(service()["TimeoutStopSec"])) == 0
    finally:
        stop(proc)
        notify.close()
