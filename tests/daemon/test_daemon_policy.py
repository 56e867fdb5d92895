import pytest

from bbnode.daemon.policy import AdmissionError, ConnectionSlots, NetworkPolicy, normalize_ip


def test_open_policy_admits_anything() -> None:
    NetworkPolicy().check_ip("127.0.0.1")
    NetworkPolicy().check_ip("::1")


def test_deny_wins_over_allow() -> None:
    policy = NetworkPolicy.build(allow_cidrs=["10.0.0.0/8"], deny_cidrs=["10.1.0.0/16"])
    policy.check_ip("10.2.3.4")
    with pytest.raises(AdmissionError) as info:
        policy.check_ip("10.1.2.3")
    assert info.value.reason == "denied_cidr"
    assert "10.1.0.0/16" in str(info.value)


def test_allowlist_refuses_outsiders() -> None:
    policy = NetworkPolicy.build(allow_cidrs=["192.168.0.0/16"])
    with pytest.raises(AdmissionError) as info:
        policy.check_ip("127.0.0.1")
    assert info.value.reason == "not_in_allow_cidrs"


def test_ipv4_mapped_ipv6_is_treated_as_ipv4() -> None:
    assert str(normalize_ip("::ffff:10.1.2.3")) == "10.1.2.3"
    policy = NetworkPolicy.build(deny_cidrs=["10.0.0.0/8"])
    with pytest.raises(AdmissionError):
        policy.check_ip("::ffff:10.1.2.3")


def test_ipv6_network_does_not_match_ipv4() -> None:
    NetworkPolicy.build(deny_cidrs=["::/0"]).check_ip("127.0.0.1")


def test_bad_cidr_and_bad_ip_are_named() -> None:
    with pytest.raises(ValueError, match="not a valid CIDR: 'nope'"):
        NetworkPolicy.build(deny_cidrs=["nope"])
    with pytest.raises(AdmissionError) as info:
        NetworkPolicy().check_ip("host.example")
    assert info.value.reason == "bad_address"


def test_slots_enforce_total_and_per_ip_limits() -> None:
    slots = ConnectionSlots(NetworkPolicy(max_connections=3, max_connections_per_ip=2))
    slots.acquire("127.0.0.1")
    slots.acquire("127.0.0.1")
    with pytest.raises(AdmissionError) as info:
        slots.acquire("127.0.0.1")
    assert info.value.reason == "max_connections_per_ip"
    slots.acquire("127.0.0.2")
    with pytest.raises(AdmissionError) as info:
        slots.acquire("127.0.0.3")
    assert info.value.reason == "max_connections"
    assert "limit 3" in str(info.value)
    slots.release("127.0.0.1")
    assert slots.total == 2
    assert slots.count("127.0.0.1") == 1
    slots.acquire("127.0.0.3")
    assert slots.total == 3


def test_release_without_acquire_is_a_bug() -> None:
    slots = ConnectionSlots(NetworkPolicy())
    with pytest.raises(RuntimeError, match="release without acquire"):
        slots.release("127.0.0.1")
