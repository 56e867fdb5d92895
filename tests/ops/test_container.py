"""The real container: two nodes from the repository's image, talking over 127.0.0.1.

Builds the Dockerfile with podman, starts two containers (host network, each with its own
named volume and config file), checks they connect and carry a pubsub message, runs the
image's HEALTHCHECK in each, stops one with SIGTERM (the image's STOPSIGNAL) and checks that
its final snapshot is in its volume and that it restarts from it, and that the daemon runs as
the image's non-root user.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ops.opsutil import find_key, free_port, node_toml, peer_ids_in, require_daemon
from tests.ops.podmanutil import CONTROL_SOCKET, Podman, eventually, volume_dir

pytestmark = pytest.mark.ops

IMAGE_UID = 10001
STATE = "/var/lib/bbnode"
KEY = f"{STATE}/identity.key"


@dataclass
class Node:
    """One container of the test and the names it owns."""

    name: str
    volume: str
    config: Path
    port: int
    peer_id: str = ""


@pytest.fixture
def nodes(podman: Podman, image: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    run_id = uuid.uuid4().hex[:8]
    pair = tuple(
        Node(
            name=f"bbnode-ops-{run_id}-{label}",
            volume=f"bbnode-ops-{run_id}-{label}",
            config=tmp_path / f"{label}.toml",
            port=free_port(),
        )
        for label in ("a", "b")
    )
    a, b = pair
    try:
        yield a, b
    finally:
        for node in pair:
            podman.try_run(["rm", "--force", "--time", "0", node.name])
            podman.try_run(["volume", "rm", "--force", node.volume])


def start(podman: Podman, image: str, node: Node) -> None:
    node.config.chmod(0o644)  # the image's user reads it through the bind mount
    podman.run(
        [
            *("run", "--detach", "--pull=never", "--network", "host", "--name", node.name),
            *("--volume", f"{node.volume}:{STATE}"),
            *("--volume", f"{node.config}:/etc/bbnode/bbnode.toml:ro", image),
        ]
    )


def wait_healthy(podman: Podman, node: Node) -> None:
    def healthy() -> bool | None:
        # `healthcheck run` executes the image's HEALTHCHECK (bbnode ctl ... health) now.
        result = podman.try_run(["healthcheck", "run", node.name], timeout_s=30)
        return True if result.returncode == 0 and "unhealthy" not in result.stdout else None

    eventually(f"{node.name} healthy", healthy, 90, diag=lambda: podman.logs(node.name))


def peer_id_of(podman: Podman, node: Node) -> str:
    out = podman.run(["exec", node.name, "bbnode", "peer-id", "--key", KEY])
    (peer,) = peer_ids_in(out)
    return peer


def knows(podman: Podman, node: Node, other: Node) -> bool | None:
    result = podman.ctl(node.name, "peers")
    return True if result.returncode == 0 and other.peer_id in peer_ids_in(result.stdout) else None


def snapshots(podman: Podman, node: Node) -> dict[Path, float]:
    """Files in the node's volume that `bbnode snapshot verify` accepts -> their mtime."""
    bbnode = require_daemon()
    found: dict[Path, float] = {}
    # Generations are state_dir/snapshots/snapshot-<n>.bbsnap (bbnode.store.generations).
    for path in volume_dir(podman, node.volume).rglob("snapshot-*.bbsnap"):
        verify = subprocess.run(
            [bbnode, "snapshot", "verify", str(path)], capture_output=True, check=False
        )
        if verify.returncode == 0:
            found[path] = path.stat().st_mtime
    return found


