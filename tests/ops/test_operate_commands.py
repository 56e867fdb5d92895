"""The operator commands of the README's Operate section against a real node on this host:
health, status, peers, block/unblock, snapshot verify/inspect, and the corrupt-snapshot
recovery story."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bbnode.ids import PeerId
from tests.ops.opsutil import find_key, free_port, node_toml, require_daemon
from tests.ops.podmanutil import eventually

pytestmark = pytest.mark.ops


class HostNode:
    """`bbnode run` in a temporary state directory, driven through `bbnode ctl`."""

    def __init__(self, bbnode: str, workdir: Path) -> None:
        self.bbnode = bbnode
        self.workdir = workdir
        self.state = workdir / "state"
        self.socket = self.state / "control.sock"
        self.config = workdir / "bbnode.toml"
        self.config.write_text(node_toml(state_dir=str(self.state), port=free_port()))
        self.log = workdir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.bbnode, "run", "--config", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

        def answering() -> bool | None:
            # `status`, not `health`: a node that lost its snapshot answers but may be unhealthy.
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()}")
            return True if self.ctl("status").returncode == 0 else None

        eventually("node answering", answering, 60, diag=str(self.log))

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.proc = None
        return code

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.bbnode, "ctl", "--socket", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.bbnode, *args], capture_output=True, text=True, timeout=30, check=False
        )

    def generations(self) -> list[Path]:
        return sorted((self.state / "snapshots").glob("snapshot-*.bbsnap"))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def node() -> Iterator[HostNode]:
    bbnode = require_daemon()
    # Short path: the control socket must fit in a Unix socket address.
    with tempfile.TemporaryDirectory(prefix="bbops-") as workdir:
        host = HostNode(bbnode, Path(workdir))
        try:
            yield host
        finally:
            host.kill()


def random_peer() -> str:
    return str(PeerId.from_public_key(os.urandom(32)))


def test_status_peers_health(node: HostNode) -> None:
    node.start()
    for command in ("status", "peers", "health"):
        result = node.ctl(command)
        assert result.returncode == 0, result.stderr
    assert node.stop() == 0


def test_block_and_unblock_a_peer(node: HostNode) -> None:
    node.start()
    peer = random_peer()
    before = len(node.generations())
    blocked = node.ctl("block", peer, "--for", "1h")
    assert blocked.returncode == 0, blocked.stderr
    # Every policy change is checkpointed (SPEC §6).
    eventually("checkpoint after block", lambda: len(node.generations()) > before or None, 30)
    unblocked = node.ctl("unblock", peer)
    assert unblocked.returncode == 0, unblocked.stderr

    bad = node.ctl("block", "not-a-peer-id")
    assert bad.returncode != 0
    assert "not-a-peer-id" in bad.stderr
    assert node.stop() == 0


def test_snapshot_verify_and_inspect(node: HostNode) -> None:
    node.start()
    assert node.ctl("snapshot").returncode == 0
    assert node.stop() == 0
    newest = node.generations()[-1]
    assert node.cli("snapshot", "verify", str(newest)).returncode == 0
    inspected = node.cli("snapshot", "inspect", str(newest), "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert isinstance(find_key(json.loads(inspected.stdout), "incarnation"), int)


def test_corrupt_newest_generation_is_kept_aside_and_the_previous_one_used(
    node: HostNode,
) -> None:
    node.start()
    assert node.ctl("snapshot").returncode == 0
    assert node.stop() == 0
    older, newest = node.generations()[-2:]
    older_incarnation = find_key(
        json.loads(node.cli("snapshot", "inspect", str(older), "--json").stdout), "incarnation"
    )
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0xFF  # a flipped payload byte: the checksum no longer matches
    newest.write_bytes(bytes(data))
    assert node.cli("snapshot", "verify", str(newest)).returncode == 1

    node.start()  # no crash loop: it comes up from the older generation
    assert node.ctl("health").returncode == 0
    aside = list(newest.parent.glob(newest.name + ".corrupt-*"))
    assert len(aside) == 1
    assert node.stop() == 0
    restored = node.generations()[-1]
    restored_incarnation = find_key(
        json.loads(node.cli("snapshot", "inspect", str(restored), "--json").stdout),
        "incarnation",
    )
    assert restored_incarnation == older_incarnation + 1


def test_no_valid_generation_starts_fresh_and_says_so(node: HostNode) -> None:
    node.start()
    assert node.stop() == 0
    for generation in node.generations():
        generation.write_bytes(b"garbage, not a snapshot")
    node.start()
    health = node.ctl("health")
    assert "snapshot_restore_failed" in health.stdout + health.stderr
    assert node.stop() == 0
