"""Helpers for the operations tests: locating tools and the daemon, reading repo files."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def tool(name: str, hint: str) -> str:
    """Absolute path of executable ``name`` (the venv's first), or fail saying how to get it."""
    candidate = VENV_BIN / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {hint} (.ci/ops installs it)", pytrace=False)
    return found


@functools.cache
def _missing_daemon_parts() -> str | None:
    missing = [
        mod
        for mod in ("bbnode.cli", "bbnode.config", "bbnode.daemon")
        if importlib.util.find_spec(mod) is None
    ]
    if missing:
        return "missing modules: " + ", ".join(missing)
    bbnode = bbnode_executable()
    if not bbnode.is_file():
        return f"no {bbnode} console script (pip install -e .)"
    usage = subprocess.run([bbnode, "--help"], capture_output=True, text=True, check=False)
    commands = ("run", "ctl", "peer-id", "check-config", "snapshot")
    offered = set(re.findall(r"^ {4}([a-z-]+)\b", usage.stdout, re.MULTILINE))
    absent = [c for c in commands if c not in offered]
    if usage.returncode != 0 or absent:
        return f"`bbnode --help` does not offer {absent or 'its commands'}: {usage.stderr}"
    return None


def require_daemon() -> str:
    """Path of the ``bbnode`` console script, failing clearly while the daemon is unwritten."""
    problem = _missing_daemon_parts()
    if problem is not None:
        pytest.fail(f"the bbnode daemon is not available yet ({problem})", pytrace=False)
    return str(bbnode_executable())


def bbnode_executable() -> Path:
    """The ``bbnode`` under test: ``$BBNODE_BIN`` when set, else the venv's console script."""
    override = os.environ.get("BBNODE_BIN")
    return Path(override) if override else VENV_BIN / "bbnode"


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file of the repository."""
    with path.open("rb") as f:
        return tomllib.load(f)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True when 127.0.0.1:``port`` can be bound (nobody listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As a listener would: TIME_WAIT leftovers of closed connections do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def node_toml(
    *,
    state_dir: str,
    port: int,
    bootstrap: list[str] | tuple[str, ...] = (),
    control_socket: str = "control.sock",
    extra: str = "",
) -> str:
    """A node config in the documented schema (SPEC §7), listening on 127.0.0.1:``port``."""
    boot = ", ".join(f'"{addr}"' for addr in bootstrap)
    return (
        "[node]\n"
        f'state_dir = "{state_dir}"\n'
        f'listen = ["/ip4/127.0.0.1/tcp/{port}"]\n'
        f"bootstrap = [{boot}]\n"
        "shutdown_grace_s = 5\n"
        "\n[control]\n"
        f'socket = "{control_socket}"\n'
        "\n[log]\n"
        'format = "json"\n' + extra
    )


PEER_ID = re.compile(r"\b(12D3KooW[1-9A-HJ-NP-Za-km-z]{44})\b")


def peer_ids_in(text: str) -> set[str]:
    """Every libp2p Ed25519 PeerId (``12D3KooW...``) mentioned in ``text``."""
    return set(PEER_ID.findall(text))


def find_key(data: Any, key: str) -> Any:
    """The value of the first ``key`` found anywhere in nested JSON data (or KeyError)."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        children: list[Any] = list(data.values())
    elif isinstance(data, list):
        children = data
    else:
        children = []
    for child in children:
        try:
            return find_key(child, key)
        except KeyError:
            continue
    raise KeyError(key)
