"""Config for daemons run inside the test process (``Daemon(config).serve()`` under trio)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bbnode.config import parse_config
from tests.daemon._harness import free_port

__all__ = ["inprocess_config"]


def inprocess_config(
    state: Path, port: int | None = None, bootstrap: str = "", heartbeat: bool = False
) -> Any:
    """A quiet node on 127.0.0.1 (``port`` or a free one): no peer exchange, no pubsub, no
    periodic snapshots, heartbeat only when asked for, warnings only in the logs."""
    boot = f'bootstrap = ["{bootstrap}"]' if bootstrap else ""
    return parse_config(
        f"""
[node]
state_dir = "{state}"
listen = ["/ip4/127.0.0.1/tcp/{free_port() if port is None else port}"]
{boot}
[snapshot]
interval_s = 3600
[log]
level = "warning"
format = "json"
[protocols.peer_exchange]
enabled = false
[protocols.pubsub]
enabled = false
[protocols.heartbeat]
enabled = {"true" if heartbeat else "false"}
"""
    )
