"""The TCP relay against a real echo server, and each of its per-connection faults."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from pydantic import TypeAdapter

from mlchaos.arms import Arm, arm_for_unit
from mlchaos.observations import ErrorKind
from mlchaos.proxy import ProxyServer, Rule
from tests.proxy.conftest import Echo, MakeProxy

RULE = TypeAdapter[Rule](Rule)
ALL_EXPERIMENT = {"experiment": "100%"}


def rule(**data: object) -> Rule:
    return RULE.validate_python(data)


async def connect(proxy: ProxyServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = str(proxy.listen_address).rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def roundtrip(proxy: ProxyServer, payload: bytes, limit: float = 5.0) -> bytes:
    reader, writer = await connect(proxy)
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(limit):
            return await reader.readexactly(len(payload))
    finally:
        writer.close()


async def settled(proxy: ProxyServer) -> None:
    """Wait until the proxy has closed (and recorded) every relayed connection."""
    for _ in range(200):
        if proxy.stats().open_connections == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("connections still open")


@pytest.mark.asyncio
async def test_relay_carries_bytes_both_ways(tcp_echo: Echo, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp")
    payload = bytes(range(256)) * 4096  # 1 MiB: exercises flow control both ways
    assert await roundtrip(proxy, payload) == payload
    assert tcp_echo.received == len(payload)
    await settled(proxy)
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.OK]
    assert list(store.column("fault")) == [0]


@pytest.mark.asyncio
async def test_half_close_is_passed_on(tcp_echo: Echo, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp")
    reader, writer = await connect(proxy)
    try:
        writer.write(b"bye")
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 2) == b"bye", "EOF comes back after data"
    finally:
        writer.close()
    await settled(proxy)


@pytest.mark.asyncio
async def test_latency_delays_each_chunk_both_ways(tcp_echo: Echo, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp", arms=ALL_EXPERIMENT)
    proxy.faults.add(rule(type="latency", delay="100ms"))
    loop = asyncio.get_running_loop()
    reader, writer = await connect(proxy)
    try:
        for _ in range(2):
            t0 = loop.time()
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 2) == b"ping"
            elapsed = loop.time() - t0
            assert 0.19 <= elapsed < 0.6, "100 ms to the upstream and 100 ms back"
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_fault_on_the_experiment_arm_spares_control_connections(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp", arms={"control": "100%"})
    proxy.faults.add(rule(type="reset"))
    assert await roundtrip(proxy, b"hello") == b"hello"
    await settled(proxy)
    store = proxy.observations
    assert store is not None
    assert list(store.column("fault")) == [0]
    assert proxy.stats().arms["control"].requests == 1


@pytest.mark.asyncio
async def test_reset_resets_the_connection_at_its_first_data(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp", arms=ALL_EXPERIMENT)
    proxy.faults.add(rule(type="reset"))
    with pytest.raises(ConnectionResetError):
        await roundtrip(proxy, b"hello")
    await settled(proxy)
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.RESET]
    assert list(store.column("fault")) == [1]
    assert tcp_echo.received == 0


@pytest.mark.asyncio
async def test_reset_added_later_cuts_an_open_connection(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp", arms=ALL_EXPERIMENT)
    reader, writer = await connect(proxy)
    try:
        writer.write(b"one")
        assert await asyncio.wait_for(reader.readexactly(3), 2) == b"one"
        proxy.faults.add(rule(type="reset"))
        writer.write(b"two")
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.readexactly(3), 2)
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_blackhole_accepts_reads_and_never_forwards(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp", arms=ALL_EXPERIMENT)
    proxy.faults.add(rule(type="blackhole"))
    accepted = tcp_echo.accepted  # start() checked the upstream once
    reader, writer = await connect(proxy)
    try:
        writer.write(b"x" * 100_000)
        await asyncio.wait_for(writer.drain(), 2)  # the proxy keeps reading
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.3)
    finally:
        writer.close()
    await settled(proxy)
    assert tcp_echo.accepted == accepted, "a blackholed connection never reaches the upstream"
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.TIMEOUT]


@pytest.mark.asyncio
async def test_blackhole_on_an_open_connection_stalls_it_until_the_rule_goes(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp", arms=ALL_EXPERIMENT)
    reader, writer = await connect(proxy)
    try:
        writer.write(b"a")
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b"a"
        proxy.faults.add(rule(type="blackhole"), fault_id="bh")
        writer.write(b"b")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.2)
        proxy.faults.remove("bh")
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b"b", "nothing is lost"
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_bandwidth_limits_throughput_per_connection(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp", arms=ALL_EXPERIMENT)
    proxy.faults.add(rule(type="bandwidth", bytes_per_second=200_000))
    payload = b"z" * 120_000
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await roundtrip(proxy, payload) == payload
    elapsed = loop.time() - t0
    # 120 kB at 200 kB/s takes 0.6 s each way, less one 10 kB burst; both ways overlap
    assert 0.45 <= elapsed < 2.0


@pytest.mark.asyncio
async def test_refuse_resets_new_connections_at_once(tcp_echo: Echo, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp", arms=ALL_EXPERIMENT)
    proxy.faults.add(rule(type="refuse"))
    accepted = tcp_echo.accepted
    reader, writer = await connect(proxy)  # the kernel accepts; the proxy resets at once
    try:
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(10), 2)
    finally:
        writer.close()
    await settled(proxy)
    assert tcp_echo.accepted == accepted
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.CONNECT]


@pytest.mark.asyncio
async def test_upstream_down_mid_run_resets_the_client(make_proxy: MakeProxy) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await make_proxy(f"127.0.0.1:{port}", protocol="tcp")
    assert await roundtrip(proxy, b"up") == b"up"
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectionResetError):
        await roundtrip(proxy, b"down")
    await settled(proxy)
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.OK, ErrorKind.CONNECT]


@pytest.mark.asyncio
async def test_connections_get_arms_at_random_by_the_shares(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(
        tcp_echo.address, protocol="tcp", arms={"experiment": "50%", "control": "25%"}, seed=11
    )
    n = 80
    for _ in range(n):
        assert await roundtrip(proxy, b"k") == b"k"
    await settled(proxy)
    arms = proxy.stats().arms
    assert sum(a.requests for a in arms.values()) == n
    # Seeded, so the counts are exact: the same draws as arm_for_unit on Random(11), one per
    # connection (a wrong share or a second draw per connection changes them).
    rng = random.Random(11)
    expected = Counter(arm_for_unit(rng.random(), 0.5, 0.25) for _ in range(n))
    assert arms["experiment"].requests == expected[Arm.EXPERIMENT]
    assert arms["control"].requests == expected[Arm.CONTROL]
    assert arms["none"].requests == expected[None]


@pytest.mark.asyncio
async def test_an_arm_fault_on_a_tcp_proxy_without_shares_is_refused_at_preflight(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    """Connections carry no arm header: without shares no connection is in an arm, so a fault
    aimed at one would never fire. The injector's check says so before anything is injected."""
    from pydantic import TypeAdapter

    from mlchaos.errors import PreflightError
    from mlchaos.faults import ProxyFaultInjector
    from mlchaos.proxy import ControlClient, Rule
    from mlchaos.units import Duration

    rules = TypeAdapter[Rule](Rule)
    bare = await make_proxy(tcp_echo.address, protocol="tcp")
    shared = await make_proxy(
        tcp_echo.address, protocol="tcp", arms={"experiment": "50%", "control": "50%"}
    )
    for proxy, arm, refused in (
        (bare, "experiment", True),
        (bare, "all", False),
        (shared, "experiment", False),
    ):
        async with ControlClient(proxy.control_url, proxy.token) as client:
            rule = rules.validate_python({"type": "reset", "arm": arm})
            injector = ProxyFaultInjector(
                client, rule, lease=Duration(5.0), fault_id="run-0", proxy="store"
            )
            if refused:
                with pytest.raises(PreflightError, match="would never fire"):
                    await injector.check()
            else:
                await injector.check()
            assert await client.fault_ids() == []  # nothing left behind either way


