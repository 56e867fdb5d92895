"""Three real daemons: connect, PeerDown on SIGKILL, restart with restored state, SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.daemon._harness import make_node, running, wait_for

pytestmark = pytest.mark.slow

# Heartbeat 0.25 s, timeout 0.2 s, failure_threshold 2: a dead peer misses two pings within
# about 2 x (0.25 + 0.2) s; the bound below leaves room for a loaded CI machine.
PEER_DOWN_BOUND_S = 8.0


def test_three_nodes_peer_down_restart_restore_and_sigterm(tmp_path: Path) -> None:
    a = make_node(tmp_path, "a", 1)
    b = make_node(tmp_path, "b", 2)
    c = make_node(tmp_path, "c", 3)
    b.write_config(bootstrap=[a.address, c.address])
    c.write_config(bootstrap=[a.address])
    a.write_config(bootstrap=[c.address])
    with running(a, b, c):
        for node, others in ((a, (b, c)), (b, (a, c)), (c, (a, b))):
            wait_for(
                lambda n=node, o=others: {str(x.peer) for x in o} <= n.connected(),
                10,
                f"{node.name} connected to both others",
            )
        # A runtime ban with an expiry on c, to come back from c's snapshot.
        banned = make_node(tmp_path, "x", 9).peer
        written = c.count_log("snapshot_written")
        until = c.ctl("block", peer=str(banned), for_s=3600)["until_ns"]
        # A policy change checkpoints at once, not at the next interval.
        wait_for(lambda: c.count_log("snapshot_written") > written, 5, "checkpoint after block")

        c.signal(signal.SIGKILL)
        c.wait_exit()
        a.wait_log("peer_down", PEER_DOWN_BOUND_S, peer=str(c.peer))
        b.wait_log("peer_down", PEER_DOWN_BOUND_S, peer=str(c.peer))

        c.start()
        a.wait_log("peer_up", 10, peer=str(c.peer))
        b.wait_log("peer_up", 10, peer=str(c.peer))
        status = c.ctl("status")
        assert {"peer": str(banned), "until_ns": until, "source": "runtime"} in status["blocked"]
        # The address book came back: c knows a and b before anything reconnects it to b.
        peers = {row["peer"] for row in c.ctl("peers")}
        assert {str(a.peer), str(b.peer)} <= peers
        assert c.find_log("snapshot_restored") is not None

        for node in (a, b, c):
            node.signal(signal.SIGTERM)
        for node in (a, b, c):
            assert node.wait_exit() == 0
            assert node.find_log("final_snapshot_written") is not None
            assert node.find_log("node_stopped") is not None
