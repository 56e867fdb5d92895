"""deploy/compose.yaml for real: podman-compose brings up the 3-node cluster, the mesh forms
(node2 and node3 find each other through node1), and `down -v` leaves nothing behind."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator

import pytest

from tests.ops.opsutil import REPO, peer_ids_in, port_is_free, tool
from tests.ops.podmanutil import CONTROL_SOCKET, Podman, eventually

pytestmark = pytest.mark.ops

COMPOSE_FILE = REPO / "deploy" / "compose.yaml"
SERVICES = ("node1", "node2", "node3")
PORTS = (7401, 7402, 7403)
KEY = "/var/lib/bbnode/identity.key"


class Compose:
    """podman-compose on the repository's compose file under a throwaway project name."""

    def __init__(self, podman: Podman, project: str) -> None:
        self.podman = podman
        self.project = project
        self.program = tool("podman-compose", "pip install podman-compose")

    def run(self, *args: str, timeout_s: float = 180) -> str:
        return self.podman.run(
            ["-p", self.project, "-f", str(COMPOSE_FILE), *args],
            timeout_s=timeout_s,
            program=self.program,
        )

    def exec(self, service: str, *command: str) -> tuple[int, str]:
        result = self.podman.try_run(
            ["-p", self.project, "-f", str(COMPOSE_FILE), "exec", "-T", service, *command],
            timeout_s=60,
            program=self.program,
        )
        return result.returncode, result.stdout


@pytest.fixture
def cluster(podman: Podman, image: str) -> Iterator[Compose]:
    busy = [port for port in PORTS if not port_is_free(port)]
    if busy:
        pytest.fail(f"ports {busy} are in use: the compose cluster listens on {PORTS}")
    compose = Compose(podman, f"bbnode-ops-{uuid.uuid4().hex[:8]}")
    try:
        compose.run("up", "--detach", "--no-build")
        yield compose
    finally:
        compose.podman.try_run(
            ["-p", compose.project, "-f", str(COMPOSE_FILE), "down", "--volumes", "-t", "30"],
            timeout_s=180,
            program=compose.program,
        )


def test_cluster_meshes_and_tears_down(cluster: Compose, podman: Podman) -> None:
    def peer_id(service: str) -> str | None:
        code, out = cluster.exec(service, "bbnode", "peer-id", "--key", KEY)
        found = peer_ids_in(out)
        return found.pop() if code == 0 and len(found) == 1 else None

    ids: dict[str, str] = {}
    for service in SERVICES:
        ids[service] = eventually(f"{service} identity", functools.partial(peer_id, service), 90)
    assert len(set(ids.values())) == 3

    def meshed() -> bool | None:
        for service in SERVICES:
            code, out = cluster.exec(service, "bbnode", "ctl", "--socket", CONTROL_SOCKET, "peers")
            others = {ids[s] for s in SERVICES if s != service}
            if code != 0 or not others <= peer_ids_in(out):
                return None
        return True

    def report() -> str:
        lines = [f"peer ids: {ids}"]
        for service in SERVICES:
            _, peers = cluster.exec(service, "bbnode", "ctl", "--socket", CONTROL_SOCKET, "peers")
            lines.append(f"{service} peers: {sorted(peer_ids_in(peers))}")
        lines.append(
            cluster.podman.try_run(
                ["-p", cluster.project, "-f", str(COMPOSE_FILE), "logs", "--tail", "5"],
                program=cluster.program,
            ).stdout[-4000:]
        )
        return "\n".join(lines)

    eventually("every node knows the other two", meshed, 90, diag=report)
    for service in SERVICES:
        code, _ = cluster.exec(service, "bbnode", "ctl", "--socket", CONTROL_SOCKET, "health")
        assert code == 0

    cluster.run("down", "--volumes", "-t", "30")
    label = f"label=io.podman.compose.project={cluster.project}"
    assert podman.run(["ps", "--all", "--quiet", "--filter", label]).strip() == ""
    volumes = podman.run(["volume", "ls", "--quiet"]).split()
    assert [v for v in volumes if v.startswith(cluster.project)] == []
    assert all(port_is_free(port) for port in PORTS)
