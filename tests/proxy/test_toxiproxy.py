"""The Toxiproxy-compatible API, driven by real Toxiproxy clients, unchanged: toxiproxy-python
(PyPI) and toxiproxy-node-client (npm, run by Node), each against a real ``mlchaos proxy
serve --toxiproxy-api`` process and a real TCP echo server, timing real traffic through the
proxies they make. Then what mlchaos adds: leases, arms, and its answers to hostile input.

The Node test is skipped without Node or without the client installed (``make test`` installs
it), naming why; CI requires it (``MLCHAOS_REQUIRE_NODE=1``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from toxiproxy import Toxiproxy  # type: ignore[import-untyped]
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists  # type: ignore[import-untyped]

from mlchaos.proxy import ProxyConfig, ProxyServer, ToxiproxyApi, ToxiproxyConfig
from tests.conftest import MLCHAOS, Spawn, first_line
from tests.proxy.conftest import Upstream

NODE_CLIENT = Path(__file__).parent / "toxiproxy_node"


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


@pytest.fixture
def echo() -> Iterator[str]:
    """A threaded TCP echo server on loopback; its address."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api_port(spawn: Spawn) -> int:
    """``mlchaos proxy serve --toxiproxy-api`` alone, as a toxiproxy-server would run."""
    ready = json.loads(
        first_line(spawn("proxy", "serve", "--toxiproxy-api", "127.0.0.1:0", "--announce"))
    )
    assert ready["port"] is None and ready["control"] is None
    return int(ready["toxiproxy"].rsplit(":", 1)[1])


def round_trip(listen: str, payload: bytes = b"ping", timeout: float = 2.0) -> tuple[str, float]:
    """Send ``payload`` through the proxy and read it back: (outcome, seconds)."""
    host, port = listen.rsplit(":", 1)
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = sock.recv(65536)
                if not chunk:
                    return "closed", time.monotonic() - t0
                got += chunk
            assert got == payload
    except TimeoutError:
        return "timeout", time.monotonic() - t0
    except ConnectionResetError:
        return "reset", time.monotonic() - t0
    except ConnectionRefusedError:
        return "refused", time.monotonic() - t0
    return "ok", time.monotonic() - t0


def test_toxiproxy_python_drives_proxies_and_toxics_on_real_traffic(
    api_port: int, echo: str
) -> None:
    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", api_port)
    assert json.loads(server.version())["version"].startswith("2.")
    proxy = server.create(upstream=echo, name="echo")
    assert proxy.enabled is True
    assert round_trip(proxy.listen)[0] == "ok"

    proxy.add_toxic(type="latency", attributes={"latency": 250, "jitter": 0})
    [toxic] = proxy.toxics().values()
    assert (toxic.name, toxic.stream, toxic.attributes) == (
        "latency_downstream",
        "downstream",
        {"latency": 250, "jitter": 0},
    )
    outcome, took = round_trip(proxy.listen)
    assert outcome == "ok" and took >= 0.25
    proxy.destroy_toxic("latency_downstream")
    assert round_trip(proxy.listen)[1] < 0.25

    proxy.add_toxic(type="bandwidth", stream="upstream", attributes={"rate": 500})  # KB/s
    outcome, took = round_trip(proxy.listen, bytes(300_000), timeout=10)
    assert outcome == "ok" and took >= 0.5, "300 kB at 500 kB/s (less its 25 kB burst)"
    proxy.destroy_toxic("bandwidth_upstream")

    proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
    assert round_trip(proxy.listen)[0] == "reset"
    server.reset()
    assert proxy.toxics() == {}
    assert round_trip(proxy.listen)[0] == "ok"

    with proxy.down():
        assert round_trip(proxy.listen)[0] == "refused"
    assert round_trip(proxy.listen)[0] == "ok"

    with pytest.raises(ProxyExists):
        server.create(upstream=echo, name="echo")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    with pytest.raises(NotFound):
        proxy.destroy_toxic("never_added")
    [second] = server.populate([{"name": "second", "upstream": echo, "listen": "127.0.0.1:0"}])
    assert round_trip(second.listen)[0] == "ok"
    server.destroy_all()
    assert server.proxies() == {}
    assert round_trip(second.listen)[0] == "refused", "a deleted proxy no longer listens"


