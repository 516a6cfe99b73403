"""The agent: a long-lived mlchaos process that pauses processes under leases.

A paused process (SIGSTOP) is resumed when its lease ends unless the runner renews it, so a
runner that dies leaves nothing paused for longer than one lease; stopping the agent resumes
everything. ``mlchaos agent serve`` runs it; :class:`AgentClient` talks to it.
"""

from mlchaos.agent._client import AgentClient
from mlchaos.agent._server import AgentServer, serve_agent_forever
from mlchaos.agent._table import PauseTable, UnknownPauseError

__all__ = ["AgentClient", "AgentServer", "PauseTable", "UnknownPauseError", "serve_agent_forever"]
