"""Run one demo service: serve an aiohttp app on loopback, announce it, stop on a signal.

Every demo service is its own OS process started by :class:`~mlchaos.demo.ServiceGroup`. It
binds ``127.0.0.1:port`` (0: an ephemeral port; in isolation mode the
address in ``MLCHAOS_DEMO_BIND``), installs SIGTERM and SIGINT handlers, and only
then prints its ONE ready line, ``{"ready": true, "name": ..., "port": ...}``, so a stop signal
can never arrive unhandled. On either signal it shuts the app down (its ``cleanup_ctx`` and
``on_cleanup`` run: background tasks are cancelled, sessions and databases closed) and the
process exits with status 0.

Every service answers errors as ``{"error": "..."}`` with the status
(:func:`mlchaos.testing._oip.json_errors`), as the Open Inference Protocol and Feast's HTTP
server do.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from mlchaos.errors import MlchaosError, RunError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "ServeError",
    "free_port",
    "run_service",
    "serve",
]

# Loopback, unless isolation mode gives the service an address of its own namespace.
HOST = os.environ.get("MLCHAOS_DEMO_BIND", "127.0.0.1")


def free_port() -> int:
    """A loopback port nothing listens on now (for a child program that needs a number)."""
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ServeError(RunError):
    """A service could not start (port in use, bad model file...); the message says why."""


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
