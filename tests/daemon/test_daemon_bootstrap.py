"""Refusal backoff, dialing an address whoever is there, bootstrap links, several listeners."""

from __future__ import annotations

import trio

from bbnode.daemon._peer_conn import PeerConnection
from bbnode.daemon.connections import ConnectionSettings, OutboundFrame
from bbnode.daemon.events import Connected, DialFailedIn, Disconnected, UnsentIn
from bbnode.daemon.redial import RefusalBackoff
from bbnode.ids import Address, PeerId
from tests.daemon._sides import side, wait_until

PATIENT = ConnectionSettings(handshake_timeout_s=2.0, refusal_backoff_s=60.0)


def test_refusal_backoff_doubles_caps_and_clears() -> None:
    table = RefusalBackoff(base_s=1.0, max_s=5.0, max_peers=2)
    p1, p2, p3 = (PeerId.from_u64(n) for n in (1, 2, 3))
    assert table.retry_in(p1, 0.0) is None
    assert [table.refused(p1, 0.0) for _ in range(4)] == [1.0, 2.0, 4.0, 5.0]
    assert table.retry_in(p1, 1.0) == 4.0
    assert table.retry_in(p1, 5.0) is None  # due: may dial (the streak is kept)
    assert table.refused(p1, 5.0) == 5.0
    table.clear(p1)
    assert table.refused(p1, 10.0) == 1.0  # a fresh streak after the peer talked
    table.refused(p2, 10.0)
    table.refused(p3, 10.0)
    assert len(table) == 2  # bounded: the least recently refused peer is forgotten
    assert table.retry_in(p1, 10.0) is None


async def test_hang_up_after_handshake_backs_off_redials() -> None:
    async with side(1, settings=PATIENT) as a, side(2) as b:
        b.blocked.add(a.peer)
        a.manager.dial(b.peer, [b.address])
        # XX: the dialer completes first, then the listener refuses and hangs up.
        assert await a.expect(Disconnected) == Disconnected(b.peer, "eof")
        assert b.manager.counters.get("conn.refused.peer_blocklisted") == 1
        assert a.manager.counters.get("conn.refused_by_peer") == 1
        # The next sends fail fast, without a socket: b is not asked again.
        for attempt in range(3):
            assert a.manager.send(b.peer, OutboundFrame(b"%d" % attempt), [b.address]) is None
            failed = await a.expect(DialFailedIn)
            assert isinstance(failed, DialFailedIn)
            assert failed.reason.startswith("refused_by_peer: retry in ")
            unsent = await a.expect(UnsentIn)
            assert isinstance(unsent, UnsentIn)
            assert [f.frame for f in unsent.frames] == [b"%d" % attempt]
        assert b.manager.counters.get("conn.refused.peer_blocklisted") == 1
        assert a.manager.counters.get("dial.attempts") == 1


async def test_peer_that_dials_us_clears_its_refusal() -> None:
    async with side(1, settings=PATIENT) as a, side(2) as b:
        b.blocked.add(a.peer)
        a.manager.dial(b.peer, [b.address])
        await a.expect(Disconnected)
        assert a.manager.refusals.retry_in(b.peer, trio.current_time()) is not None
        b.blocked.clear()
        b.manager.dial(a.peer, [a.address])
        await a.expect(Connected)
        assert a.manager.refusals.retry_in(b.peer, trio.current_time()) is None


async def test_dial_address_learns_the_peer_and_refuses_self() -> None:
    async with side(1) as a, side(2) as b:
        result = await a.manager.dial_address(b.address.without_peer())
        assert isinstance(result, PeerConnection)
        assert result.peer == b.peer
        assert a.manager.is_connected(b.peer)
        assert await a.manager.dial_address(a.address.without_peer()) == "peer_self_connection"
        # Both ends of the loop are this node, and both refuse it.
        assert a.manager.counters.get("conn.refused.peer_self_connection") == 2


async def test_bootstrap_link_learns_peer_and_reconnects() -> None:
    learned: list[tuple[PeerId, Address]] = []
    async with side(1) as a, side(2) as b:
        bare = b.address.without_peer()
        a.manager.keep_bootstrap_link(bare, lambda peer, addr: learned.append((peer, addr)))
        a.manager.keep_bootstrap_link(
            a.address.without_peer(), lambda peer, addr: learned.append((peer, addr))
        )
        assert await a.expect(Connected) == Connected(b.peer, b.address, inbound=False)
        await wait_until(lambda: len(learned) == 1)
        assert learned == [(b.peer, bare.with_peer(b.peer))]
        # b drops the link; a dials the address again (after the shortest delay).
        assert b.manager.disconnect(a.peer, "test")
        assert await a.expect(Disconnected) == Disconnected(b.peer, "eof")
        assert await a.expect(Connected) == Connected(b.peer, b.address, inbound=False)
        # Its own address was given up at once: never counted as a connection.
        assert learned == [(b.peer, bare.with_peer(b.peer))]
        assert a.manager.counters.get("conn.refused.peer_self_connection") == 2


async def test_listens_on_every_address_and_stops_all() -> None:
    listen = [Address.from_string("/ip4/127.0.0.1/tcp/0")] * 2
    async with side(1, listen=listen) as a, side(2) as b:
        assert len(a.manager.listen_addresses) == 2
        for address in a.manager.listen_addresses:
            result = await b.manager.dial_address(address)
            assert isinstance(result, PeerConnection)
            assert b.manager.disconnect(a.peer, "test")
            await wait_until(lambda: not b.manager.is_connected(a.peer))
        a.manager.stop_accepting()
        for address in a.manager.listen_addresses:
            endpoint = address.tcp_endpoint()
            assert endpoint is not None
            with trio.fail_after(5):
                result = await b.manager.dial_address(address)
            assert isinstance(result, str)
            assert result.startswith("connect_failed")
