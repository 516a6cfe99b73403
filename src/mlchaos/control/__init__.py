"""What every mlchaos control API shares, server and client: bearer token, JSON, errors.

The proxy's and the agent's control APIs are aiohttp applications built with
:func:`guarded_app` behind a token from :func:`resolve_token`; their clients derive from
:class:`ControlAPIClient`.
"""

from mlchaos.control._client import ControlAPIClient, StatusError, call_sync
from mlchaos.control._server import BadRequestError, guarded_app, json_error, parse_body, read_body
from mlchaos.control._token import TokenSource, default_token_dir, resolve_token

__all__ = [
    "BadRequestError",
    "ControlAPIClient",
    "StatusError",
    "TokenSource",
    "call_sync",
    "default_token_dir",
    "guarded_app",
    "json_error",
    "parse_body",
    "read_body",
    "resolve_token",
]
