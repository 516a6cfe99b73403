"""The experiment's proxies and agents, opened for a run and closed after it, in one place.

A proxy is served in this process (``serve:``, stopped with the run) or connected to
(``connect:``); an agent is always connected to. Each control API must answer before the run
goes on, and each is registered so that ``mlchaos halt`` can clear it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlchaos.errors import MlchaosError, PreflightError
from mlchaos.journal import AgentRecord, ProxyRecord

if TYPE_CHECKING:
    from mlchaos.agent import AgentClient
    from mlchaos.proxy import ControlClient
    from mlchaos.runner._events import Event
    from mlchaos.safety import Registry
    from mlchaos.spec import Experiment

__all__ = ["Endpoints", "OpenEndpoints", "open_endpoints"]


@dataclass
class Endpoints:
    """The control API clients of the experiment's proxies and agents, by name."""

    proxies: dict[str, ControlClient] = field(default_factory=dict)
    agents: dict[str, AgentClient] = field(default_factory=dict)


OpenEndpoints = Callable[
    ["Experiment", str, "Registry", Callable[["Event"], None]],
    contextlib.AbstractAsyncContextManager[Endpoints],
]


@contextlib.asynccontextmanager
async def open_endpoints(
    exp: Experiment, run_id: str, registry: Registry, emit: Callable[[Event], None]
) -> AsyncIterator[Endpoints]:
    """Every proxy and agent of ``exp`` open and answering; all closed on exit."""
    from mlchaos.agent import AgentClient  # noqa: PLC0415
    from mlchaos.proxy import ControlClient, ProxyServer  # noqa: PLC0415

    opened = Endpoints()
    async with contextlib.AsyncExitStack() as stack:
        for spec in exp.proxies:
            if spec.serve is not None:
                server = ProxyServer(spec.serve)
                await server.start()
                stack.push_async_callback(server.stop)
                url, token = server.control_url, server.token
                listen = str(server.listen_address)
                emit(ProxyRecord(name=spec.name, mode="serve", control=url, listen=listen))
            else:
                assert spec.connect is not None
                url = spec.connect.url
                token = read_token(Path(spec.connect.token_file), f"proxy '{spec.name}'")
                emit(ProxyRecord(name=spec.name, mode="connect", control=url))
            client = await stack.enter_async_context(ControlClient(url, token))
            registry.add_proxy(run_id, url, token)  # so 'mlchaos halt' can clear it
            await _health(client, f"proxy '{spec.name}'")
            opened.proxies[spec.name] = client
        for agent in exp.agents:
            url = agent.connect.url
            token = read_token(Path(agent.connect.token_file), f"agent '{agent.name}'")
            agent_client = await stack.enter_async_context(AgentClient(url, token))
            registry.add_agent(run_id, url, token)  # so 'mlchaos halt' can resume
            await _health(agent_client, f"agent '{agent.name}'")
            emit(AgentRecord(name=agent.name, control=url))
            opened.agents[agent.name] = agent_client
        yield opened


async def _health(client: ControlClient | AgentClient, owner: str) -> None:
    try:
        await client.health()
    except MlchaosError as exc:
        raise PreflightError(f"{owner}: {exc}") from None


def read_token(path: Path, owner: str) -> str:
    """``owner`` is e.g. "proxy 'p'" or "agent 'a'"."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PreflightError(
            f"{owner}: cannot read its token file {path}: {exc.strerror}"
        ) from None
    if not token:
        raise PreflightError(f"{owner}: token file {path} is empty")
    return token
