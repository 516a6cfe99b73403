"""The active fault table: leases expire on time, renewals keep faults, rules fit the mode."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import TypeAdapter

from mlchaos.errors import ConfigError
from mlchaos.proxy import FaultTable, Protocol, Rule, UnknownFaultError
from mlchaos.units import Duration

RULE = TypeAdapter[Rule](Rule)
ABORT = RULE.validate_python({"type": "abort"})


@pytest.mark.asyncio
async def test_lease_expiry_removes_the_fault_on_time() -> None:
    table = FaultTable(Protocol.HTTP)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    fault_id = table.add(ABORT, Duration(0.15))
    while fault_id in table:
        await asyncio.sleep(0.005)
        assert loop.time() - t0 < 1.0
    assert 0.14 <= loop.time() - t0 < 0.25
    assert table.list() == []


@pytest.mark.asyncio
async def test_renew_keeps_the_fault_past_its_first_lease() -> None:
    table = FaultTable(Protocol.HTTP)
    fault_id = table.add(ABORT, Duration(0.15))
    for _ in range(4):
        await asyncio.sleep(0.08)
        renewed = table.renew(fault_id, Duration(0.15))
        assert 0.14 <= renewed.expires_in <= 0.15
    assert fault_id in table, "renewed four times: alive well past its first 150 ms"
    await asyncio.sleep(0.25)
    assert fault_id not in table


@pytest.mark.asyncio
async def test_add_under_an_active_id_replaces_the_fault() -> None:
    table = FaultTable(Protocol.HTTP)
    table.add(ABORT, Duration(0.1), fault_id="f1")
    latency = RULE.validate_python({"type": "latency", "delay": "10ms"})
    table.add(latency, Duration(5.0), fault_id="f1")
    await asyncio.sleep(0.15)  # the first lease's timer must not remove the replacement
    [only] = table.list()
    assert only.id == "f1"
    assert only.rule == latency
    assert str(only.lease) == "5s"


@pytest.mark.asyncio
async def test_remove_clear_and_unknown_ids() -> None:
    table = FaultTable(Protocol.HTTP)
    a = table.add(ABORT)
    table.add(ABORT)
    assert table.list()[0].lease == Duration(5.0), "the default lease"
    table.remove(a)
    with pytest.raises(UnknownFaultError):
        table.remove(a)
    with pytest.raises(UnknownFaultError):
        table.renew("nope")
    assert table.clear() == 1
    assert len(table) == 0


@pytest.mark.asyncio
async def test_rules_that_do_not_fit_the_mode_are_rejected_with_the_allowed_list() -> None:
    http, tcp = FaultTable(Protocol.HTTP), FaultTable(Protocol.TCP)
    bandwidth = RULE.validate_python({"type": "bandwidth", "bytes_per_second": 100})
    with pytest.raises(ConfigError, match=r"'bandwidth' does not apply in http mode.*latency"):
        http.add(bandwidth)
    with pytest.raises(ConfigError, match=r"'abort' does not apply in tcp mode"):
        tcp.add(ABORT)
    assert tcp.add(bandwidth)


@pytest.mark.asyncio
async def test_bad_leases_and_ids_are_rejected() -> None:
    table = FaultTable(Protocol.HTTP)
    with pytest.raises(ConfigError, match=r"lease must be positive"):
        table.add(ABORT, Duration(0.0))
    with pytest.raises(ConfigError, match=r"fault id"):
        table.add(ABORT, fault_id="has space")
    assert len(table) == 0


@pytest.mark.asyncio
async def test_http_plan_orders_reset_hang_abort_and_keeps_latency_apart() -> None:
    table = FaultTable(Protocol.HTTP)
    for data in (
        {"type": "abort"},
        {"type": "latency", "delay": "1ms"},
        {"type": "hang", "arm": "all"},
        {"type": "reset", "arm": "control"},
    ):
        table.add(RULE.validate_python(data))
    exp = table.http_plan(1)
    assert [e.rule.type for e in exp.terminal] == ["hang", "abort"]
    assert [e.rule.type for e in exp.latency] == ["latency"]
    ctl = table.http_plan(2)
    assert [e.rule.type for e in ctl.terminal] == ["reset", "hang"]
    assert [e.rule.type for e in table.http_plan(0).terminal] == ["hang"]
