"""Real daemons bootstrapping from addresses without /p2p (identities learned in handshakes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon._harness import make_node, running, wait_for

pytestmark = pytest.mark.slow


def test_bootstrap_without_peer_id_connects_and_skips_self(tmp_path: Path) -> None:
    seed = make_node(tmp_path, "seed", 1)
    joiner = make_node(tmp_path, "joiner", 2)
    bare_seed = f"/ip4/127.0.0.1/tcp/{seed.port}"
    # One shared list, as a container cluster would give every node: the seed names itself.
    seed.write_config(bootstrap=[bare_seed])
    joiner.write_config(bootstrap=[bare_seed])
    with running(seed, joiner):
        wait_for(lambda: str(seed.peer) in joiner.connected(), 10, "joiner linked to the seed")
        wait_for(lambda: str(joiner.peer) in seed.connected(), 10, "seed sees the joiner")
        learned = joiner.wait_log("bootstrap_peer_learned")
        assert learned["peer"] == str(seed.peer)
        seed.wait_log("bootstrap_is_self", address=bare_seed)
        assert seed.find_log("bootstrap_peer_learned") is None
        assert str(seed.peer) not in seed.connected()
