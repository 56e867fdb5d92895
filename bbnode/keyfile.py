"""Identity key files: the libp2p `PrivateKey` protobuf on disk, mode 0600 (SPEC §2).

The byte format lives in `bbnode.wire.keys` (pure); this module is the I/O around it, kept out of
`bbnode.wire` so that package stays free of `os`. Like ssh, a key file that group or others can
access is refused, with the `chmod` that fixes it; a new key is written to a temporary file in
the same directory, fsynced, and linked into place so a crash never leaves a half-written
identity, and an existing key is never overwritten by accident.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Final

from bbnode.wire.errors import KeyFileError, KeyFormatError
from bbnode.wire.keys import IdentityKey

__all__ = ["KeyFileError", "load_key", "load_or_create_key", "save_key"]

KEY_FILE_MODE: Final = 0o600
# A libp2p Ed25519 PrivateKey protobuf is 68 bytes (100 in the legacy form); anything much
# bigger is not a key file and is not read into memory.
_MAX_KEY_FILE_BYTES: Final = 4096

StrPath = str | os.PathLike[str]


def load_key(path: StrPath) -> IdentityKey:
    """Read an identity key; `KeyFileError` says what is wrong and how to fix it."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot open key file: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise KeyFileError(f"{path}: key file is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"{path}: key file permissions {stat.S_IMODE(info.st_mode):04o} are too open "
                f"(group or others can access it); run `chmod 600 {path}`"
            )
        data = handle.read(_MAX_KEY_FILE_BYTES + 1)
    if not data:
        raise KeyFileError(f"{path}: key file is empty")
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path}: key file is larger than {_MAX_KEY_FILE_BYTES} bytes")
    try:
        return IdentityKey.from_bytes(data)
    except KeyFormatError as exc:
        raise KeyFileError(f"{path}: malformed key file: {exc}") from None


def save_key(key: IdentityKey, path: StrPath, *, overwrite: bool = False) -> Path:
    """Write `key` to `path` with mode 0600, atomically; refuse to replace a key unless told."""
    path = Path(path)
    directory = path.parent
    temp = directory / f".{path.name}.tmp-{os.getpid()}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create key file: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            # The umask may have narrowed the mode further; never let it widen it.
            os.fchmod(handle.fileno(), KEY_FILE_MODE)
            handle.write(key.to_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        _place(temp, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    _fsync_directory(directory)
    return path


def load_or_create_key(path: StrPath) -> IdentityKey:
    """Load the key at `path`, or generate and save one there if there is no file yet."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = IdentityKey.generate()
        try:
            save_key(key, path)
        except KeyFileError:
            # Another process created it between our check and our write: use theirs.
            if not path.exists():
                raise
        else:
            return key
    return load_key(path)


def _place(temp: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        try:
            os.replace(temp, path)
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot write key file: {exc.strerror}") from None
        return
    # link() fails if the target exists, so two starters never clobber each other's key.
    try:
        os.link(temp, path)
    except FileExistsError:
        raise KeyFileError(
            f"{path}: a key file already exists; refusing to overwrite an identity"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write key file: {exc.strerror}") from None


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
