"""Every config file shipped for operations is accepted by the real config loader and puts
state, key and control socket where the image, the unit and the manifests expect them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from bbnode.config import load_config, parse_config
from tests.ops.opsutil import REPO, bbnode_executable

pytestmark = pytest.mark.ops

#: (file, expected control socket); state is /var/lib/bbnode everywhere.
SHIPPED = {
    "deploy/image/bbnode.toml": "/var/lib/bbnode/control.sock",
    "deploy/node1/bbnode.toml": "/var/lib/bbnode/control.sock",
    "deploy/node2/bbnode.toml": "/var/lib/bbnode/control.sock",
    "deploy/node3/bbnode.toml": "/var/lib/bbnode/control.sock",
    "systemd/bbnode.toml": "/run/bbnode/control.sock",
}


def test_every_shipped_config_is_listed() -> None:
    found = {
        str(p.relative_to(REPO))
        for p in [*REPO.glob("deploy/**/*.toml"), *REPO.glob("systemd/*.toml")]
    }
    assert found == set(SHIPPED)


@pytest.mark.parametrize(("name", "socket"), sorted(SHIPPED.items()))
def test_shipped_config_loads(name: str, socket: str) -> None:
    config = load_config(REPO / name)
    assert config.node.state_dir == Path("/var/lib/bbnode")
    assert config.node.key_file == Path("/var/lib/bbnode/identity.key")
    assert config.control.socket == Path(socket)


def test_configmap_toml_loads() -> None:
    configmap = yaml.safe_load((REPO / "deploy/k8s/configmap.yaml").read_text())
    config = parse_config(configmap["data"]["bbnode.toml"], "configmap.yaml:bbnode.toml")
    assert config.node.state_dir == Path("/var/lib/bbnode")
    assert [str(a) for a in config.node.bootstrap] == ["/dns4/bbnode-0.bbnode/tcp/7400"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_check_config_command_accepts_it(name: str) -> None:
    # The command the README's Operate section tells operators to run before (re)starting a node.
    bbnode = str(bbnode_executable())
    result = subprocess.run(
        [bbnode, "check-config", str(REPO / name)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
