import os
import socket
from pathlib import Path

from bbnode.daemon.notify import SdNotifier, watchdog_interval_s


def _receiver(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    return sock


def test_messages_arrive_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with _receiver(path) as sock:
        n = SdNotifier.from_environ({"NOTIFY_SOCKET": path})
        assert n.enabled
        assert n.ready(status="up")
        assert n.watchdog()
        assert n.reloading()
        assert n.stopping()
        got = [sock.recv(4096).decode() for _ in range(4)]
        n.close()
    assert got[0] == "READY=1\nSTATUS=up"
    assert got[1] == "WATCHDOG=1"
    lines = got[2].split("\n")
    assert lines[0] == "RELOADING=1"
    assert lines[1].startswith("MONOTONIC_USEC=")
    assert int(lines[1].split("=")[1]) > 0
    assert got[3] == "STOPPING=1"


def test_abstract_namespace() -> None:
    name = f"bbnode-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        n = SdNotifier(f"@{name}")
        assert n.status("hello")
        assert sock.recv(100) == b"STATUS=hello"
        n.close()


def test_disabled_and_unreachable(tmp_path: Path) -> None:
    assert not SdNotifier.from_environ({}).ready()
    n = SdNotifier(str(tmp_path / "nobody-listens"))
    assert not n.ready()
    assert n.failed
    n.close()


def test_watchdog_interval() -> None:
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000"}) == 1.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "x"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
    pid = str(os.getpid())
    assert watchdog_interval_s({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": pid}) == 0.5
