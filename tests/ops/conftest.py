"""Shared fixtures for the operations tests (container image, systemd unit, deploy files).

Every test here carries the ``ops`` marker: they need tools the main suite does not
(hadolint, systemd-analyze, kubernetes-validate, podman, podman-compose), which ``.ci/ops``
installs before running ``scripts/test tests/ops -m ops``. A missing tool or a missing daemon
is a test *failure* with a message saying what to install, never a silent skip: an ops check
that quietly does not run is worse than none.

Knobs for working on these tests: ``$BBNODE_BIN`` (the bbnode executable for the host-side
tests; default the venv's) and ``$BBNODE_OPS_IMAGE`` (use this image instead of building one).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ops.opsutil import REPO, require_daemon
from tests.ops.podmanutil import (
    COMPOSE_IMAGE,
    TEST_IMAGE,
    Podman,
    check_image_is_current,
    podman_environment,
)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def podman() -> Podman:
    """podman, set up for this machine (installs it and the base image on first use)."""
    return Podman(podman_environment())


@pytest.fixture(scope="session")
def image(podman: Podman) -> str:
    """The image built from the repository's Dockerfile, also tagged for compose.

    ``$BBNODE_OPS_IMAGE`` names an already built image to use instead, unchecked (for
    debugging the tests themselves).
    """
    require_daemon()
    prebuilt = os.environ.get("BBNODE_OPS_IMAGE")
    tag = prebuilt or TEST_IMAGE
    if not prebuilt:
        podman.build(TEST_IMAGE)
        check_image_is_current(podman, TEST_IMAGE)
    podman.run(["tag", tag, COMPOSE_IMAGE])
    return tag
