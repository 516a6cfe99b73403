"""The proxy's Prometheus metrics: what it counted, by arm and outcome, in the text format."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlchaos.arms import ARM_HEADER
from mlchaos.proxy import AbortRule, ControlClient
from tests.proxy.conftest import MakeProxy, Upstream


async def scrape(url: str, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s,
        s.get(f"{url}/metrics") as r,
    ):
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await r.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.asyncio
async def test_metrics_count_requests_errors_latency_and_faults_by_arm(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address, name="model")
    async with ControlClient(proxy.control_url, proxy.token) as c:
        await c.add_fault(AbortRule(type="abort", status=503, arm="experiment"))
    url = f"http://{proxy.listen_address}/echo"
    async with aiohttp.ClientSession() as s:
        for arm, n in (("experiment", 7), ("control", 5)):
            for _ in range(n):
                async with s.get(url, headers={ARM_HEADER: arm}) as r:
                    await r.read()
    m = await scrape(proxy.control_url, proxy.token)

    def value(name: str, **labels: str) -> float:
        return m[(name, tuple(sorted({"proxy": "model", **labels}.items())))]

    total = "mlchaos_proxy_requests_total"
    assert value(total, arm="experiment", outcome="error") == 7  # aborted with 503
    assert value(total, arm="experiment", outcome="ok") == 0
    assert value(total, arm="control", outcome="ok") == 5
    assert value("mlchaos_proxy_faulted_requests_total", arm="experiment") == 7
    hist = "mlchaos_proxy_request_duration_seconds"
    assert value(f"{hist}_count", arm="control") == 5
    assert value(f"{hist}_bucket", arm="control", le="+Inf") == 5
    assert value(f"{hist}_bucket", arm="control", le="10.0") == 5
    assert value(f"{hist}_sum", arm="control") > 0
    assert value("mlchaos_proxy_faults_active") == 1
    assert value("mlchaos_proxy_faults_injected_total") == 1


@pytest.mark.asyncio
async def test_metrics_need_the_token(http_upstream: Upstream, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(http_upstream.address)
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.control_url}/metrics") as r:
        assert r.status == 401
