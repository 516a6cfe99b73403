"""Run one demo service: serve an aiohttp app on loopback, announce it, stop on a signal.

Every demo service is its own OS process started by :class:`~mlchaos.demo.ServiceGroup`. It
binds ``127.0.0.1:port`` (0: an ephemeral port), installs SIGTERM and SIGINT handlers, and only
then prints its ONE ready line, ``{"ready": true, "name": ..., "port": ...}``, so a stop signal
can never arrive unhandled. On either signal it shuts the app down (its ``cleanup_ctx`` and
``on_cleanup`` run: background tasks are cancelled, sessions and databases closed) and the
process exits with status 0.

Every service answers errors as ``{"error": "..."}`` with the status (:func:`json_errors`,
:class:`HTTPError`), as the Open Inference Protocol and Feast's HTTP server do.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from mlchaos.errors import MlchaosError, RunError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "HTTPError",
    "ServeError",
    "free_port",
    "json_errors",
    "read_json_object",
    "run_service",
    "serve",
]

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port nothing listens on now (for a child program that needs a number)."""
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ServeError(RunError):
    """A service could not start (port in use, bad model file...); the message says why."""


class HTTPError(Exception):
    """A request the service refuses: answered ``{"error": message}`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_errors() -> Any:
    """An aiohttp middleware answering :class:`HTTPError` and aiohttp's own errors (404, 405,
    413...) as ``{"error": "..."}`` with their status."""
    from aiohttp import web  # noqa: PLC0415

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except HTTPError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return web.json_response({"error": exc.reason}, status=exc.status)

    return middleware


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; :class:`HTTPError` (400) when it is not one."""
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise HTTPError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HTTPError("the request body must be a JSON object")
    return body


async def serve(app: web.Application, name: str, port: int) -> None:
    """Serve ``app`` on ``127.0.0.1:port`` until SIGTERM or SIGINT, printing the ready line."""
    from aiohttp import web  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    signals = (signal.SIGTERM, signal.SIGINT)
    try:
        try:
            await web.TCPSite(runner, HOST, port).start()
        except OSError as exc:
            raise ServeError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
        bound = int(runner.addresses[0][1])
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        sys.stdout.write(json.dumps({"ready": True, "name": name, "port": bound}) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await runner.cleanup()


def run_service(make: Callable[[], Coroutine[Any, Any, None]], name: str) -> int:
    """Run a service's main coroutine on uvloop (when present); its exit status.

    0 after a stop signal; with one line on stderr, the error's exit code when it could not
    start (2 for invalid input such as a bad model file, 3 for a port in use).
    """
    try:
        import uvloop  # noqa: PLC0415

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is absent on some platforms
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(make())
    except MlchaosError as exc:
        sys.stderr.write(f"mlchaos.demo {name}: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:  # SIGINT before the handlers were installed
        return 0
    return 0
