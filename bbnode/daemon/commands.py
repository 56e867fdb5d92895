"""The ``run`` and ``ctl`` subcommands of ``bbnode`` (listed in ``bbnode.cli.COMMANDS``).

Each handler takes the parsed namespace and returns an exit code: 0 ok, 1 runtime failure
(or ``ctl health`` unhealthy), 2 usage or config error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bbnode._cli_base import Command
from bbnode.daemon.control_client import ControlClient, ControlClientError, ControlError
from bbnode.daemon.durations import parse_duration_s

__all__ = ["CTL", "RUN", "add_ctl_arguments", "add_run_arguments", "ctl_main", "run_main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``run [--config FILE]``."""
    parser.add_argument("--config", metavar="FILE", help="TOML config (default: built-in)")


def run_main(args: argparse.Namespace) -> int:
    """Handler of ``run``."""
    from bbnode.config import ConfigError, default_config, load_config
    from bbnode.daemon.supervisor import run_daemon
    from bbnode.wire import KeyFileError

    try:
        config = load_config(args.config) if args.config else default_config()
    except ConfigError as exc:
        print(f"bbnode run: invalid config:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run_daemon(config)
    except KeyFileError as exc:
        print(f"bbnode run: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


def _default_socket() -> Path:
    from bbnode.config import default_config

    cfg = default_config()
    sock = cfg.control.socket
    return sock if sock.is_absolute() else cfg.node.state_dir / sock


def add_ctl_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``ctl [--socket PATH | --config FILE] COMMAND ...``."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", metavar="PATH", help="control socket path")
    where.add_argument("--config", metavar="FILE", help="find the socket from this config")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    cmds = parser.add_subparsers(dest="ctl_command", required=True, metavar="COMMAND")
    cmds.add_parser("status", help="identity, listen addresses, counters")
    cmds.add_parser("peers", help="known peers: address, state, health, backoff")
    cmds.add_parser("health", help="exit 0 when healthy, 1 otherwise")
    block = cmds.add_parser("block", help="ban a peer")
    block.add_argument("peer")
    block.add_argument("--for", dest="for_", metavar="DURATION", help="e.g. 30m, 1h, 2d")
    unblock = cmds.add_parser("unblock", help="lift a ban")
    unblock.add_argument("peer")
    publish = cmds.add_parser("publish", help="publish DATA on TOPIC")
    publish.add_argument("topic")
    publish.add_argument("data")
    subscribe = cmds.add_parser("subscribe", help="print events on TOPIC (* = all)")
    subscribe.add_argument("topic")
    cmds.add_parser("snapshot", help="write a snapshot now")


def _socket_path(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    if args.config:
        from bbnode.config import load_config

        cfg = load_config(args.config)
        sock = cfg.control.socket
        return sock if sock.is_absolute() else cfg.node.state_dir / sock
    return _default_socket()


def _print(result: Any) -> None:
    print(json.dumps(result, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.hex()
    return str(value)


def ctl_main(args: argparse.Namespace) -> int:
    """Handler of ``ctl``."""
    from bbnode.config import ConfigError

    cmd: str = args.ctl_command
    request: dict[str, Any] = {}
    if cmd == "block":
        request["peer"] = args.peer
        if args.for_:
            try:
                request["for_s"] = parse_duration_s(args.for_)
            except ValueError as exc:
                print(f"bbnode ctl block: --for: {exc}", file=sys.stderr)
                return EXIT_USAGE
    elif cmd == "unblock":
        request["peer"] = args.peer
    elif cmd == "publish":
        request.update(topic=args.topic, data=args.data.encode())
    elif cmd == "subscribe":
        request["topic"] = args.topic
    try:
        path = _socket_path(args)
        with ControlClient(path, timeout_s=None if cmd == "subscribe" else args.timeout) as c:
            if cmd == "subscribe":
                for event in c.subscribe(args.topic):
                    print(json.dumps(event, sort_keys=True, default=_json_default), flush=True)
                return EXIT_OK
            result = c.request(cmd, **request)
    except ConfigError as exc:
        print(f"bbnode ctl: invalid config:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except ControlError as exc:
        print(f"bbnode ctl {cmd}: {exc}", file=sys.stderr)
        return EXIT_USAGE if "not a valid" in str(exc) else EXIT_FAILURE
    except ControlClientError as exc:
        print(f"bbnode ctl: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    _print(result)
    if cmd == "health":
        return EXIT_OK if isinstance(result, dict) and result.get("healthy") else EXIT_FAILURE
    return EXIT_OK


RUN = Command("run", "run the node daemon in the foreground", add_run_arguments, run_main)
CTL = Command(
    "ctl", "talk to a running daemon over its control socket", add_ctl_arguments, ctl_main
)
