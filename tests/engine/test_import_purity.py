"""Nothing under bbnode/engine or bbnode/wire imports I/O, clocks, threads or logging.

Checked statically (every `import` / `from ... import` in every module, including imports
nested in functions), so a forbidden import on a rarely used path is caught too. The one
exception is the lock of the ingress queue (`bbnode/engine/ingress.py` may import threading).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "bbnode"
FORBIDDEN = frozenset(
    {"trio", "socket", "time", "os", "threading", "logging", "structlog", "asyncio", "selectors"}
)
ALLOWED = {("engine/ingress.py", "threading")}


def _modules() -> list[Path]:
    return sorted([*(ROOT / "engine").rglob("*.py"), *(ROOT / "wire").rglob("*.py")])


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.append("__import__")
    return names


def test_there_are_modules_to_check() -> None:
    assert any(p.name == "node.py" for p in _modules())


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_nothing_forbidden(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    bad = [
        name
        for name in _imports(path)
        if (name in FORBIDDEN or name in {"__import__", "importlib"}) and (rel, name) not in ALLOWED
    ]
    assert bad == [], f"{rel} imports {bad}"
