"""A small reader for systemd unit files, shared by the unit tests.

systemd's format is not INI (keys repeat, an empty assignment resets a list), so this keeps
every assignment in order instead of using configparser.
"""

from __future__ import annotations

from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "bbnode.service"


def parse_unit(path: Path = UNIT) -> dict[str, list[tuple[str, str]]]:
    """Section name -> ordered (key, value) assignments."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None:
            raise ValueError(f"{path}: assignment outside a section: {line!r}")
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not a key=value line: {line!r}")
        current.append((key.strip(), value.strip()))
    return sections


def service(path: Path = UNIT) -> dict[str, str]:
    """The [Service] section with the last assignment of each key winning."""
    return dict(parse_unit(path)["Service"])


def seconds(value: str) -> float:
    """A systemd time span limited to what the unit uses: ``30``, ``30s``, ``2min``, ``500ms``."""
    units = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
    for suffix in sorted(units, key=len, reverse=True):
        if value.endswith(suffix) and value[: -len(suffix)].strip().isdigit():
            return int(value[: -len(suffix)]) * units[suffix]
    if value.isdigit():
        return float(value)
    raise ValueError(f"unsupported time span: {value!r}")
