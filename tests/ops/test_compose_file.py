"""deploy/compose.yaml: three nodes, one bootstrap, per-node configs and volumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.opsutil import read_toml

pytestmark = pytest.mark.ops


def compose(repo: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((repo / "deploy/compose.yaml").read_text())
    return data


def node_config(repo: Path, service: dict[str, Any]) -> dict[str, Any]:
    (source,) = [v.split(":")[0] for v in service["volumes"] if ":/etc/bbnode/bbnode.toml" in v]
    return read_toml(repo / "deploy" / source)


def test_three_nodes_with_their_own_volumes(repo: Path) -> None:
    data = compose(repo)
    services = data["services"]
    assert sorted(services) == ["node1", "node2", "node3"]
    state = {name: s["volumes"][0] for name, s in services.items()}
    assert state == {f"node{n}": f"node{n}-state:/var/lib/bbnode" for n in (1, 2, 3)}
    assert sorted(data["volumes"]) == ["node1-state", "node2-state", "node3-state"]


def test_node1_bootstraps_the_others(repo: Path) -> None:
    services = compose(repo)["services"]
    configs = {name: node_config(repo, s)["node"] for name, s in services.items()}
    assert configs["node1"]["bootstrap"] == []
    listen1 = configs["node1"]["listen"]
    assert configs["node2"]["bootstrap"] == listen1
    assert configs["node3"]["bootstrap"] == listen1
    assert services["node2"]["depends_on"] == services["node3"]["depends_on"] == ["node1"]
    ports = {c["listen"][0] for c in configs.values()}
    assert len(ports) == 3


def test_every_node_keeps_the_image_layout_and_stops_gracefully(repo: Path) -> None:
    data = compose(repo)
    for service in data["services"].values():
        config = node_config(repo, service)
        assert config["node"]["state_dir"] == "/var/lib/bbnode"
        assert config["control"]["socket"] == "control.sock"
        assert service["stop_signal"] == "SIGTERM"
        grace_s = int(service["stop_grace_period"].removesuffix("s"))
        assert grace_s >= 2 * config["node"]["shutdown_grace_s"]
        assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