def _node() -> str:
    node = shutil.which("node")
    why = None
    if node is None:
        why = "Node is not installed (.ci/run installs it from Debian)"
    elif not (NODE_CLIENT / "node_modules" / "toxiproxy-node-client").is_dir():
        why = f"toxiproxy-node-client is not installed in {NODE_CLIENT} (make test installs it)"
    if why is not None:
        if os.environ.get("MLCHAOS_REQUIRE_NODE") == "1":
            pytest.fail(f"MLCHAOS_REQUIRE_NODE=1 but {why}")
        pytest.skip(why)
    assert node is not None
    return node


def test_toxiproxy_node_client_drives_proxies_and_toxics_on_real_traffic(
    api_port: int, echo: str
) -> None:
    node = _node()
    done = subprocess.run(
        [node, "client.mjs", f"http://127.0.0.1:{api_port}", echo],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    assert found["enabled"] is True
    assert found["base"]["outcome"] == "ok"
    assert found["toxic"] == {
        "attributes": {"latency": 300, "jitter": 0},
        "name": "slow",
        "stream": "downstream",
        "toxicity": 1,
        "type": "latency",
    }
    assert found["slow"]["outcome"] == "ok" and found["slow"]["ms"] >= 300
    assert found["changed"]["attributes"]["latency"] == 600
    assert found["slower"]["outcome"] == "ok" and found["slower"]["ms"] >= 600
    assert found["removed"]["ms"] < 300
    assert found["timeout"]["outcome"] == "timeout", "the upstream stream dropped"
    assert found["reset"]["outcome"] == "ok", "POST /reset removed the toxic"
    assert found["downEnabled"] is False and found["down"]["outcome"] == "ECONNREFUSED"
    assert found["up"]["outcome"] == "ok"
    assert found["badType"].endswith("400")
    assert found["populated"] == ["node-two"]
    assert found["all"] == ["node-echo", "node-two"]
    assert found["afterRemove"] == []


# -- what mlchaos adds, in process ------------------------------------------------------------


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def call(
    session: aiohttp.ClientSession, api: ToxiproxyApi, method: str, path: str, **kw: Any
) -> tuple[int, Any]:
    async with session.request(method, api.url + path, **kw) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


async def time_get(session: aiohttp.ClientSession, url: str, arm: str) -> float:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with session.get(url, headers={"x-mlchaos-arm": arm}) as resp:
        assert resp.status == 200
        await resp.read()
    return loop.time() - t0


@pytest.mark.asyncio
async def test_a_toxic_lapses_when_its_client_stops_calling(
    session: aiohttp.ClientSession, http_upstream: Upstream
) -> None:
    api = ToxiproxyApi(ToxiproxyConfig.model_validate({"listen": "127.0.0.1:0", "lease": "1s"}))
    await api.start()
    try:
        body = {"name": "p", "upstream": http_upstream.address}
        status, made = await call(session, api, "POST", "/proxies", json=body)
        assert status == 201
        toxic = {"type": "latency", "attributes": {"latency": 50}}
        status, _ = await call(session, api, "POST", "/proxies/p/toxics", json=toxic)
        assert status == 200
        for _ in range(4):  # calls naming the proxy keep renewing it: 2 s > the 1 s lease
            await asyncio.sleep(0.5)
            status, listed = await call(session, api, "GET", "/proxies/p/toxics")
            assert [t["name"] for t in listed] == ["latency_downstream"]
        await asyncio.sleep(1.3)  # no call: the lease lapses
        status, listed = await call(session, api, "GET", "/proxies/p/toxics")
        assert listed == []
        url = f"http://{made['listen']}/"
        assert await time_get(session, url, "control") < 0.05, "the latency is gone"
    finally:
        await api.stop()


@pytest.mark.asyncio
async def test_the_served_http_proxy_takes_toxics_aimed_at_one_arm(
    session: aiohttp.ClientSession, http_upstream: Upstream, tmp_path: Path
) -> None:
    config = ProxyConfig.model_validate(
        {
            "name": "model",
            "listen": "127.0.0.1:0",
            "upstream": http_upstream.address,
            "control": {"token_file": str(tmp_path / "token")},
        }
    )
    own = ProxyServer(config)
    await own.start()
    api = ToxiproxyApi(ToxiproxyConfig.model_validate({"listen": "127.0.0.1:0"}), own)
    await api.start()
    try:
        status, proxies = await call(session, api, "GET", "/proxies")
        assert proxies["model"]["listen"] == str(own.listen_address)
        toxic = {"type": "latency", "attributes": {"latency": 300, "arm": "experiment"}}
        status, made = await call(session, api, "POST", "/proxies/model/toxics", json=toxic)
        assert status == 200 and made["attributes"]["arm"] == "experiment"
        url = f"http://{own.listen_address}/"
        assert await time_get(session, url, "experiment") >= 0.3
        assert await time_get(session, url, "control") < 0.15
        status, answer = await call(
            session, api, "POST", "/proxies/model/toxics", json={"type": "slicer"}
        )
        assert status == 400 and "http proxy" in answer["error"]
        status, answer = await call(session, api, "DELETE", "/proxies/model")
        assert status == 409 and "mlchaos proxy serve" in answer["error"]
    finally:
        await api.stop()
        await own.stop()
    assert len(own.faults) == 0


@pytest.mark.asyncio
async def test_hostile_requests_get_toxiproxys_errors_and_change_nothing(
    session: aiohttp.ClientSession, http_upstream: Upstream
) -> None:
    api = ToxiproxyApi(ToxiproxyConfig.model_validate({"listen": "127.0.0.1:0"}))
    await api.start()
    try:
        cases: list[tuple[str, str, dict[str, Any], int, str]] = [
            ("POST", "/proxies", {"data": b"{not json"}, 400, "bad request body"),
            (
                "POST",
                "/proxies",
                {"json": {"upstream": "x:1"}},
                400,
                "missing required field: name",
            ),
            ("POST", "/proxies", {"json": {"name": "a", "upstream": "nope"}}, 400, "host:port"),
            ("POST", "/proxies", {"json": [1, 2]}, 400, "expected a JSON object"),
            ("POST", "/populate", {"json": {"name": "a"}}, 400, "JSON array"),
            ("GET", "/proxies/ghost", {}, 404, "proxy not found"),
            ("GET", "/proxies", {"headers": {"User-Agent": "Mozilla/5.0"}}, 403, "not allowed"),
            ("GET", "/proxies", {"headers": {"Host": "evil.example:8474"}}, 403, "loopback"),
        ]
        for method, path, kw, status, words in cases:
            got, answer = await call(session, api, method, path, **kw)
            assert (got, answer["status"]) == (status, status), (path, answer)
            assert words in answer["error"], answer
        body = {"name": "p", "upstream": http_upstream.address}
        assert (await call(session, api, "POST", "/proxies", json=body))[0] == 201
        for toxic, status, words in [
            ({"type": "latency", "stream": "sideways"}, 400, "stream was invalid"),
            ({"type": "latency", "attributes": {"latency": "1s"}}, 400, "integer"),
            ({"type": "latency", "attributes": {"latency": -5}}, 400, "negative"),
            ({"type": "latency", "toxicity": 2}, 400, "toxicity"),
            ({"type": "bandwidth", "attributes": {"rate": 0}}, 400, "rate"),
            ({"type": "slicer", "attributes": {"average_size": 0}}, 400, "slicer"),
            ({"type": "latency", "attributes": {"arm": "both"}}, 400, "arm"),
            ({"type": "latency", "attributes": {"arm": "control"}}, 400, "would never act"),
        ]:
            got, answer = await call(session, api, "POST", "/proxies/p/toxics", json=toxic)
            assert (got, answer["status"]) == (status, status), (toxic, answer)
            assert words in answer["error"], answer
        _, toxics = await call(session, api, "GET", "/proxies/p/toxics")
        assert toxics == [], "no refused toxic was half added"
        assert (await call(session, api, "POST", "/proxies/p/toxics", json={"type": "timeout"}))[
            0
        ] == 200
        got, answer = await call(
            session, api, "POST", "/proxies/p/toxics", json={"type": "timeout"}
        )
        assert (got, answer["error"]) == (409, "toxic already exists")
    finally:
        await api.stop()


def test_the_api_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        ToxiproxyConfig.model_validate({"listen": "0.0.0.0:8474"})
    done = subprocess.run(
        [*MLCHAOS, "proxy", "serve", "--toxiproxy-api", "0.0.0.0:8474"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "loopback only" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [*MLCHAOS, "proxy", "serve"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2 and "--toxiproxy-api" in done.stderr
