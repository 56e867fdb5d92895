"""`bbnode demo`: a small local mesh that shows the main features at work, narrated.

It starts N real `bbnode run` processes on 127.0.0.1 (fresh keys, temporary state dirs;
only node 1 is a bootstrap peer), then walks through: the mesh forming through peer
exchange, a message published on one node arriving on the others, one node killed and the
others reporting it down, that node restarting from its snapshot and coming back up, and a
peer blocked at runtime and cut off. Everything goes through the nodes' control sockets,
exactly as `bbnode ctl` does. It always stops its processes and removes its temporary
directory (unless `--keep`), and exits 0 when every step was seen to happen, 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO, TypeVar

import msgpack

from bbnode._cli_base import Command
from bbnode.daemon.control_client import ControlClient, ControlClientError, ControlError
from bbnode.ids import Address, PeerId
from bbnode.keyfile import save_key
from bbnode.wire.keys import IdentityKey

__all__ = [
    "TOPIC",
    "Demo",
    "DemoError",
    "DemoNode",
    "add_arguments",
    "event_payload",
    "main",
    "run",
]

T = TypeVar("T")
TOPIC = "demo"
# Fast protocol timers so each step shows within seconds (production defaults are 5-60 s).
_CONFIG = """\
[node]
key_file = "identity.key"
state_dir = "{state_dir}"
listen = ["/ip4/127.0.0.1/tcp/{port}"]
bootstrap = [{bootstrap}]
shutdown_grace_s = 2

[peers]
failure_threshold = 2
backoff_base_ms = 100
backoff_max_ms = 1000

[snapshot]
interval_s = 2

[log]
level = "warning"
format = "json"

[protocols.heartbeat]
interval_s = 0.5
timeout_s = 0.4

