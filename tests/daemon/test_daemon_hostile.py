"""Garbage, a stalled handshake and a connection flood are refused; a real peer still talks."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from bbnode.daemon.control_client import ControlClient, ControlError
from tests.daemon._harness import make_node, running, wait_for

pytestmark = pytest.mark.slow


def _counter(node: object, name: str) -> int:
    value: int = node.ctl("status")["counters"].get(name, 0)  # type: ignore[attr-defined]
    return value


def test_hostile_clients_refused_while_peer_exchanges(tmp_path: Path) -> None:
    a = make_node(tmp_path, "a", 1, max_connections_per_ip=3, handshake_timeout_s=1)
    b = make_node(tmp_path, "b", 2)
    with running(a):
        # Garbage: a handshake that is not Noise.
        with socket.create_connection(("127.0.0.1", a.port), timeout=5) as s:
            s.sendall(b"\x00\x05hello" + b"\xff" * 100)
            assert s.recv(100) == b""
        # Stalled: connects, sends nothing, dropped at the handshake timeout.
        with socket.create_connection(("127.0.0.1", a.port), timeout=5) as s:
            assert s.recv(100) == b""
        # Flood from 127.0.0.2: beyond max_connections_per_ip (3) is refused at once.
        flood = []
        for _ in range(8):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", a.port))
            flood.append(s)
        wait_for(lambda: _counter(a, "conn.refused.max_connections_per_ip") == 5, 5, "5 refused")
        # While the flood holds its 3 slots, a real peer from 127.0.0.1 connects and talks.
        b.write_config(bootstrap=[a.address])
        with running(b):
            wait_for(lambda: str(b.peer) in a.connected(), 10, "b connected")
            with ControlClient(a.socket_path) as sub:
                events = sub.subscribe("greetings")
                b.ctl("publish", topic="greetings", data=b"hello from b")
                event = next(events)
            assert event["topic"] == "greetings"
            value = msgpack.unpackb(event["data"])
            assert value["data"] == b"hello from b"
            assert value["origin"] == str(b.peer)
        for s in flood:
            s.close()
        assert _counter(a, "conn.handshake_failed") >= 2
        a.signal(signal.SIGTERM)
        assert a.wait_exit() == 0


def _ctl(node: object, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bbnode", "ctl", "--socket", str(node.socket_path), *args],  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_ctl_commands_and_malformed_requests(tmp_path: Path) -> None:
    a = make_node(tmp_path, "a", 1)
    victim = make_node(tmp_path, "v", 7).peer
    with running(a):
        status = _ctl(a, "status")
        assert status.returncode == 0, status.stderr
        assert f'"peer_id": "{a.peer}"' in status.stdout
        health = _ctl(a, "health")
        assert health.returncode == 0
        assert '"healthy": true' in health.stdout
        assert _ctl(a, "block", str(victim), "--for", "1h").returncode == 0
        assert str(victim) in {e["peer"] for e in a.ctl("status")["blocked"]}
        assert _ctl(a, "peers").returncode == 0
        assert _ctl(a, "unblock", str(victim)).returncode == 0
        assert a.ctl("status")["blocked"] == []
        snap = _ctl(a, "snapshot")
        assert snap.returncode == 0
        assert ".bbsnap" in snap.stdout
        bad = _ctl(a, "block", "not-a-peer")
        assert bad.returncode == 2
        assert "not a valid peer id" in bad.stderr
        assert _ctl(a, "block", str(victim), "--for", "soon").returncode == 2
        with ControlClient(a.socket_path) as c:
            with pytest.raises(ControlError, match="unknown command 'reboot'"):
                c.request("reboot")
            with pytest.raises(ControlError, match="missing argument 'peer'"):
                c.request("block")
            c.send_raw(b"\x00\x00\x00\x03\xc1\xc1\xc1")
            assert c.receive_message()["ok"] is False
        # The daemon is unharmed.
        assert a.ctl("health")["healthy"] is True
        a.signal(signal.SIGTERM)
        assert a.wait_exit() == 0


def test_sd_notify_sequence(tmp_path: Path) -> None:
    a = make_node(tmp_path, "a", 1)
    notify_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(notify_path)
        sock.settimeout(10)
        a.env = {"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"}
        with running(a):
            messages = [sock.recv(4096).decode()]
            assert messages[0].startswith("READY=1\nSTATUS=serving as ")
            assert sock.recv(4096) == b"WATCHDOG=1"
            a.signal(signal.SIGHUP)
            seen = []
            while not seen or not seen[-1].startswith("READY=1"):
                msg = sock.recv(4096).decode()
                if msg != "WATCHDOG=1":
                    seen.append(msg)
            assert seen[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
            assert seen[-1] == "READY=1\nSTATUS=config reloaded"
            a.signal(signal.SIGTERM)
            while (msg := sock.recv(4096).decode()) == "WATCHDOG=1":
                pass
            assert msg == "STOPPING=1"
            assert a.wait_exit() == 0
