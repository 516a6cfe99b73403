"""Leases are bounded: a fault can never outlive its runner by more than its environment allows,
and no client can store a lease that is not a finite, bounded number of seconds."""

from __future__ import annotations

import json

import aiohttp
import pytest
from pydantic import ValidationError

from mlchaos.units import Duration
from tests.proxy.conftest import MakeProxy, Upstream
from tests.safety.test_caps import experiment, violations


def test_each_environment_caps_the_lease_of_its_faults() -> None:
    """A 24 h lease once kept an abort fault alive 86,388 s after its runner was SIGKILLed."""
    (found,) = violations(experiment(lease="24h"))
    assert found.startswith("max_lease: the lease is 24h, over the 30s allowed in sandbox")
    (found,) = violations(experiment(environment="staging", lease="20s"))
    assert "over the 15s allowed in staging" in found
    assert violations(experiment(lease="30s")) == []


def test_a_duration_of_400_digits_is_refused_not_stored_as_infinite() -> None:
    with pytest.raises(ValueError, match="is too long"):
        Duration.parse("1" + "0" * 400 + "s")
    with pytest.raises(ValidationError, match="is too long"):
        experiment(lease="9" * 400 + "s")


@pytest.mark.asyncio
async def test_the_control_api_refuses_a_lease_it_cannot_hold_and_stays_json(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    headers = {"Authorization": f"Bearer {proxy.token}"}
    rule = {"type": "latency", "delay": "1ms"}
    async with aiohttp.ClientSession(headers=headers) as s:
        for lease, said in (("1" + "0" * 400 + "s", "too long"), ("1h", "maximum of 5m")):
            async with s.post(
                f"{proxy.control_url}/faults", json={"rule": rule, "lease": lease}
            ) as r:
                assert r.status == 400
                assert said in (await r.json())["error"]
        async with s.get(f"{proxy.control_url}/faults") as r:
            text = await r.text()
    assert json.loads(text) == {"faults": []}  # nothing stored; strict JSON (no Infinity)
    assert "Infinity" not in text
