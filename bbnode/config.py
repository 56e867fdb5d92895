"""bbnode's configuration: one frozen, typed `Config` built from TOML (SPEC §7).

`load_config(path)` reads a file, `parse_config(text, source_name)` parses a string, and
`default_config()` is what `bbnode run` uses with no file (listen on 127.0.0.1:7400, state in
`./.bbnode`). Invalid input raises `ConfigError` listing *every* problem, each formatted as
`<file>: <key path>: <message>`, e.g. `bbnode.toml: peers.block[2]: not a valid peer id: ...`.
Unknown keys get the closest valid key as a suggestion.

Paths: a relative `node.state_dir` is relative to the config file's directory (the working
directory for `parse_config` without `base_dir`, and for `default_config`). Relative
`node.key_file`, `control.socket` and `snapshot.directory` are relative to `state_dir`. A
`Config` only ever holds absolute paths.

Bootstrap addresses may omit `/p2p/<peer id>`: the dialled peer's identity is then learned,
authenticated, in the Noise handshake rather than checked against a pinned id (trust on first
use). Listen addresses must not carry `/p2p` — the node's identity comes from its key file.

The daemon's SIGHUP reload calls `load_config` again and compares sections with `==`.
"""

from __future__ import annotations

import os
import tomllib  # bbnode requires Python >= 3.11; pyproject pins `tomli` for older ones
from pathlib import Path

from bbnode._config_parse import build_config
from bbnode._config_schema import (
    DEFAULT_LISTEN,
    Config,
    ControlSection,
    HeartbeatSection,
    IpNetwork,
    LogSection,
    MetricsSection,
    NetworkSection,
    NodeSection,
    PeerExchangeSection,
    PeersSection,
    ProtocolsSection,
    PubsubSection,
    SnapshotSection,
)
from bbnode._config_values import ConfigProblem, Problems

__all__ = [
    "DEFAULT_LISTEN",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "ControlSection",
    "HeartbeatSection",
    "IpNetwork",
    "LogSection",
    "MetricsSection",
    "NetworkSection",
    "NodeSection",
    "PeerExchangeSection",
    "PeersSection",
    "ProtocolsSection",
    "PubsubSection",
    "SnapshotSection",
    "default_config",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """A configuration could not be used; `problems` lists every reason, in file order.

    `str()` is one problem per line, ready for stderr or a log.
    """

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def parse_config(
    text: str,
    source_name: str = "<string>",
    *,
    base_dir: str | os.PathLike[str] | None = None,
    source: Path | None = None,
) -> Config:
    """Parse TOML `text`; problems are reported against `source_name`.

    Relative `state_dir` is resolved against `base_dir` (default: the working directory).
    Raises `ConfigError` with every problem found.
    """
    problems = Problems(source_name)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.add("", f"invalid TOML: {exc}")
        raise ConfigError(problems.items) from None
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    config = build_config(document, problems, base.absolute(), source)
    if problems.items:
        raise ConfigError(problems.items)
    return config


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and parse a config file; raises `ConfigError` (also for an unreadable file)."""
    file = Path(path)
    name = os.fspath(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigProblem(name, "", f"cannot read config file: {reason}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = ConfigProblem(name, "", f"not UTF-8 text (byte {exc.start}): TOML must be UTF-8")
        raise ConfigError([problem]) from None
    absolute = file.absolute()
    return parse_config(text, name, base_dir=absolute.parent, source=absolute)


def default_config(base_dir: str | os.PathLike[str] | None = None) -> Config:
    """The configuration `bbnode run` uses without a file: every default of SPEC §7.

    Listens on /ip4/127.0.0.1/tcp/7400, keeps state in `<base_dir or cwd>/.bbnode`.
    """
    return parse_config("", "<defaults>", base_dir=base_dir)