def incarnation(path: Path) -> int:
    bbnode = require_daemon()
    out = subprocess.run(
        [bbnode, "snapshot", "inspect", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    value = find_key(json.loads(out), "incarnation")
    assert isinstance(value, int)
    return value


def stop_with_sigterm(podman: Podman, node: Node) -> Path:
    """`podman stop` (the image's STOPSIGNAL), exit 0, and the snapshot it wrote on the way."""
    before = time.time()
    podman.run(["stop", "--time", "30", node.name], timeout_s=60)
    code = podman.run(["inspect", "--format", "{{.State.ExitCode}}", node.name]).strip()
    assert code == "0", podman.logs(node.name)
    fresh = {p: m for p, m in snapshots(podman, node).items() if m >= before - 1}
    assert fresh, f"no snapshot written on SIGTERM in {node.volume}:\n{podman.logs(node.name)}"
    return max(fresh, key=fresh.__getitem__)


def test_two_containers_mesh_publish_stop_and_restart(
    podman: Podman, image: str, nodes: tuple[Node, Node]
) -> None:
    a, b = nodes
    a.config.write_text(node_toml(state_dir=STATE, port=a.port))
    start(podman, image, a)
    wait_healthy(podman, a)
    a.peer_id = peer_id_of(podman, a)

    bootstrap = f"/ip4/127.0.0.1/tcp/{a.port}/p2p/{a.peer_id}"
    b.config.write_text(node_toml(state_dir=STATE, port=b.port, bootstrap=[bootstrap]))
    start(podman, image, b)
    wait_healthy(podman, b)
    b.peer_id = peer_id_of(podman, b)
    assert a.peer_id != b.peer_id

    # The daemon (PID 1 of each container) runs as the image's user, not root.
    for node in (a, b):
        pid = podman.run(["inspect", "--format", "{{.State.Pid}}", node.name]).strip()
        status = Path(f"/proc/{pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uids.split()[1:] == [str(IMAGE_UID)] * 4

    eventually("a and b connected", lambda: knows(podman, a, b) and knows(podman, b, a), 60)

    # pubsub: a subscriber on a sees what b publishes.
    topic, message = "ops-test", f"hello-{uuid.uuid4().hex}"
    wanted = {message, message.encode().hex()}
    lines: queue.Queue[str] = queue.Queue()
    sub = subprocess.Popen(
        ["podman", "exec", a.name, "bbnode", "ctl", "--socket", CONTROL_SOCKET, "subscribe", topic],
        env=podman.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert sub.stdout is not None
    pipe = sub.stdout

    def pump() -> None:
        for line in pipe:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        received: list[str] = []

        def delivered() -> bool | None:
            podman.ctl(b.name, "publish", topic, message)
            while not lines.empty():
                received.append(lines.get())
            # The subscriber may print the payload as text or as hex-encoded bytes.
            return True if any(w in line for w in wanted for line in received) else None

        eventually("pubsub message from b reaches a", delivered, 60, diag=lambda: "".join(received))
    finally:
        sub.terminate()
        sub.wait(timeout=30)
        reader.join(timeout=30)
        pipe.close()

    # SIGTERM: graceful stop, final snapshot in the volume; restart resumes from it.
    first = stop_with_sigterm(podman, a)
    first_incarnation = incarnation(first)
    podman.run(["start", a.name])
    wait_healthy(podman, a)
    assert peer_id_of(podman, a) == a.peer_id
    second = stop_with_sigterm(podman, a)
    assert incarnation(second) == first_incarnation + 1


def test_image_runs_with_its_builtin_config(podman: Podman, image: str) -> None:
    # No config mounted, no volume named: the built-in /etc/bbnode/bbnode.toml and an
    # anonymous volume. --network none gives it a private port 7400.
    name = f"bbnode-ops-{uuid.uuid4().hex[:8]}-bare"
    node = Node(name=name, volume="", config=Path("/nonexistent"), port=7400)
    try:
        podman.run(["run", "--detach", "--pull=never", "--network", "none", "--name", name, image])
        wait_healthy(podman, node)
        peer_id_of(podman, node)
        podman.run(["stop", "--time", "30", name], timeout_s=60)
        assert podman.run(["inspect", "--format", "{{.State.ExitCode}}", name]).strip() == "0"
    finally:
        podman.try_run(["rm", "--force", "--volumes", "--time", "0", name])
