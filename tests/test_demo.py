"""`bbnode demo` end to end: real daemons on 127.0.0.1, every step seen, clean exit."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bbnode.demo import main


@pytest.mark.slow
def test_demo_runs_every_step_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["--nodes", "3", "--timeout-s", "30"]) == 0
    out = capsys.readouterr().out
    for line in (
        "1. The mesh forms through peer exchange",
        "node3 has learned of every other node",
        "2. A message published on one node arrives on the others",
        "node2 received it",
        "node3 received it",
        "3. node3 is killed; the others report it down",
        "node1 reports node3 DOWN",
        "node2 reports node3 DOWN",
        "4. node3 restarts from its snapshot and comes back up",
        "node1 reports node3 UP",
        "5. node1 blocks node2 at runtime; node2 is cut off",
        "node3 received it (it has not blocked node2)",
        "node1 did not: messages from a blocked peer are never delivered",
        "Done: all nodes stopped.",
    ):
        assert line in out
    assert list(tmp_path.iterdir()) == []


def test_demo_rejects_a_bad_mesh_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nodes", "2"]) == 2
    assert "--nodes must be between 3 and 8, got 2" in capsys.readouterr().err
    assert main(["--bogus"]) == 2
