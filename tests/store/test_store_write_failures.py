"""Full disk and unwritable directories: a clear SnapshotWriteError, the old generation intact.

Real failures only. ENOSPC comes from a 64 KiB tmpfs and EROFS from remounting it read-only,
both inside a throwaway user+mount namespace (`unshare`), so the test needs no privileges and
touches no host mount; where namespaces are unavailable those cases skip. EFBIG comes from
RLIMIT_FSIZE in a child process and runs everywhere. A non-root user also gets the plain
`chmod 0500` case (root ignores permission bits, so it cannot be tested that way as root).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bbnode.store import GenerationStore, SnapshotWriteError

# Runs in the child: save one small generation, break the directory, try a bigger save,
# then load. Prints one JSON object describing what happened.
_CHILD = textwrap.dedent(
    """
    import json, os, resource, signal, subprocess, sys
    from pathlib import Path
    from bbnode.store import GenerationStore, SnapshotWriteError

    directory, breaker = Path(sys.argv[1]), sys.argv[2]
    store = GenerationStore(directory)
    first = store.save_payload(b"generation one")
    if breaker == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    elif breaker == "readonly":
        subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
    out = {}
    try:
        store.save_payload(os.urandom(200_000))
        out["error"] = None
    except SnapshotWriteError as exc:
        out.update(error=str(exc), errno=exc.errno, path=str(exc.path))
    result = store.load(lambda payload: payload)
    out.update(
        loaded=result.snapshot.decode() if result.snapshot else None,
        problems=[str(p) for p in result.problems],
        generations=[p.name for p in store.generations()],
        listing=sorted(os.listdir(directory)),
    )
    print(json.dumps(out))
    """
)


def _run_child(argv: list[str]) -> dict[str, Any]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        pytest.fail(f"child failed ({proc.returncode}): {proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _in_tmpfs(tmp_path: Path, breaker: str) -> dict[str, Any]:
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) not installed")
    probe = subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", "true"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"user namespaces unavailable: {probe.stderr.decode().strip()}")
    script = 'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" -c "$3" "$1" "$4"'
    argv = [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
    return _run_child([*argv, str(mount_point), sys.executable, _CHILD, breaker])


def _assert_previous_generation_intact(out: dict[str, Any]) -> None:
    assert out["error"] is not None
    assert out["path"].endswith("snapshot-0000000002.bbsnap")
    assert out["loaded"] == "generation one"
    assert out["problems"] == []
    assert out["generations"] == ["snapshot-0000000001.bbsnap"]


def test_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    out = _in_tmpfs(tmp_path, "none")
    _assert_previous_generation_intact(out)
    assert out["errno"] == errno.ENOSPC
    assert out["error"].startswith("cannot write snapshot ")
    assert out["error"].endswith("snapshot-0000000002.bbsnap: No space left on device")
    assert out["listing"] == [".snapshot.lock", "snapshot-0000000001.bbsnap"]


def test_read_only_filesystem_is_a_clear_error(tmp_path: Path) -> None:
    out = _in_tmpfs(tmp_path, "readonly")
    _assert_previous_generation_intact(out)
    assert out["errno"] == errno.EROFS
    assert out["error"].endswith("Read-only file system")


def test_file_size_limit_is_a_clear_error(tmp_path: Path) -> None:
    out = _run_child([sys.executable, "-c", _CHILD, str(tmp_path / "snaps"), "fsize"])
    _assert_previous_generation_intact(out)
    assert out["errno"] == errno.EFBIG
    assert out["error"].endswith("File too large")
    assert out["listing"] == [".snapshot.lock", "snapshot-0000000001.bbsnap"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permission bits")
def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    store = GenerationStore(tmp_path / "snaps")
    store.save_payload(b"generation one")
    store.directory.chmod(0o500)
    try:
        with pytest.raises(SnapshotWriteError, match="Permission denied") as info:
            store.save_payload(b"generation two")
        assert info.value.errno == errno.EACCES
        result = store.load(lambda payload: payload)
        assert (result.snapshot, result.problems) == (b"generation one", ())
    finally:
        store.directory.chmod(0o700)


def test_unwritable_parent_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(SnapshotWriteError, match="Not a directory") as info:
        GenerationStore(blocker / "snaps").save_payload(b"x")
    assert info.value.errno == errno.ENOTDIR
