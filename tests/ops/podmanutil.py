"""Running the project's image with podman for the container tests.

There is no Docker engine here: ``../shared/oci/base-image.sh`` installs podman and a local
stand-in for ``python:3.11-slim`` and prints the ``CONTAINERS_CONF`` to use. Every podman call
goes through :class:`Podman` so that it gets that environment, ``--pull=never`` where it
applies, and a failure message that includes podman's own output.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from tests.ops.opsutil import REPO

BASE_IMAGE_SCRIPT = REPO.parent / "shared" / "oci" / "base-image.sh"
#: The tag the tests build; compose uses `localhost/bbnode:latest`, which the fixture adds.
TEST_IMAGE = "localhost/bbnode:ops-test"
COMPOSE_IMAGE = "localhost/bbnode:latest"
CONTROL_SOCKET = "/var/lib/bbnode/control.sock"
#: As in shared/oci/README.md: nothing can be pulled, and --format docker keeps HEALTHCHECK.
BUILD_ARGS = ("build", "--pull=never", "--network", "host", "--format", "docker")

T = TypeVar("T")


def podman_environment() -> dict[str, str]:
    """The environment podman needs here, setting the machine up on first use."""
    if not BASE_IMAGE_SCRIPT.is_file():
        pytest.fail(f"{BASE_IMAGE_SCRIPT} is missing: the container tests need it", pytrace=False)
    result = subprocess.run(
        ["bash", str(BASE_IMAGE_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"base-image.sh failed:\n{result.stderr}", pytrace=False)
    env = dict(os.environ)
    for line in result.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line.removeprefix("export ").split("=", 1)
            env[key] = value
    return env


class Podman:
    """Thin wrapper: ``run(args)`` checked, ``try_run(args)`` unchecked."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def try_run(
        self, args: Sequence[str], timeout_s: float = 120, program: str = "podman"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [program, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def run(self, args: Sequence[str], timeout_s: float = 120, program: str = "podman") -> str:
        result = self.try_run(args, timeout_s, program)
        if result.returncode != 0:
            pytest.fail(
                f"{program} {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}",
                pytrace=False,
            )
        return result.stdout

    def build(self, tag: str) -> None:
        """Build the repository's Dockerfile as ``tag`` (layers cached between runs)."""
        self.run(
            [*BUILD_ARGS, "-t", tag, str(REPO)],
            timeout_s=900,
        )

    def ctl(self, container: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``bbnode ctl`` inside ``container``, on the image's control socket."""
        return self.try_run(
            ["exec", container, "bbnode", "ctl", "--socket", CONTROL_SOCKET, *args], timeout_s=30
        )

    def logs(self, container: str) -> str:
        result = self.try_run(["logs", container], timeout_s=30)
        return (result.stdout + result.stderr)[-6000:]


def eventually(
    what: str, check: Callable[[], T | None], within_s: float, diag: str | Callable[[], str] = ""
) -> T:
    """Poll ``check`` (about twice a second) until it returns a value; fail after ``within_s``.

    A deadline, not a speed assertion: ``within_s`` is generous and only bounds a hang.
    """
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            detail = diag() if callable(diag) else diag
            pytest.fail(f"{what}: not reached within {within_s} s\n{detail}", pytrace=False)
        time.sleep(0.5)


def volume_dir(podman: Podman, volume: str) -> Path:
    """The host directory backing a named volume (podman runs as root here)."""
    return Path(podman.run(["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).strip())


#: Run inside the image: a digest of the installed bbnode package's .py files.
_DIGEST_SCRIPT = """
import hashlib, pathlib, bbnode
root = pathlib.Path(bbnode.__file__).parent
h = hashlib.sha256()
for p in sorted(root.rglob("*.py")):
    h.update(str(p.relative_to(root)).encode() + b"\\0" + p.read_bytes() + b"\\0")
print(h.hexdigest())
"""


def source_digest() -> str:
    """The same digest over the repository's bbnode/ (what the image must contain)."""
    root = REPO / "bbnode"
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def check_image_is_current(podman: Podman, image: str) -> None:
    """Fail if the image's bbnode differs from the repository's (a stale layer cache)."""
    inside = podman.run(
        [
            *("run", "--rm", "--pull=never", "--network", "none"),
            *("--entrypoint", "python3", image, "-c", _DIGEST_SCRIPT),
        ]
    ).strip()
    if inside != source_digest():
        pytest.fail(f"{image} does not contain the repository's bbnode/ (stale build cache?)")
