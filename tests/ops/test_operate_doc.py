"""The README's Operate section: every command in it is exercised somewhere, and the
references hold.

Each shell line of the document's ```bash blocks must appear in EXERCISED with the test that
runs it (verbatim, or with only this sandbox's extra podman flags: --pull=never, --network
host, a test tag). A command that cannot run here must be listed in NOT_HERE with the reason,
so a new command in the docs fails this test until someone decides how it is checked.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.ops.opsutil import REPO

pytestmark = pytest.mark.ops

README = REPO / "README.md"


def operate_section() -> str:
    """The README from its ``## Operate`` heading up to the next ``## `` heading."""
    text = README.read_text()
    start = text.index("\n## Operate\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


HERE = Path(__file__).parent

_SYSTEMD = "test_systemd_container.py::test_start_reload_stop_under_systemd"
_CONTAINER = "test_container.py::test_two_containers_mesh_publish_stop_and_restart"
_COMPOSE = "test_compose_up.py::test_cluster_meshes_and_tears_down"
_COMMANDS = "test_operate_commands.py::"

EXERCISED: dict[str, str] = {
    "bbnode check-config /etc/bbnode/bbnode.toml": (
        "test_deploy_configs.py::test_check_config_command_accepts_it"
    ),
    # Run verbatim by tests/ops/systemd/Containerfile, then by the test.
    "python3 -m venv /opt/bbnode": _SYSTEMD,
    "/opt/bbnode/bin/pip install .": _SYSTEMD,
    "ln -s /opt/bbnode/bin/bbnode /usr/local/bin/bbnode": _SYSTEMD,
    "useradd --system --home-dir /var/lib/bbnode --shell /usr/sbin/nologin bbnode": _SYSTEMD,
    "install -D -m 0640 -g bbnode systemd/bbnode.toml /etc/bbnode/bbnode.toml": _SYSTEMD,
    "install -m 0644 systemd/bbnode.service /etc/systemd/system/bbnode.service": _SYSTEMD,
    "systemctl daemon-reload": _SYSTEMD,
    "systemctl enable --now bbnode": _SYSTEMD,
    "systemctl reload bbnode": _SYSTEMD,
    "systemctl stop bbnode": _SYSTEMD,
    "systemctl status bbnode": _SYSTEMD,
    "journalctl -u bbnode": _SYSTEMD,
    "podman build --format docker -t bbnode .": "conftest.py::image",
    "podman run -d --name bbnode --network host -v bbnode-state:/var/lib/bbnode "
    '-v "$PWD/bbnode.toml:/etc/bbnode/bbnode.toml:ro" bbnode': _CONTAINER,
    "podman healthcheck run bbnode": _CONTAINER,
    "podman exec bbnode bbnode ctl --socket /var/lib/bbnode/control.sock peers": _CONTAINER,
    "podman stop --time 30 bbnode": _CONTAINER,
    "podman build --format docker -t localhost/bbnode:latest .": "conftest.py::image",
    "podman-compose -f deploy/compose.yaml up -d": _COMPOSE,
    "podman-compose -f deploy/compose.yaml exec -T node2 bbnode ctl "
    "--socket /var/lib/bbnode/control.sock peers": _COMPOSE,
    "podman-compose -f deploy/compose.yaml down --volumes": _COMPOSE,
    "kubernetes-validate --strict deploy/k8s/*.yaml": (
        "test_k8s_manifests.py::test_every_manifest_validates_strictly"
    ),
    'bbnode ctl --socket /run/bbnode/control.sock block "$PEER" --for 1h': (
        _COMMANDS + "test_block_and_unblock_a_peer"
    ),
    'bbnode ctl --socket /run/bbnode/control.sock unblock "$PEER"': (
        _COMMANDS + "test_block_and_unblock_a_peer"
    ),
    "bbnode snapshot verify /var/lib/bbnode/snapshots/snapshot-0000000042.bbsnap": (
        _COMMANDS + "test_snapshot_verify_and_inspect"
    ),
    "bbnode snapshot inspect /var/lib/bbnode/snapshots/snapshot-0000000042.bbsnap --json": (
        _COMMANDS + "test_snapshot_verify_and_inspect"
    ),
}

NOT_HERE: dict[str, str] = {
    "kubectl apply -f deploy/k8s/": (
        "needs a Kubernetes cluster; the same files are validated offline against the "
        "Kubernetes schemas by test_k8s_manifests.py"
    ),
}


def doc_commands() -> list[str]:
    """Every non-blank, non-comment line inside the document's ```bash fences."""
    blocks = re.findall(r"^```bash\n(.*?)^```", operate_section(), re.MULTILINE | re.DOTALL)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def defined_names(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def test_every_command_is_accounted_for() -> None:
    commands = doc_commands()
    assert len(commands) == len(set(commands)), "a command is repeated in the docs"
    assert set(commands) == set(EXERCISED) | set(NOT_HERE)
    assert not set(EXERCISED) & set(NOT_HERE)


@pytest.mark.parametrize("where", sorted(set(EXERCISED.values())))
def test_exercising_test_exists(where: str) -> None:
    module, _, name = where.partition("::")
    assert name in defined_names(HERE / module)


def test_operate_doc_names_real_files() -> None:
    text = operate_section()
    paths = re.findall(r"`((?:deploy|systemd)/[\w./-]+)`", text)
    assert "deploy/compose.yaml" in paths
    for path in paths:
        # deploy/nodeN/... stands for node1..node3.
        for concrete in [path.replace("nodeN", f"node{n}") for n in (1, 2, 3)]:
            assert (REPO / concrete).exists(), concrete
