"""deploy/k8s: valid against the Kubernetes schemas (offline, kubernetes-validate) and wired
together as the operations contract says (headless Service, probes, grace period, PVCs)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.opsutil import tool

pytestmark = pytest.mark.ops

HEALTH = ["bbnode", "ctl", "--socket", "/var/lib/bbnode/control.sock", "health"]


def manifests(repo: Path) -> list[Path]:
    return sorted((repo / "deploy/k8s").glob("*.yaml"))


def load(repo: Path) -> dict[str, dict[str, Any]]:
    """Kind -> the one resource of that kind under deploy/k8s."""
    out: dict[str, dict[str, Any]] = {}
    for path in manifests(repo):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in out, f"{path}: second {doc['kind']}"
            out[doc["kind"]] = doc
    return out


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    validator = tool("kubernetes-validate", "pip install kubernetes-validate")
    return subprocess.run(
        [validator, "--strict", "--no-warn", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_manifest_validates_strictly(repo: Path) -> None:
    paths = manifests(repo)
    assert [p.name for p in paths] == [
        "configmap.yaml",
        "poddisruptionbudget.yaml",
        "service.yaml",
        "statefulset.yaml",
    ]
    result = validate(*paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(paths)


def test_validator_rejects_a_misspelt_field(repo: Path, tmp_path: Path) -> None:
    # Guards the check above: strict validation does catch a typo in the pod spec.
    text = (repo / "deploy/k8s/statefulset.yaml").read_text()
    bad = tmp_path / "statefulset.yaml"
    bad.write_text(text.replace("terminationGracePeriodSeconds", "terminationGracePeriod"))
    result = validate(bad)
    assert result.returncode == 1
    assert "terminationGracePeriod" in result.stdout + result.stderr


def test_headless_service_backs_the_statefulset(repo: Path) -> None:
    res = load(repo)
    svc, sts = res["Service"], res["StatefulSet"]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["spec"]["selector"] == sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert svc["spec"]["ports"] == [
        {"name": "p2p", "port": 7400, "targetPort": "p2p", "protocol": "TCP"}
    ]


def test_pod_runs_the_node_with_its_config_and_state(repo: Path) -> None:
    res = load(repo)
    sts, cm = res["StatefulSet"], res["ConfigMap"]
    config = tomllib.loads(cm["data"]["bbnode.toml"])
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert container["args"] == ["run", "--config", "/etc/bbnode/bbnode.toml"]
    assert mounts[claim["metadata"]["name"]]["mountPath"] == config["node"]["state_dir"]
    assert mounts["config"] == {"name": "config", "mountPath": "/etc/bbnode", "readOnly": True}
    assert pod["volumes"] == [{"name": "config", "configMap": {"name": cm["metadata"]["name"]}}]
    assert config["node"]["listen"] == ["/ip4/0.0.0.0/tcp/7400"]
    assert config["node"]["bootstrap"] == ["/dns4/bbnode-0.bbnode/tcp/7400"]
    assert config["control"]["socket"] == "control.sock"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_probes_ask_the_node_for_its_health(repo: Path) -> None:
    (container,) = load(repo)["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["exec"]["command"] == HEALTH
    assert container["livenessProbe"]["exec"]["command"] == HEALTH


def test_grace_period_exceeds_the_daemon_shutdown_grace(repo: Path) -> None:
    res = load(repo)
    config = tomllib.loads(res["ConfigMap"]["data"]["bbnode.toml"])
    pod = res["StatefulSet"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 2 * config["node"]["shutdown_grace_s"]


def test_pod_runs_as_the_image_user_without_privileges(repo: Path) -> None:
    pod = load(repo)["StatefulSet"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["fsGroup"] == 10001
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
