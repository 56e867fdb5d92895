"""Key files on a real filesystem: mode 0600, refusal of open permissions, malformed files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bbnode.keyfile import load_key, load_or_create_key, save_key
from bbnode.wire import IdentityKey, KeyFileError

SPEC_PRIVATE = bytes.fromhex(
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_save_then_load_round_trips_with_mode_0600(tmp_path: Path) -> None:
    key = IdentityKey.generate()
    path = save_key(key, tmp_path / "identity.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == key.to_bytes()
    assert load_key(path) == key
    assert [p.name for p in tmp_path.iterdir()] == ["identity.key"]


def test_spec_key_file_loads(tmp_path: Path) -> None:
    key = load_key(_write(tmp_path / "k", SPEC_PRIVATE))
    assert str(key.peer_id) == "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o610, 0o602])
def test_open_permissions_are_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "identity.key", SPEC_PRIVATE, mode)
    with pytest.raises(KeyFileError) as info:
        load_key(path)
    assert str(info.value) == (
        f"{path}: key file permissions {mode:04o} are too open (group or others can access it); "
        f"run `chmod 600 {path}`"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "key file is empty"),
        (b"not a key at all", "malformed key file: private key:"),
        (
            SPEC_PRIVATE[:-3],
            "malformed key file: private key: not a protobuf message: field 2 declares 64 bytes",
        ),
        (b"\x00" * 5000, "larger than 4096 bytes"),
    ],
)
def test_malformed_files_name_the_problem(tmp_path: Path, data: bytes, message: str) -> None:
    path = _write(tmp_path / "identity.key", data)
    with pytest.raises(KeyFileError, match=message) as info:
        load_key(path)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(tmp_path / "nope")
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(tmp_path / "dir")


def test_save_refuses_to_overwrite_unless_told(tmp_path: Path) -> None:
    path = save_key(IdentityKey.generate(), tmp_path / "k")
    other = IdentityKey.generate()
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite"):
        save_key(other, path)
    save_key(other, path, overwrite=True)
    assert load_key(path) == other
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_load_or_create_creates_once_then_loads(tmp_path: Path) -> None:
    path = tmp_path / "state" / "identity.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 & ~_umask()
    assert load_or_create_key(path) == first


def test_load_or_create_does_not_replace_a_bad_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "identity.key", SPEC_PRIVATE, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_key(path)
    assert path.read_bytes() == SPEC_PRIVATE


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
