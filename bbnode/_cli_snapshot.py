"""`bbnode snapshot inspect|verify FILE`: read a snapshot file without changing anything.

FILE may be a generation file or a snapshot directory (then its newest generation is used).
Unlike `SnapshotStore.load`, these never move a file aside: they only report.
Exit codes: 0 valid, 1 the file is corrupt or incompatible, 2 FILE missing or unreadable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from bbnode._cli_base import EXIT_OK, EXIT_USAGE, CliError, Command
from bbnode.store import (
    HEADER_SIZE,
    GenerationStore,
    SnapshotFileError,
    decode_node_snapshot,
    decode_snapshot_file,
)
from bbnode.store.fileformat import parse_header
from bbnode.store.summary import format_summary, summarize_snapshot

__all__ = ["SNAPSHOT"]


def _resolve(path: Path) -> Path:
    if not path.is_dir():
        return path
    generations = GenerationStore(path).generations()
    if not generations:
        raise CliError(f"{path}: directory holds no snapshot generation", EXIT_USAGE)
    print(f"using newest generation {generations[0]}", file=sys.stderr)
    return generations[0]


def _read(path: Path) -> tuple[Path, Any, dict[str, Any]]:
    path = _resolve(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}", EXIT_USAGE) from None
    try:
        payload = decode_snapshot_file(data)
        snapshot = decode_node_snapshot(payload)
    except SnapshotFileError as exc:
        raise CliError(f"{path}: invalid snapshot file: {exc.reason}") from None
    header = parse_header(data)
    info = {
        "file": str(path),
        "format_version": header.format_version,
        "file_bytes": len(data),
        "payload_bytes": len(data) - HEADER_SIZE,
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    return path, snapshot, info


def _verify(args: argparse.Namespace) -> int:
    path, snapshot, info = _read(args.file)
    info["spec_version"] = int(snapshot.transient.framework.spec_version)
    info["incarnation"] = int(snapshot.incarnation)
    if args.json:
        print(json.dumps({"ok": True, **info}))
    else:
        print(
            f"{path}: ok (format {info['format_version']}, spec_version "
            f"{info['spec_version']}, incarnation {info['incarnation']}, "
            f"{info['payload_bytes']} payload bytes, sha256 {info['payload_sha256'][:16]}...)"
        )
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    path, snapshot, info = _read(args.file)
    summary = summarize_snapshot(snapshot)
    if args.json:
        print(json.dumps({**info, **summary}, indent=2))
    else:
        print(f"file             {path} ({info['file_bytes']} bytes)")
        print(format_summary(summary, limit=args.limit))
    return EXIT_OK


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="snapshot_command", metavar="ACTION", required=True)
    inspect = actions.add_parser("inspect", help="print a readable summary of a snapshot")
    verify = actions.add_parser("verify", help="check a snapshot file's integrity and version")
    for sub in (inspect, verify):
        sub.add_argument("file", type=Path, metavar="FILE", help="snapshot file or directory")
        sub.add_argument("--json", action="store_true", help="machine-readable JSON output")
    inspect.add_argument(
        "--limit", type=_positive, default=20, help="rows shown per table (default 20)"
    )
    inspect.set_defaults(run=_inspect)
    verify.set_defaults(run=_verify)


SNAPSHOT = Command("snapshot", "inspect or verify a snapshot file", _arguments)
