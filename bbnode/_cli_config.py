"""`bbnode check-config FILE`: validate a config file and print every problem."""

from __future__ import annotations

import argparse
from pathlib import Path

from bbnode._cli_base import EXIT_OK, EXIT_USAGE, CliError, Command
from bbnode.config import ConfigError, load_config

__all__ = ["CHECK_CONFIG"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="TOML config file to check")


def _check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        lines = [str(problem) for problem in exc.problems]
        count = len(lines)
        lines.append(f"{args.file}: {count} problem{'s' if count != 1 else ''}")
        raise CliError(lines, EXIT_USAGE) from None
    node = config.node
    print(f"{args.file}: ok")
    print(f"  state_dir  {node.state_dir}")
    print(f"  key_file   {node.key_file}")
    print(f"  listen     {', '.join(str(a) for a in node.listen)}")
    print(f"  bootstrap  {', '.join(str(a) for a in node.bootstrap) or '(none)'}")
    return EXIT_OK


CHECK_CONFIG = Command(
    "check-config", "check a config file and print every problem found", _arguments, _check_config
)
