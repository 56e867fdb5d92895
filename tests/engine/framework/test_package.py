"""Package-level guarantees: the contract's names exist; no module imports I/O or clocks."""

from __future__ import annotations

import ast
from pathlib import Path

import bbnode.engine.framework as framework

PACKAGE_DIR = Path(framework.__file__).parent
FORBIDDEN = {"trio", "socket", "time", "os", "threading", "logging", "structlog", "asyncio"}

CONTRACT_NAMES = [
    "PeerGovernor",
    "PeerHealth",
    "Allow",
    "Deny",
    "Blocklisted",
    "NotAllowlisted",
    "Cooldown",
    "LifecycleTransition",
    "BackoffTable",
    "BackoffState",
    "AddressBook",
    "AddressBookEntry",
    "InboundDedup",
    "OutboundQueue",
    "RequestTracker",
    "InFlightRequest",
    "RttTracker",
    "Scheduler",
    "TimerHandle",
    "BackpressureTracker",
    "Counters",
    "BlockEntry",
    "DEFAULT_FAILURE_THRESHOLD",
]


def test_contract_names_exported() -> None:
    missing = [name for name in CONTRACT_NAMES if name not in framework.__all__]
    assert missing == []
    for name in framework.__all__:
        assert getattr(framework, name) is not None


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_io_or_clock_imports() -> None:
    offenders = {
        path.name: sorted(_imported_roots(path) & FORBIDDEN)
        for path in sorted(PACKAGE_DIR.glob("*.py"))
        if _imported_roots(path) & FORBIDDEN
    }
    assert offenders == {}


def test_public_modules_have_docstrings() -> None:
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.name} has no module docstring"
