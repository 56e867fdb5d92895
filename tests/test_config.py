"""bbnode.config: SPEC §7 defaults, typed values, and one precise line per mistake."""

from __future__ import annotations

import ipaddress
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest

from bbnode.config import (
    Config,
    ConfigError,
    ConfigProblem,
    default_config,
    load_config,
    parse_config,
)
from bbnode.ids import Address, PeerId

REPO = Path(__file__).resolve().parent.parent
PEER_A = PeerId.from_u64(1)
PEER_B = PeerId.from_u64(2)


def problems_of(text: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bbnode.toml", base_dir=base_dir)
    assert str(info.value) == "\n".join(str(p) for p in info.value.problems)
    return [str(p) for p in info.value.problems]


# -- defaults and typed values -------------------------------------------------------------
def test_defaults_are_spec_section_7(tmp_path: Path) -> None:
    config = default_config(base_dir=tmp_path)
    node = config.node
    assert node.state_dir == tmp_path / ".bbnode"
    assert node.key_file == tmp_path / ".bbnode" / "identity.key"
    assert node.listen == (Address.from_string("/ip4/127.0.0.1/tcp/7400"),)
    assert (node.bootstrap, node.shutdown_grace_s) == ((), 10.0)
    peers = config.peers
    assert (peers.allow, peers.block, peers.failure_threshold) == ((), (), 5)
    assert (peers.backoff_base_ms, peers.backoff_max_ms) == (10, 60_000)
    net = config.network
    assert (net.allow_cidrs, net.deny_cidrs) == ((), ())
    assert (net.max_connections, net.max_connections_per_ip) == (256, 8)
    assert (net.handshake_timeout_s, net.idle_timeout_s) == (10.0, 300.0)
    assert net.max_frame_bytes == 16_777_216
    assert (config.snapshot.interval_s, config.snapshot.keep) == (60.0, 2)
    assert config.snapshot.directory == tmp_path / ".bbnode" / "snapshots"
    assert config.control.socket == tmp_path / ".bbnode" / "control.sock"
    assert config.metrics.listen is None
    assert (config.log.level, config.log.format) == ("info", "auto")
    proto = config.protocols
    assert (proto.heartbeat.interval_s, proto.heartbeat.timeout_s) == (5.0, 2.0)
    assert proto.peer_exchange.interval_s == 30.0
    assert proto.pubsub.enabled
    assert proto.heartbeat.enabled
    assert proto.peer_exchange.enabled
    assert config.source is None


def test_default_base_is_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_config().node.state_dir == tmp_path / ".bbnode"


def test_config_is_frozen() -> None:
    config = default_config()
    with pytest.raises(FrozenInstanceError):
        config.node = config.node  # type: ignore[misc]


def test_values_are_parsed_to_types(tmp_path: Path) -> None:
    text = f"""
        [node]
        state_dir = "/srv/bb"
        key_file = "/etc/bb/node.key"
        listen = ["/ip4/0.0.0.0/tcp/7400", "/ip6/::1/tcp/7400"]
        bootstrap = ["/ip4/10.0.0.2/tcp/7400/p2p/{PEER_A}", "/dns4/seed.example/tcp/7400"]
        shutdown_grace_s = 2.5
        [peers]
        allow = ["{PEER_A}", "{PEER_B}"]
        block = ["{PEER_B}"]
        [network]
        allow_cidrs = ["192.168.0.0/16", "fd00::/8"]
        deny_cidrs = ["10.0.0.1"]
        [metrics]
        listen = "[::1]:9464"
        [protocols.pubsub]
        enabled = false
    """
    (tmp_path / "etc").mkdir()
    config = parse_config(text.replace("/etc/bb", str(tmp_path / "etc")), "x.toml")
    assert config.node.state_dir == Path("/srv/bb")
    assert config.node.key_file == tmp_path / "etc" / "node.key"
    assert config.node.bootstrap[0].peer_id == PEER_A
    assert config.node.bootstrap[1].peer_id is None  # learned in the handshake
    assert config.node.shutdown_grace_s == 2.5
    assert config.peers.allow == (PEER_A, PEER_B)
    assert config.peers.block == (PEER_B,)
    assert config.network.allow_cidrs == (
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert config.network.deny_cidrs == (ipaddress.ip_network("10.0.0.1/32"),)
    assert config.metrics.listen == ("::1", 9464)
    assert config.protocols.pubsub.enabled is False


def test_relative_paths_follow_the_documented_bases(tmp_path: Path) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    file = conf_dir / "bbnode.toml"
    file.write_text('[node]\nstate_dir = "state"\n[control]\nsocket = "run/ctl.sock"\n')
    config = load_config(file)
    assert config.source == file
    assert config.node.state_dir == conf_dir / "state"
    assert config.node.key_file == conf_dir / "state" / "identity.key"
    assert config.control.socket == conf_dir / "state" / "run" / "ctl.sock"
    assert config.snapshot.directory == conf_dir / "state" / "snapshots"


def test_reload_comparison_by_section(tmp_path: Path) -> None:
    before = parse_config('[peers]\nblock = []\n[log]\nlevel = "info"', base_dir=tmp_path)
    after = parse_config(f'[peers]\nblock = ["{PEER_A}"]', base_dir=tmp_path)
    assert before.node == after.node
    assert before.log == after.log
    assert before.peers != after.peers
    assert replace(after, peers=before.peers) == before


def test_example_config_loads_and_documents_the_defaults() -> None:
    example = load_config(REPO / "config" / "bbnode.toml")
    expected = default_config(base_dir=REPO / "config")
    assert replace(example, source=None) == expected


@pytest.mark.parametrize("n", [1, 2, 3])
def test_cluster_configs_form_a_mesh_on_loopback(n: int) -> None:
    config = load_config(REPO / "config" / "cluster" / f"node{n}.toml")
    assert config.node.listen == (Address.from_string(f"/ip4/127.0.0.1/tcp/740{n}"),)
    assert config.node.state_dir == REPO / "config" / "cluster" / f"node{n}"
    expected = () if n == 1 else (Address.from_string("/ip4/127.0.0.1/tcp/7401"),)
    assert config.node.bootstrap == expected


# -- one test per kind of error --------------------------------------------------------------
def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    assert problems_of("[peers]\nbackof_base_ms = 10", tmp_path) == [
        "bbnode.toml: peers.backof_base_ms: unknown key (did you mean 'backoff_base_ms'?); "
        "valid keys in [peers]: allow, block, failure_threshold, backoff_base_ms, "
        "backoff_max_ms"
    ]


def test_misplaced_key_names_its_table(tmp_path: Path) -> None:
    [line] = problems_of("[node]\nkeep = 3", tmp_path)
    assert line.startswith("bbnode.toml: node.keep: unknown key (it belongs in [snapshot]);")


def test_unknown_tables(tmp_path: Path) -> None:
    assert problems_of("[netwrok]\n[protocols.heartbeet]\n[x]\ny = 1\nz = 2", tmp_path) == [
        "bbnode.toml: netwrok: unknown table (did you mean 'network'?); valid: node, peers, "
        "network, snapshot, control, metrics, log, protocols",
        "bbnode.toml: protocols.heartbeet: unknown protocol table (did you mean "
        "'heartbeat'?); valid: heartbeat, peer_exchange, pubsub",
        "bbnode.toml: x: unknown table; valid: node, peers, network, snapshot, control, "
        "metrics, log, protocols",
    ]


def test_scalar_where_a_table_belongs(tmp_path: Path) -> None:
    assert problems_of('node = "x"\nlog = 1', tmp_path) == [
        "bbnode.toml: node: expected a table, got string",
        "bbnode.toml: log: expected a table, got integer",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[peers]\nfailure_threshold = '5'",
            "peers.failure_threshold: expected an integer, got string '5'",
        ),
        (
            "[peers]\nfailure_threshold = true",
            "peers.failure_threshold: expected an integer, got boolean True",
        ),
        (
            "[network]\nmax_connections = 2.5",
            "network.max_connections: expected an integer, got float 2.5",
        ),
        (
            "[snapshot]\ninterval_s = '60'",
            "snapshot.interval_s: expected a number of seconds, got string '60'",
        ),
        (
            "[protocols.pubsub]\nenabled = 'yes'",
            "protocols.pubsub.enabled: expected a boolean (true or false), got string 'yes'",
        ),
        (
            "[peers]\nblock = 'x'",
            "peers.block: expected an array of peer id strings, got string 'x'",
        ),
        ("[peers]\nblock = [1]", "peers.block[0]: expected a peer id string, got integer 1"),
        ("[node]\nstate_dir = 7", "node.state_dir: expected a path string, got integer 7"),
        (
            "[metrics]\nlisten = 9464",
            'metrics.listen: expected a "host:port" string, got integer 9464',
        ),
        ("[log]\nlevel = 1979-05-27", "log.level: expected a string, got date 1979-05-27"),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, expected: str) -> None:
    assert problems_of(text, tmp_path) == [f"bbnode.toml: {expected}"]


def test_invalid_peer_ids_name_the_index(tmp_path: Path) -> None:
    text = f'[peers]\nblock = ["{PEER_A}", "{PEER_B}", "12D3KooW-nope"]\nallow = ["0OIl"]'
    lines = problems_of(text, tmp_path)
    assert len(lines) == 2
    assert lines[0].startswith("bbnode.toml: peers.block[2]: not a valid peer id: ")
    assert "12D3KooW-nope" in lines[0]
    assert lines[1].startswith("bbnode.toml: peers.allow[0]: not a valid peer id: ")


def test_invalid_multiaddrs(tmp_path: Path) -> None:
    text = f"""
        [node]
        listen = ["/ip4/999.0.0.1/tcp/1", "/ip4/1.2.3.4", "/ip4/127.0.0.1/tcp/1/p2p/{PEER_A}"]
        bootstrap = ["ip4/1.2.3.4/tcp/1"]
    """
    assert problems_of(text, tmp_path) == [
        "bbnode.toml: node.listen[0]: not a valid multiaddr: address: /ip4/999.0.0.1: not an "
        "IPv4 address (got '/ip4/999.0.0.1/tcp/1')",
        "bbnode.toml: node.listen[1]: needs an ip4/ip6/dns host and a tcp port, got '/ip4/1.2.3.4'",
        "bbnode.toml: node.listen[2]: a listen address must not name a peer (/p2p); "
        f"got '/ip4/127.0.0.1/tcp/1/p2p/{PEER_A}'",
        "bbnode.toml: node.bootstrap[0]: not a valid multiaddr: address: 'ip4/1.2.3.4/tcp/1' "
        "must start with '/' (got 'ip4/1.2.3.4/tcp/1')",
    ]


def test_invalid_cidrs(tmp_path: Path) -> None:
    text = '[network]\nallow_cidrs = ["10.0.0.0/33"]\ndeny_cidrs = ["ok", "10.0.0.1/8"]'
    assert problems_of(text, tmp_path) == [
        "bbnode.toml: network.allow_cidrs[0]: not a valid CIDR network: '10.0.0.0/33' does "
        "not appear to be an IPv4 or IPv6 network",
        "bbnode.toml: network.deny_cidrs[0]: not a valid CIDR network: 'ok' does not appear "
        "to be an IPv4 or IPv6 network",
        "bbnode.toml: network.deny_cidrs[1]: not a valid CIDR network: 10.0.0.1/8 has host "
        "bits set",
    ]


def test_zero_negative_and_non_finite_durations(tmp_path: Path) -> None:
    text = """
        [node]
        shutdown_grace_s = 0
        [snapshot]
        interval_s = -5
        [network]
        idle_timeout_s = inf
        handshake_timeout_s = nan
    """
    assert problems_of(text, tmp_path) == [
        "bbnode.toml: node.shutdown_grace_s: must be greater than 0 seconds, got 0",
        "bbnode.toml: snapshot.interval_s: must be greater than 0 seconds, got -5",
        "bbnode.toml: network.idle_timeout_s: must be a finite number of seconds, got inf",
        "bbnode.toml: network.handshake_timeout_s: must be a finite number of seconds, got nan",
    ]


def test_out_of_range_integers_and_choices(tmp_path: Path) -> None:
    text = """
        [peers]
        failure_threshold = 0
        backoff_base_ms = -1
        [network]
        max_frame_bytes = 2147483648
        [snapshot]
        keep = 0
        [log]
        level = "loud"
        format = "xml"
        [metrics]
        listen = "localhost:99999"
    """
    assert problems_of(text, tmp_path) == [
        "bbnode.toml: peers.failure_threshold: must be at least 1, got 0",
        "bbnode.toml: peers.backoff_base_ms: must be at least 1 ms, got -1",
        "bbnode.toml: network.max_frame_bytes: must be at most 1073741824 bytes, got 2147483648",
        "bbnode.toml: snapshot.keep: must be at least 1, got 0",
        "bbnode.toml: log.level: must be one of debug, info, warning, error, critical; got 'loud'",
        "bbnode.toml: log.format: must be one of json, console, auto; got 'xml'",
        'bbnode.toml: metrics.listen: expected "host:port" with a port 0-65535, '
        "got 'localhost:99999'",
    ]


def test_cross_field_rules(tmp_path: Path) -> None:
    text = """
        [peers]
        backoff_base_ms = 500
        backoff_max_ms = 100
        [network]
        max_connections = 4
        max_connections_per_ip = 8
        [protocols.heartbeat]
        interval_s = 2
        timeout_s = 2
    """
    assert problems_of(text, tmp_path) == [
        "bbnode.toml: peers.backoff_max_ms: must be at least backoff_base_ms (500), got 100",
        "bbnode.toml: network.max_connections_per_ip: must not exceed max_connections (4), got 8",
        "bbnode.toml: protocols.heartbeat.timeout_s: must be less than interval_s (2), got 2",
    ]


def test_unusable_paths(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    (tmp_path / "keydir").mkdir()
    text = f"""
        [node]
        state_dir = "file"
        key_file = "{tmp_path / "keydir"}"
    """
    assert problems_of(text, tmp_path) == [
        f"bbnode.toml: node.state_dir: {tmp_path / 'file'} exists and is not a directory",
        f"bbnode.toml: node.key_file: {tmp_path / 'keydir'} is a directory, not a key file",
    ]
    missing = tmp_path / "nowhere" / "id.key"
    assert problems_of(f'[node]\nkey_file = "{missing}"', tmp_path) == [
        f"bbnode.toml: node.key_file: directory {missing.parent} does not exist, so the key "
        "cannot be created"
    ]


def test_control_socket_path_too_long(tmp_path: Path) -> None:
    long_name = "s" * 120
    [line] = problems_of(f'[control]\nsocket = "{long_name}"', tmp_path)
    assert line.startswith("bbnode.toml: control.socket: ")
    assert "Unix socket paths are limited to 107" in line


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    text = """
        [node]
        listen = "nope"
        shutdown_grace_s = -1
        [peers]
        block = ["bad"]
        [snapshot]
        keep = "2"
        intervl_s = 5
    """
    lines = problems_of(text, tmp_path)
    keys = [line.split(": ")[1] for line in lines]
    assert keys == [
        "node.listen",
        "node.shutdown_grace_s",
        "peers.block[0]",
        "snapshot.keep",
        "snapshot.intervl_s",
    ]


def test_toml_syntax_error(tmp_path: Path) -> None:
    [line] = problems_of("[node\nlisten = 1", tmp_path)
    assert line.startswith("bbnode.toml: invalid TOML: ")
    assert "line 1" in line


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml")
    assert info.value.problems == [
        ConfigProblem(
            str(tmp_path / "absent.toml"),
            "",
            "cannot read config file: No such file or directory",
        )
    ]
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[log]\nlevel = "\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin1.toml: not UTF-8 text \(byte 15\)"):
        load_config(bad)


def test_problem_lines_use_the_file_name_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bbnode.toml").write_text('[peers]\nblock = ["a", "b", "c"]\n')
    with pytest.raises(ConfigError) as info:
        load_config("bbnode.toml")
    assert [str(p).split(": not")[0] for p in info.value.problems] == [
        "bbnode.toml: peers.block[0]",
        "bbnode.toml: peers.block[1]",
        "bbnode.toml: peers.block[2]",
    ]


def test_config_type_is_exported() -> None:
    assert isinstance(default_config(), Config)
