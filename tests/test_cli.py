"""The offline `bbnode` commands: keygen, peer-id, check-config, snapshot inspect/verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bbnode.cli import COMMANDS, build_parser, main
from bbnode.ids import PeerId
from bbnode.keyfile import load_key
from bbnode.store import GenerationStore, encode_snapshot_file

REPO = Path(__file__).resolve().parent.parent


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# -- general ---------------------------------------------------------------------------------
def test_help_and_version_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for command in ("keygen", "peer-id", "check-config", "snapshot"):
        assert command in out
    code, out, _ = run(["--version"], capsys)
    assert (code, out) == (0, "bbnode 0.1.0\n")


@pytest.mark.parametrize(
    "argv", [[], ["frobnicate"], ["snapshot"], ["snapshot", "inspect"], ["check-config"]]
)
def test_usage_errors_exit_two(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert "usage: bbnode" in err


def test_commands_are_a_table() -> None:
    assert [c.name for c in COMMANDS] == [
        "run",
        "ctl",
        "keygen",
        "peer-id",
        "check-config",
        "snapshot",
        "demo",
    ]
    keygen = next(c for c in COMMANDS if c.name == "keygen")
    assert build_parser((keygen,)).parse_args(["keygen"]).command == "keygen"


# -- keygen / peer-id ------------------------------------------------------------------------
def test_keygen_then_peer_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_path = tmp_path / "keys" / "node.key"
    code, out, err = run(["keygen", "--out", str(key_path)], capsys)
    assert code == 0
    peer = PeerId.from_string(out.strip())
    assert out.startswith("12D3KooW")
    assert err == f"wrote a new Ed25519 identity key to {key_path}\n"
    assert (key_path.stat().st_mode & 0o777) == 0o600
    assert load_key(key_path).peer_id == peer
    assert run(["peer-id", "--key", str(key_path)], capsys) == (0, f"{peer}\n", "")


def test_keygen_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_path = tmp_path / "node.key"
    assert run(["keygen", "--out", str(key_path)], capsys)[0] == 0
    before = key_path.read_bytes()
    code, out, err = run(["keygen", "--out", str(key_path)], capsys)
    assert (code, out) == (1, "")
    assert err == f"{key_path}: a key file already exists; refusing to overwrite it\n"
    assert key_path.read_bytes() == before


def test_keygen_defaults_to_the_run_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["keygen"], capsys)
    assert code == 0
    assert load_key(tmp_path / ".bbnode" / "identity.key").peer_id == PeerId.from_string(
        out.strip()
    )
    assert run(["peer-id"], capsys)[1] == out


def test_peer_id_errors_exit_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["peer-id", "--key", str(tmp_path / "absent.key")], capsys)
    assert (code, out) == (1, "")
    assert err == f"{tmp_path / 'absent.key'}: key file does not exist\n"
    loose = tmp_path / "loose.key"
    assert run(["keygen", "--out", str(loose)], capsys)[0] == 0
    loose.chmod(0o644)
    code, _, err = run(["peer-id", "--key", str(loose)], capsys)
    assert code == 1
    assert err.startswith(f"{loose}")
    assert len(err.splitlines()) == 1


# -- check-config ----------------------------------------------------------------------------
def test_check_config_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["check-config", str(REPO / "config" / "bbnode.toml")], capsys)
    assert code == 0
    assert err == ""
    assert out.splitlines()[0] == f"{REPO / 'config' / 'bbnode.toml'}: ok"
    assert "listen     /ip4/127.0.0.1/tcp/7400" in out


def test_check_config_prints_every_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bbnode.toml").write_text(
        '[peers]\nblock = ["x", "y"]\n[snapshot]\nkepe = 2\n[log]\nlevel = "loud"\n'
    )
    code, out, err = run(["check-config", "bbnode.toml"], capsys)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert [line.split(": ")[1] for line in lines[:4]] == [
        "peers.block[0]",
        "peers.block[1]",
        "snapshot.kepe",
        "log.level",
    ]
    assert lines[0].startswith("bbnode.toml: peers.block[0]: not a valid peer id: ")
    assert "(did you mean 'keep'?)" in lines[2]
    assert lines[4] == "bbnode.toml: 4 problems"


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    assert run(["check-config", str(missing)], capsys) == (
        2,
        "",
        f"{missing}: cannot read config file: No such file or directory\n{missing}: 1 problem\n",
    )


# -- snapshot verify / inspect on damaged files (no engine needed) ----------------------------
def test_verify_rejects_damaged_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = GenerationStore(tmp_path).save_payload(b"payload")
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    for action in ("verify", "inspect"):
        code, out, err = run(["snapshot", action, str(path)], capsys)
        assert (code, out) == (1, "")
        assert err.startswith(f"{path}: invalid snapshot file: checksum mismatch: ")
    future = tmp_path / "future.bbsnap"
    data = encode_snapshot_file(b"x")
    future.write_bytes(data[:8] + b"\x00\x07" + data[10:])
    code, _, err = run(["snapshot", "verify", str(future)], capsys)
    assert code == 1
    assert err == (
        f"{future}: invalid snapshot file: file format version 7, this bbnode reads versions 1, 2\n"
    )


def test_verify_missing_file_and_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "absent.bbsnap"
    assert run(["snapshot", "verify", str(missing)], capsys) == (
        2,
        "",
        f"{missing}: cannot read: No such file or directory\n",
    )
    assert run(["snapshot", "inspect", str(tmp_path)], capsys) == (
        2,
        "",
        f"{tmp_path}: directory holds no snapshot generation\n",
    )


def test_verify_never_moves_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = GenerationStore(tmp_path).save_payload(b"junk that is not a snapshot")
    path.write_bytes(b"garbage" * 10)
    before = sorted(os.listdir(tmp_path))
    assert run(["snapshot", "verify", str(tmp_path)], capsys)[0] == 1
    assert sorted(os.listdir(tmp_path)) == before


def test_console_script_runs() -> None:
    bbnode = Path(sys.executable).parent / "bbnode"
    proc = subprocess.run(
        [str(bbnode), "check-config", str(REPO / "config" / "cluster" / "node2.toml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "bootstrap  /ip4/127.0.0.1/tcp/7401" in proc.stdout


# -- snapshot inspect / verify on a real engine snapshot ---------------------------------------
def _saved_snapshot(directory: Path) -> tuple[Path, PeerId]:
    from bbnode.engine.node import Node, NodeConfig
    from bbnode.ids import Address
    from bbnode.store import SnapshotStore

    me = PeerId.from_u64(500)
    node = Node(me, config=NodeConfig(rng_seed=3))
    node.add_peer(PeerId.from_u64(1), [Address.tcp("10.0.0.1", 7400)])
    node.block_peer(PeerId.from_u64(2), until_ns=5_000_000_000)
    return SnapshotStore(directory).save(node.snapshot()), me


def test_verify_and_inspect_a_real_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, me = _saved_snapshot(tmp_path)
    code, out, err = run(["snapshot", "verify", str(path)], capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"{path}: ok (format 2, spec_version 1, incarnation 0, ")
    code, out, _ = run(["snapshot", "verify", "--json", str(path)], capsys)
    info = json.loads(out)
    assert (code, info["ok"], info["spec_version"], info["file"]) == (0, True, 1, str(path))
    code, out, _ = run(["snapshot", "inspect", str(path)], capsys)
    assert code == 0
    assert f"peer id          {me}" in out
    assert f"{PeerId.from_u64(1)}  refs=" in out
    assert f"{PeerId.from_u64(2)}  until_ns=5000000000  source=runtime" in out
    code, out, err = run(["snapshot", "inspect", "--json", str(tmp_path)], capsys)
    summary = json.loads(out)
    assert code == 0
    assert err == f"using newest generation {path}\n"
    assert summary["peer_id"] == str(me)
    assert summary["bans"] == [
        {"peer": str(PeerId.from_u64(2)), "until_ns": 5_000_000_000, "source": "runtime"}
    ]
    assert summary["peers"][0]["addresses"] == ["/ip4/10.0.0.1/tcp/7400"]
