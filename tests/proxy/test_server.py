"""Starting and stopping a proxy: clear start errors, nothing left bound, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest

import mlchaos.proxy
from mlchaos.errors import ProxyStartError
from mlchaos.proxy import ProxyConfig, ProxyServer, serve_forever
from tests.conftest import free_port
from tests.proxy.conftest import MakeProxy, Upstream, connect


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now (TIME_WAIT leftovers do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        s.listen()
        return True


@pytest.mark.asyncio
async def test_port_in_use_fails_start_naming_the_address_and_binds_nothing(
    http_upstream: Upstream,
) -> None:
    control = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = ProxyConfig.model_validate(
            {
                "listen": f"127.0.0.1:{port}",
                "upstream": http_upstream.address,
                "control": {"listen": f"127.0.0.1:{control}"},
            }
        )
        with pytest.raises(ProxyStartError, match=rf"127.0.0.1:{port}.*in use"):
            await ProxyServer(config, token="t").start()
    assert port_is_free(control)


@pytest.mark.asyncio
async def test_control_port_in_use_releases_the_data_port(http_upstream: Upstream) -> None:
    listen = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        control = taken.getsockname()[1]
        config = ProxyConfig.model_validate(
            {
                "listen": f"127.0.0.1:{listen}",
                "upstream": http_upstream.address,
                "control": {"listen": f"127.0.0.1:{control}"},
            }
        )
        with pytest.raises(ProxyStartError, match=rf"127.0.0.1:{control} for the control API"):
            await ProxyServer(config, token="t").start()
    assert port_is_free(listen)


@pytest.mark.asyncio
async def test_upstream_down_at_start_is_named() -> None:
    upstream = f"127.0.0.1:{free_port()}"
    listen = free_port()
    config = ProxyConfig.model_validate({"listen": f"127.0.0.1:{listen}", "upstream": upstream})
    with pytest.raises(ProxyStartError, match=rf"upstream {upstream}.*is it running"):
        await ProxyServer(config, token="t").start()
    assert port_is_free(listen)


@pytest.mark.asyncio
async def test_stop_closes_open_connections_and_frees_the_ports(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(mlchaos.proxy.BlackholeRule(type="hang"))
    port = proxy.listen_address.port
    reader, writer = await connect(proxy)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nx-mlchaos-arm: experiment\r\n\r\n")
    await asyncio.sleep(0.05)
    await proxy.stop()
    try:
        assert await asyncio.wait_for(reader.read(), 2) == b""
    except ConnectionResetError:
        pass  # an abort may reach the client as a reset: either way, it is closed
    finally:
        writer.close()
    assert port_is_free(int(port))
    assert port_is_free(int(proxy.control_url.rsplit(":", 1)[1]))
    assert len(proxy.faults) == 0


@pytest.mark.asyncio
async def test_serve_forever_announces_itself_and_stops_on_sigterm(
    http_upstream: Upstream, tmp_path: object
) -> None:
    listen = free_port()
    config = ProxyConfig.model_validate(
        {
            "listen": f"127.0.0.1:{listen}",
            "upstream": http_upstream.address,
            "control": {"token_file": f"{tmp_path}/token"},
        }
    )
    lines: list[str] = []
    task = asyncio.create_task(serve_forever(config, print_fn=lines.append))
    for _ in range(200):
        if lines:
            break
        await asyncio.sleep(0.01)
    [line] = lines
    assert f"127.0.0.1:{listen}" in line
    assert "control API http://127.0.0.1:" in line
    assert f"{tmp_path}/token" in line
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 5)
    assert port_is_free(listen)


def test_public_names_are_pinned() -> None:
    """The API changes only on purpose (ruff's RUF022 keeps ``__all__`` sorted)."""
    assert set(mlchaos.proxy.__all__) == {
        "HTTP_RULES",
        "TCP_RULES",
        "AbortRule",
        "ActiveFault",
        "Address",
        "ArmStats",
        "BandwidthRule",
        "BlackholeRule",
        "ControlClient",
        "ControlConfig",
        "Edit",
        "FaultArm",
        "FaultTable",
        "Where",
        "LatencyRule",
        "Protocol",
        "ProxyConfig",
        "ProxyServer",
        "ProxyStats",
        "RefuseRule",
        "ResetRule",
        "RewriteRule",
        "Rule",
        "UnknownFaultError",
        "serve_forever",
        "LimitDataRule",
        "SlicerRule",
        "SlowCloseRule",
        "Stream",
        "TimeoutRule",
        "ToxiproxyApi",
        "ToxiproxyConfig",
    }


def test_importing_the_proxy_package_loads_no_network_library() -> None:
    """The spec and the traffic config import the proxy's models: that must stay cheap."""
    import subprocess
    import sys

    code = (
        "import sys, mlchaos.proxy; "
        "print(sorted(m for m in ('aiohttp', 'httptools', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
