"""`bbnode keygen` and `bbnode peer-id`: create an identity key, show a key's PeerId."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bbnode._cli_base import EXIT_OK, CliError, Command
from bbnode.config import default_config
from bbnode.keyfile import KeyFileError, load_key, save_key
from bbnode.wire.keys import IdentityKey

__all__ = ["KEYGEN", "PEER_ID"]


def _default_key_path() -> Path:
    # The key `bbnode run` uses without a config file: ./.bbnode/identity.key.
    return default_config().node.key_file


def _keygen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="where to write the key (default ./.bbnode/identity.key); never overwritten",
    )


def _keygen(args: argparse.Namespace) -> int:
    path: Path = args.out if args.out is not None else _default_key_path()
    if path.exists() or path.is_symlink():
        raise CliError(f"{path}: a key file already exists; refusing to overwrite it")
    key = IdentityKey.generate()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        save_key(key, path)
    except OSError as exc:
        raise CliError(f"{path.parent}: cannot create directory: {exc.strerror}") from None
    except KeyFileError as exc:
        raise CliError(str(exc)) from None
    print(key.peer_id)
    print(f"wrote a new Ed25519 identity key to {path}", file=sys.stderr)
    return EXIT_OK


def _peer_id_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        type=Path,
        default=None,
        metavar="FILE",
        help="key file to read (default ./.bbnode/identity.key)",
    )


def _peer_id(args: argparse.Namespace) -> int:
    path: Path = args.key if args.key is not None else _default_key_path()
    try:
        key = load_key(path)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None
    print(key.peer_id)
    return EXIT_OK


KEYGEN = Command(
    "keygen", "generate an Ed25519 identity key and print its peer id", _keygen_arguments, _keygen
)
PEER_ID = Command("peer-id", "print the peer id of an identity key", _peer_id_arguments, _peer_id)
