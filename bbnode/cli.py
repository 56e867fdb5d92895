"""The `bbnode` command line (SPEC §8): `main(argv=None) -> int`.

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error. Errors go to stderr, one per
line. Each subcommand is a `Command` defined in its own `bbnode/_cli_*.py` module; adding one
(`run`, `ctl`, `demo`, ...) means defining its `Command` and listing it in `COMMANDS` below —
nothing else here changes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bbnode import __version__
from bbnode._cli_base import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError, Command
from bbnode._cli_config import CHECK_CONFIG
from bbnode._cli_keys import KEYGEN, PEER_ID
from bbnode._cli_snapshot import SNAPSHOT
from bbnode.daemon.commands import CTL, RUN
from bbnode.demo import DEMO

__all__ = ["COMMANDS", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

COMMANDS: tuple[Command, ...] = (RUN, CTL, KEYGEN, PEER_ID, CHECK_CONFIG, SNAPSHOT, DEMO)
"""Every subcommand, in `bbnode --help` order."""


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The argparse parser for `commands` (exposed for tests and shell completion)."""
    parser = argparse.ArgumentParser(
        prog="bbnode", description="bbnode: a bytesandbrains runtime node and its tools."
    )
    parser.add_argument("--version", action="version", version=f"bbnode {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        if command.run is not None:
            sub.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `bbnode` with `argv` (default `sys.argv[1:]`); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help/--version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        code: int = args.run(args)
    except CliError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