@pytest.mark.asyncio
async def test_each_arm_listener_puts_all_its_connections_in_its_arm(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(
        tcp_echo.address,
        protocol="tcp",
        arm_listen={"experiment": "127.0.0.1:0", "control": "127.0.0.1:0"},
    )
    proxy.faults.add(rule(type="reset", arm="experiment"))

    async def through(arm: str) -> bytes:
        address = proxy.arm_addresses[arm]
        reader, writer = await asyncio.open_connection(address.host, address.port)
        try:
            writer.write(b"ping")
            await writer.drain()
            async with asyncio.timeout(5):
                return await reader.readexactly(4)
        finally:
            writer.close()

    assert await through("control") == b"ping"
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await through("experiment")
    assert await roundtrip(proxy, b"none") == b"none"  # the main listener: no arm, no fault
    await settled(proxy)
    arms = proxy.stats().arms
    assert (arms["experiment"].requests, arms["control"].requests) == (1, 1)
    assert proxy._info()["arm_listen"].keys() == {"experiment", "control"}


def test_arm_listeners_are_for_tcp_proxies() -> None:
    from mlchaos.proxy import ProxyConfig

    with pytest.raises(ValueError, match="arm_listen is for tcp proxies"):
        ProxyConfig.model_validate(
            {
                "listen": "127.0.0.1:0",
                "upstream": "127.0.0.1:1",
                "arm_listen": {"experiment": "127.0.0.1:0"},
            }
        )