[protocols.peer_exchange]
interval_s = 1
"""


class DemoError(Exception):
    """A demo step did not happen (in time); the message says which."""


@dataclass(slots=True)
class DemoNode:
    """One node of the demo mesh: its files, identity and process."""

    name: str
    state_dir: Path
    port: int
    peer: PeerId
    process: subprocess.Popen[bytes] | None = None
    log: BinaryIO | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    """`time.monotonic()` at which each entry of `events` arrived (benchmarks use it)."""

    @property
    def address(self) -> Address:
        return Address.tcp("127.0.0.1", self.port, self.peer)

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "control.sock"

    def ctl(self, cmd: str, **args: Any) -> Any:
        """One control-socket request (what `bbnode ctl` sends)."""
        with ControlClient(self.socket_path, timeout_s=10.0) as client:
            return client.request(cmd, **args)


def _wait(what: str, check: Callable[[], T | None], timeout_s: float) -> T:
    """Poll `check` until it returns something truthy, or raise `DemoError` naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
        except (ControlClientError, ControlError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _peer_entries(result: Any) -> dict[str, dict[str, Any]]:
    """`ctl peers` result as {peer id text: entry}; accepts a list of maps or a map."""
    if isinstance(result, dict) and isinstance(result.get("peers"), list | dict):
        result = result["peers"]
    if isinstance(result, dict):
        return {str(k): v if isinstance(v, dict) else {} for k, v in result.items()}
    entries: dict[str, dict[str, Any]] = {}
    for item in result if isinstance(result, list) else []:
        if isinstance(item, dict) and ("peer" in item or "peer_id" in item):
            entries[str(item.get("peer", item.get("peer_id")))] = item
    return entries


def event_payload(event: dict[str, Any]) -> bytes | None:
    """The published bytes inside a pubsub event streamed by `ctl subscribe`."""
    value = event.get("data")
    if isinstance(value, bytes):  # the AppEvent's value_bytes: msgpack of the pubsub value
        try:
            value = msgpack.unpackb(value, raw=False)
        except (ValueError, msgpack.ExtraData):
            return None
    if isinstance(value, dict):
        value = value.get("data")
    return value if isinstance(value, bytes) else None


def _is_up(entry: dict[str, Any]) -> bool:
    return entry.get("state") == "connected" and not _is_down(entry)


def _is_down(entry: dict[str, Any]) -> bool:
    health = entry.get("health")
    if isinstance(health, dict) and health.get("down"):
        return True
    return bool(entry.get("down")) or entry.get("state") == "down"


class Demo:
    """The narrated scenario; `run()` raises `DemoError` when a step does not happen."""

    def __init__(self, root: Path, count: int, timeout_s: float, out: TextIO) -> None:
        self.root = root
        self.timeout_s = timeout_s
        self.out = out
        self.nodes: list[DemoNode] = []
        for index in range(1, count + 1):
            state_dir = root / f"node{index}"
            state_dir.mkdir(parents=True)
            key = IdentityKey.generate()
            save_key(key, state_dir / "identity.key")
            self.nodes.append(DemoNode(f"node{index}", state_dir, _free_port(), key.peer_id))
        bootstrap = self.nodes[0]
        for node in self.nodes:
            boot = "" if node is bootstrap else f'"{bootstrap.address}"'
            (node.state_dir / "bbnode.toml").write_text(
                _CONFIG.format(state_dir=node.state_dir, port=node.port, bootstrap=boot)
            )

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def name_of(self, peer: str) -> str:
        return next((n.name for n in self.nodes if str(n.peer) == peer), peer[:12] + "...")

    # processes -----------------------------------------------------------------------------
    def start(self, node: DemoNode) -> None:
        if node.log is not None:
            node.log.close()
        node.log = (node.state_dir / "daemon.log").open("ab")
        node.process = subprocess.Popen(
            # `python -m bbnode run` is `bbnode run` where the console script may not be on PATH.
            [sys.executable, "-m", "bbnode", "run",
             "--config", str(node.state_dir / "bbnode.toml")],
            stdin=subprocess.DEVNULL, stdout=node.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait(f"{node.name} to answer on its control socket", lambda: self._status(node), 30)

    def _status(self, node: DemoNode) -> Any:
        if node.process is not None and node.process.poll() is not None:
            raise DemoError(f"{node.name} exited with code {node.process.returncode}")
        return node.ctl("status") if node.socket_path.exists() else None

    def kill(self, node: DemoNode) -> None:
        if node.process is not None:
            node.process.kill()
            node.process.wait(10)
            node.process = None

    def stop_all(self) -> None:
        """SIGTERM every node, then SIGKILL what is still running after a grace period."""
        running = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        for node in running:
            assert node.process is not None
            node.process.terminate()
        for node in running:
            assert node.process is not None
            try:
                node.process.wait(10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)
        for node in self.nodes:
            node.process = None
            if node.log is not None:
                node.log.close()
                node.log = None

    def subscribe(self, node: DemoNode) -> None:
        """Stream `TOPIC` events of `node` into `node.events` (a background reader)."""
        client = ControlClient(node.socket_path, timeout_s=None)
        client.request("subscribe", topic=TOPIC)

        def read() -> None:
            with client:
                while True:
                    try:
                        message = client.receive_message()
                    except ControlClientError:
                        return
                    if isinstance(message, dict) and isinstance(message.get("event"), dict):
                        node.arrivals.append(time.monotonic())
                        node.events.append(message["event"])

        threading.Thread(target=read, name=f"demo-sub-{node.name}", daemon=True).start()

    def await_each(
        self, nodes: Sequence[DemoNode], what: str, check: Callable[[DemoNode], bool]
    ) -> None:
        """For each node in turn, wait until `check(node)` holds and narrate it.

        `what` is formatted with `node` and is both the awaited fact and the narrated line.
        """
        for node in nodes:
            _wait(what.format(node=node.name), lambda n=node: check(n), self.timeout_s)  # type: ignore[misc]
            self.say("  " + what.format(node=node.name))

    def peers_of(self, node: DemoNode) -> dict[str, dict[str, Any]]:
        return _peer_entries(node.ctl("peers"))

    @staticmethod
    def received(node: DemoNode, data: bytes) -> int:
        """How many times `node` delivered a message carrying `data` on `TOPIC`."""
        return sum(1 for e in list(node.events) if event_payload(e) == data)

    def wait_for_mesh(self) -> None:
        """Wait until every node knows every other one (narrated per node)."""
        wanted = {str(n.peer) for n in self.nodes}
        self.await_each(
            self.nodes,
            "{node} has learned of every other node",
            lambda n: wanted - {str(n.peer)} <= set(self.peers_of(n)),
        )

    # the story -----------------------------------------------------------------------------
    def run(self) -> None:
        first, *others = self.nodes
        self.say(
            f"Starting {len(self.nodes)} bbnode processes on 127.0.0.1 (state in {self.root})."
        )
        for node in self.nodes:
            self.start(node)
            self.say(f"  {node.name} is up: peer id {node.peer}, listening on port {node.port}")
        self.say(f"Only {first.name} is a bootstrap peer; the others know nothing but its address.")

        self.say("\n1. The mesh forms through peer exchange")
        self.wait_for_mesh()

        self.say("\n2. A message published on one node arrives on the others")
        for node in self.nodes:
            self.subscribe(node)
        message = b"hello, mesh"
        first.ctl("publish", topic=TOPIC, data=message)
        self.say(f"  {first.name} published {message.decode()!r} on topic {TOPIC!r}")
        self.await_each(others, "{node} received it", lambda n: self.received(n, message) == 1)

        victim = self.nodes[-1]
        self.say(f"\n3. {victim.name} is killed; the others report it down")
        victim.ctl("snapshot")
        self.kill(victim)
        self.say(f"  {victim.name} was killed (SIGKILL) after writing a snapshot")
        self.await_each(
            self.nodes[:-1],
            "{node} reports " + victim.name + " DOWN",
            lambda n: _is_down(self.peers_of(n).get(str(victim.peer), {})),
        )

        self.say(f"\n4. {victim.name} restarts from its snapshot and comes back up")
        self.start(victim)
        status = victim.ctl("status")
        same = isinstance(status, dict) and status.get("peer_id") == str(victim.peer)
        if not same:
            raise DemoError(f"{victim.name} came back with another identity: {status!r}")
        self.say(f"  {victim.name} restarted from its snapshot, same peer id {victim.peer}")
        self.await_each(
            self.nodes[:-1],
            "{node} reports " + victim.name + " UP",
            lambda n: _is_up(self.peers_of(n).get(str(victim.peer), {})),
        )
        self.subscribe(victim)

        blocker, banned, bystander = self.nodes[0], self.nodes[1], self.nodes[2]
        self.say(f"\n5. {blocker.name} blocks {banned.name} at runtime; {banned.name} is cut off")
        blocker.ctl("block", peer=str(banned.peer))
        self.say(f"  {blocker.name}: ctl block {banned.peer}")
        secret = b"from the banned node"
        banned.ctl("publish", topic=TOPIC, data=secret)
        self.say(f"  {banned.name} published {secret.decode()!r}")
        _wait(f"{bystander.name} to receive it", lambda: self.received(bystander, secret),
              self.timeout_s)  # fmt: skip
        self.say(f"  {bystander.name} received it (it has not blocked {banned.name})")
        time.sleep(1.0)  # let any copy forwarded towards the blocker arrive (it must not)
        if self.received(blocker, secret):
            raise DemoError(f"{blocker.name} received a message from blocked {banned.name}")
        self.say(f"  {blocker.name} did not: messages from a blocked peer are never delivered")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `bbnode demo` options (for the CLI's `Command`)."""
    parser.add_argument("--nodes", type=int, default=3, help="mesh size, 3-8 (default 3)")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="per-step time limit")
    parser.add_argument("--keep", action="store_true", help="keep the state directories")


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed `args`; 0 when every step was seen to happen, else 1."""
    if not 3 <= args.nodes <= 8:
        print(f"bbnode demo: --nodes must be between 3 and 8, got {args.nodes}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bbnode-demo-"))
    demo = Demo(root, args.nodes, args.timeout_s, sys.stdout)
    try:
        demo.run()
    except DemoError as exc:
        demo.say(f"\nDemo failed: {exc} (daemon logs: {root}/node*/daemon.log)")
        return 1
    finally:
        demo.stop_all()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    demo.say("\nDone: all nodes stopped" + (f"; state kept in {root}" if args.keep else "."))
    return 0


DEMO = Command("demo", "run a local mesh of nodes and narrate what happens", add_arguments, run)


def main(argv: Sequence[str] | None = None) -> int:
    """`bbnode demo [--nodes N] [--timeout-s S] [--keep]` as a standalone entry point."""
    parser = argparse.ArgumentParser(prog="bbnode demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return run(args)
