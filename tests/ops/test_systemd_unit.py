"""systemd/bbnode.service: `systemd-analyze verify` is clean and the unit asks for what the
operations contract lists (notify type, reload by SIGHUP, watchdog, directories, hardening)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ops.opsutil import read_toml, tool
from tests.ops.unitfile import UNIT, parse_unit, seconds, service

pytestmark = pytest.mark.ops

SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def verify_root(tmp_path: Path, unit_text: str) -> Path:
    """An alternate root holding the unit, its executables and the stock system units.

    `systemd-analyze verify` checks that ExecStart= exists; with --root it looks inside this
    tree, so the test does not depend on bbnode being installed in /usr/local/bin.
    """
    root = tmp_path / "root"
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    exe = root / "usr/local/bin/bbnode"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    shutil.copy2("/bin/kill", root / "bin/kill")
    (root / "etc/systemd/system/bbnode.service").write_text(unit_text)
    return root


def analyze_verify(root: Path) -> subprocess.CompletedProcess[str]:
    analyze = tool("systemd-analyze", "apt-get install systemd")
    return subprocess.run(
        [analyze, "verify", f"--root={root}", "/etc/systemd/system/bbnode.service"],
        capture_output=True,
        text=True,
        check=False,
    )


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    result = analyze_verify(verify_root(tmp_path, UNIT.read_text()))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_systemd_analyze_verify_reports_unknown_keys(tmp_path: Path) -> None:
    # Guards the check above: verify exits 0 on unknown keys, so the test must read its output.
    text = UNIT.read_text().replace("[Service]\n", "[Service]\nBogusKey=1\n")
    result = analyze_verify(verify_root(tmp_path, text))
    assert "Unknown key 'BogusKey' in section [Service]" in result.stderr


def test_service_contract() -> None:
    svc = service()
    assert svc["Type"] == "notify"
    assert svc["NotifyAccess"] == "main"
    assert svc["ExecStart"] == "/usr/local/bin/bbnode run --config /etc/bbnode/bbnode.toml"
    assert svc["ExecReload"] == "kill -HUP $MAINPID"
    assert svc["Restart"] == "on-failure"
    assert svc["User"] == svc["Group"] == "bbnode"
    assert svc["StateDirectory"] == "bbnode"
    assert svc["RuntimeDirectory"] == "bbnode"
    assert svc["ConfigurationDirectory"] == "bbnode"
    assert seconds(svc["WatchdogSec"]) == 30
    assert int(svc["LimitNOFILE"]) >= 4096


def test_hardening() -> None:
    svc = service()
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter": "@system-service",
    }
    assert {key: svc.get(key) for key in expected} == expected


def test_stop_timeout_leaves_room_for_the_graceful_shutdown(repo: Path) -> None:
    grace = read_toml(repo / "systemd/bbnode.toml")["node"]["shutdown_grace_s"]
    assert seconds(service()["TimeoutStopSec"]) >= 2 * grace


def test_example_config_uses_the_unit_directories(repo: Path) -> None:
    config = read_toml(repo / "systemd/bbnode.toml")
    assert config["node"]["state_dir"] == "/var/lib/" + service()["StateDirectory"]
    assert config["control"]["socket"] == "/run/" + service()["RuntimeDirectory"] + "/control.sock"


def test_unit_installs_into_multi_user() -> None:
    assert parse_unit()["Install"] == [("WantedBy", "multi-user.target")]
