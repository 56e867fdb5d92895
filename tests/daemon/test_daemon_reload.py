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
        # b keeps trying (heartbeat pings → dials) and is refused after every handshake.
        wait_for(
            lambda: a.ctl("status")["counters"].get("conn.refused.peer_blocklisted", 0) >= 2,
            10,
            "b refused again",
        )
        assert str(b.peer) not in a.connected()

        a.config_path.write_text('[peers]\nblock = ["not-a-peer"]\n')
        a.signal(signal.SIGHUP)
        a.wait_log("config_reload_rejected")
        refused = a.ctl("status")["counters"]["conn.refused.peer_blocklisted"]
        wait_for(
            lambda: a.ctl("status")["counters"]["conn.refused.peer_blocklisted"] > refused,
            10,
            "old policy still refusing b",
        )
        assert str(b.peer) not in a.connected()
        a.signal(signal.SIGTERM)
        assert a.wait_exit() == 0
