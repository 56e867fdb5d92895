"""SIGHUP reload: a new blocklist disconnects at once; a bad file keeps the old policy."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.daemon._harness import make_node, running, wait_for

pytestmark = pytest.mark.slow


def test_sighup_blocklist_and_bad_file(tmp_path: Path) -> None:
    a = make_node(tmp_path, "a", 1)
    b = make_node(tmp_path, "b", 2)
    b.write_config(bootstrap=[a.address])
    with running(a, b):
        wait_for(lambda: str(b.peer) in a.connected(), 10, "b connected to a")
        a.write_config(block=[str(b.peer)])
        a.signal(signal.SIGHUP)
        a.wait_log("config_reloaded")
        wait_for(lambda: str(b.peer) not in a.connected(), 1.0, "b disconnected within 1 s")
        # b tries again (heartbeat pings → dials), is refused after the handshake, and
        # backs off instead of redialing at once (see bbnode.daemon.redial).
        wait_for(
            lambda: a.ctl("status")["counters"].get("conn.refused.peer_blocklisted", 0) >= 1,
            10,
            "b refused after its handshake",
        )
        b.wait_log("peer_hung_up_after_handshake", peer=str(a.peer))
        assert str(b.peer) not in a.connected()
        banned = {"peer": str(b.peer), "until_ns": None, "source": "config"}
        assert banned in a.ctl("status")["blocked"]

        a.config_path.write_text('[peers]\nblock = ["not-a-peer"]\n')
        a.signal(signal.SIGHUP)
        rejected = a.wait_log("config_reload_rejected")
        assert "not-a-peer" in rejected["reason"]
        # The old policy stays in force.
        assert banned in a.ctl("status")["blocked"]
        assert str(b.peer) not in a.connected()
        a.signal(signal.SIGTERM)
        assert a.wait_exit() == 0
