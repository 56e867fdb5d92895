"""The pieces every `bbnode` subcommand shares: the `Command` record, exit codes, errors.

A subcommand is one `Command` (name, help, how to add its arguments, what to run) defined
in its own `bbnode/_cli_<area>.py` module and listed once in `bbnode.cli.COMMANDS`. A command
reports failure by raising `CliError` (or returning an exit code); `main` prints the message
to stderr, one problem per line, and returns the code.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "CliError", "Command", "Runner"]

EXIT_OK: Final = 0
"""Success."""
EXIT_FAILURE: Final = 1
"""A runtime failure: the command was well-formed but what it acted on failed."""
EXIT_USAGE: Final = 2
"""A usage or configuration error (argparse uses 2 too)."""

Runner = Callable[[argparse.Namespace], int]
"""Runs a parsed command; returns the exit code."""


class CliError(Exception):
    """A command failed; `lines` go to stderr and `exit_code` is returned by `main`."""

    def __init__(self, lines: str | list[str], exit_code: int = EXIT_FAILURE) -> None:
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Command:
    """One `bbnode <name>` subcommand."""

    name: str
    """What the operator types after `bbnode`."""
    help: str
    """One line for `bbnode --help`."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    """Adds the command's arguments; may add nested subparsers that set their own `run`."""
    run: Runner | None = None
    """Default runner (None when every nested subcommand sets `run` via `set_defaults`)."""
