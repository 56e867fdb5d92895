"""Real daemon subprocesses for the integration tests: configs, logs, control, signals.

Every wait is a deadline loop polling the process's JSON log or its control socket.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bbnode.daemon.control_client import ControlClient, ControlClientError, ControlError
from bbnode.ids import PeerId
from bbnode.keyfile import save_key
from bbnode.wire import IdentityKey

__all__ = ["DaemonProcess", "free_port", "make_node", "wait_for"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` until truthy (returned) or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or predicate}")
        time.sleep(0.05)


@dataclass
class DaemonProcess:
    """One ``python -m bbnode run`` process with its own state dir and config."""

    name: str
    directory: Path
    key: IdentityKey
    port: int
    settings: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    runs: int = 0

    @property
    def peer(self) -> PeerId:
        return self.key.peer_id

    @property
    def address(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer}"

    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    @property
    def config_path(self) -> Path:
        return self.directory / "bbnode.toml"

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "control.sock"

    @property
    def log_path(self) -> Path:
        return self.directory / f"log-{self.runs}.jsonl"

    def write_config(self, **overrides: Any) -> None:
        s = {**self.settings, **overrides}
        bootstrap = json.dumps(s.get("bootstrap", []))
        block = json.dumps(s.get("block", []))
        text = f"""
[node]
state_dir = "{self.state_dir}"
listen = ["/ip4/127.0.0.1/tcp/{self.port}"]
bootstrap = {bootstrap}
shutdown_grace_s = 3

[peers]
block = {block}
failure_threshold = {s.get("failure_threshold", 2)}
backoff_base_ms = 50
backoff_max_ms = 400

[network]
handshake_timeout_s = {s.get("handshake_timeout_s", 2)}
idle_timeout_s = 30
max_connections_per_ip = {s.get("max_connections_per_ip", 8)}

[snapshot]
interval_s = {s.get("snapshot_interval_s", 60)}

[log]
level = "debug"
format = "json"

[protocols.heartbeat]
interval_s = 0.25
timeout_s = 0.2
"""
        self.config_path.write_text(text)

    def start(self) -> None:
        self.runs += 1
        env = {**os.environ, **self.env}
        if "NOTIFY_SOCKET" not in self.env:
            env.pop("NOTIFY_SOCKET", None)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bbnode", "run", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_for(self._ready, 20, f"{self.name} control socket")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited early:\n{self.log_path.read_text()}")
        try:
            self.ctl("status")
        except (ControlClientError, ControlError):
            return False
        return True

    def logs(self, run: int | None = None) -> list[dict[str, Any]]:
        path = self.directory / f"log-{run or self.runs}.jsonl"
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"event": "<non-json>", "line": line})
        return out

    def find_log(self, event: str, **match: Any) -> dict[str, Any] | None:
        for entry in self.logs():
            if entry.get("event") == event and all(entry.get(k) == v for k, v in match.items()):
                return entry
        return None

    def count_log(self, event: str) -> int:
        return sum(1 for entry in self.logs() if entry.get("event") == event)

    def wait_log(self, event: str, timeout_s: float = 10.0, **match: Any) -> dict[str, Any]:
        found: dict[str, Any] = wait_for(
            lambda: self.find_log(event, **match), timeout_s, f"{self.name} log {event} {match}"
        )
        return found

    def ctl(self, cmd: str, **args: Any) -> Any:
        with ControlClient(self.socket_path, timeout_s=10) as client:
            return client.request(cmd, **args)

    def connected(self) -> set[str]:
        return set(self.ctl("status")["connected_peers"])

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout_s: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def make_node(tmp_path: Path, name: str, seed: int, **settings: Any) -> DaemonProcess:
    directory = tmp_path / name
    (directory / "state").mkdir(parents=True)
    key = IdentityKey.from_seed(bytes([seed]) * 32)
    save_key(key, directory / "state" / "identity.key")
    node = DaemonProcess(name, directory, key, free_port(), settings)
    node.write_config()
    return node


@contextmanager
def running(*nodes: DaemonProcess) -> Iterator[None]:
    """Start ``nodes`` in order; kill whatever is still running on the way out."""
    try:
        for node in nodes:
            node.start()
        yield
    finally:
        for node in nodes:
            node.stop()
