"""systemd/bbnode.service under a real systemd: PID 1 of a podman container.

The container is built from tests/ops/systemd/Containerfile, which installs bbnode with the
exact commands of the README's Operate section. The test then drives the unit as an operator would:
`systemctl enable --now` (returns only after the daemon's READY=1, since Type=notify),
`bbnode ctl health`, `systemctl reload` (SIGHUP, same main PID), `systemctl stop` (clean exit,
final snapshot), and a watchdog restart: a frozen daemon stops pinging and systemd restarts it.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.opsutil import REPO, require_daemon
from tests.ops.podmanutil import BUILD_ARGS, Podman, eventually

pytestmark = pytest.mark.ops

CONTAINERFILE = Path(__file__).parent / "systemd" / "Containerfile"
IMAGE = "localhost/bbnode-ops-systemd:test"
SOCKET = "/run/bbnode/control.sock"


class Machine:
    """A running systemd container; ``sh`` runs a command in it."""

    def __init__(self, podman: Podman, name: str) -> None:
        self.podman = podman
        self.name = name

    def sh(self, command: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return self.podman.try_run(["exec", self.name, "sh", "-c", command], timeout_s=timeout_s)

    def ok(self, command: str, timeout_s: float = 120) -> str:
        result = self.sh(command, timeout_s)
        assert result.returncode == 0, (
            f"{command}: {result.stdout}{result.stderr}\n{self.journal()}"
        )
        return result.stdout

    def prop(self, name: str) -> str:
        return self.ok(f"systemctl show --property={name} --value bbnode").strip()

    def journal(self) -> str:
        return self.sh("journalctl -u bbnode --no-pager | tail -n 40").stdout


@pytest.fixture(scope="session")
def systemd_image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The systemd machine image, built once per session from a copy of the sources."""
    require_daemon()
    context = tmp_path_factory.mktemp("systemd-context")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, context / name)
    for name in ("bbnode", "systemd"):
        shutil.copytree(REPO / name, context / name, ignore=ignore)
    podman.run([*BUILD_ARGS, "-f", str(CONTAINERFILE), "-t", IMAGE, str(context)], timeout_s=900)
    return IMAGE


@pytest.fixture
def machine(podman: Podman, systemd_image: str) -> Iterator[Machine]:
    name = f"bbnode-ops-systemd-{uuid.uuid4().hex[:8]}"
    # --network none: a private loopback, so the unit's port 7400 collides with nothing.
    podman.run(
        ["run", "--detach", "--systemd=always", "--network", "none", "--name", name, systemd_image]
    )
    box = Machine(podman, name)
    try:

        def booted() -> bool | None:
            state = box.sh("systemctl is-system-running").stdout.strip()
            return True if state in ("running", "degraded") else None

        eventually("systemd booted in the container", booted, 60)
        yield box
    finally:
        podman.try_run(["rm", "--force", "--time", "0", name])


def test_start_reload_stop_under_systemd(machine: Machine) -> None:
    machine.ok("systemctl daemon-reload")
    machine.ok("systemctl enable --now bbnode")  # Type=notify: waits for READY=1
    assert machine.prop("ActiveState") == "active"
    pid = machine.prop("MainPID")
    uid = machine.ok("id -u bbnode").strip()
    status = machine.ok(f"cat /proc/{pid}/status")
    uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uids.split()[1:] == [uid] * 4
    machine.ok(f"bbnode ctl --socket {SOCKET} health")

    machine.ok("systemctl reload bbnode")
    eventually("reloaded", lambda: machine.prop("SubState") == "running" or None, 30)
    assert machine.prop("MainPID") == pid
    assert machine.prop("NRestarts") == "0"
    machine.ok(f"bbnode ctl --socket {SOCKET} health")

    machine.ok("systemctl stop bbnode")
    assert machine.prop("ActiveState") == "inactive"
    assert machine.prop("Result") == "success"
    assert machine.prop("ExecMainStatus") == "0"
    snapshots = machine.ok("ls /var/lib/bbnode/snapshots").split()
    assert any(name.endswith(".bbsnap") for name in snapshots)
    assert machine.sh("systemctl status bbnode --no-pager").returncode == 3  # inactive
    assert "Stopped bbnode.service" in machine.ok("journalctl -u bbnode --no-pager")


def test_watchdog_restarts_a_frozen_daemon(machine: Machine) -> None:
    # A short watchdog via a drop-in, so the test waits seconds instead of the unit's 30 s;
    # TimeoutAbortSec bounds how long systemd waits after SIGABRT to a stopped process.
    machine.ok(
        "mkdir -p /etc/systemd/system/bbnode.service.d && printf "
        "'[Service]\\nWatchdogSec=3s\\nTimeoutAbortSec=5s\\n' "
        "> /etc/systemd/system/bbnode.service.d/test-watchdog.conf"
    )
    machine.ok("systemctl daemon-reload")
    machine.ok("systemctl start bbnode")
    frozen = machine.prop("MainPID")
    machine.ok(f"kill -STOP {frozen}")

    def restarted() -> bool | None:
        pid, restarts, state = (
            machine.prop("MainPID"),
            machine.prop("NRestarts"),
            machine.prop("ActiveState"),
        )
        return True if (restarts, state) == ("1", "active") and pid not in ("0", frozen) else None

    eventually("watchdog restart", restarted, 90, diag=machine.journal())
    assert "Watchdog timeout" in machine.ok("journalctl -u bbnode --no-pager")
    machine.ok(f"bbnode ctl --socket {SOCKET} health")
