"""Redis as the demo's feature store: the server process, and reading and writing features.

``python -m mlchaos.demo redis`` starts a real ``redis-server`` (no persistence, its files in a
temporary directory) as its child on a free loopback port, waits until it answers PING, prints
the ready line and stops it again on SIGTERM/SIGINT. Features live in one hash per entity,
``entity_features:{id}`` with fields ``f1``, ``f2``, ``f3`` and ``event_ts`` (unix seconds).
The pipeline and the gateway pick this backend when their ``--store`` is a ``redis://`` URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

from mlchaos.demo._serve import HOST, ServeError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "KEY_PREFIX",
    "fetch_redis_features",
    "is_redis",
    "redis_client",
    "serve_redis",
    "write_redis_features",
]

KEY_PREFIX = "entity_features:"
_READY_TIMEOUT_S = 10.0


def is_redis(url: str) -> bool:
    return url.startswith("redis://")


def redis_client(url: str, timeout: float) -> Redis:
    """A pooled asyncio client whose connects and commands give up after ``timeout``."""
    from redis.asyncio import Redis  # noqa: PLC0415

    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
        decode_responses=True,
    )


async def write_redis_features(client: Redis, body: dict[str, Any]) -> None:
    """Write a Feast push body (``{"df": {...}}``) as one hash per entity, in one round trip."""
    df = body["df"]
    names = [k for k in df if k not in ("entity_id", "event_timestamp")]
    from mlchaos.demo._store import parse_timestamp  # noqa: PLC0415

    async with client.pipeline(transaction=False) as pipe:
        for i, entity in enumerate(df["entity_id"]):
            fields: dict[str, float] = {n: float(df[n][i]) for n in names}
            fields["event_ts"] = parse_timestamp(df["event_timestamp"][i])
            pipe.hset(f"{KEY_PREFIX}{entity}", mapping=fields)  # type: ignore[arg-type]
        await pipe.execute()


async def fetch_redis_features(
    client: Redis, entity: int, features: tuple[str, ...]
) -> tuple[tuple[float, ...], float] | None:
    """``(values, event time)`` of one entity, or None when it has no complete row."""
    row: dict[Any, Any] = await client.hgetall(f"{KEY_PREFIX}{entity}")
    try:
        return tuple(float(row[f]) for f in features), float(row["event_ts"])
    except (KeyError, ValueError):
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def serve_redis(port: int) -> None:
    """Run redis-server on ``port`` (0: a free one) until SIGTERM or SIGINT."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServeError(
            "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)"
        )
    port = port or _free_port()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    with tempfile.TemporaryDirectory(prefix="mlchaos-redis-") as workdir:
        argv = ["--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", workdir, "--protected-mode", "yes", "--loglevel", "warning"]
        child = await asyncio.create_subprocess_exec(
            binary, *argv, stdin=asyncio.subprocess.DEVNULL, stdout=sys.stderr
        )
        try:
            for sig in signals:
                loop.add_signal_handler(sig, stop.set)
            await _wait_until_ready(port, child)
            sys.stdout.write(json.dumps({"ready": True, "name": "redis", "port": port}) + "\n")
            sys.stdout.flush()
            exited = asyncio.create_task(child.wait())
            stopped = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if exited in done:
                raise ServeError(f"redis-server exited with status {child.returncode}")
            exited.cancel()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if child.returncode is None:
                child.terminate()
                try:
                    async with asyncio.timeout(5):
                        await child.wait()
                except TimeoutError:
                    child.kill()
                    await child.wait()


async def _wait_until_ready(port: int, child: asyncio.subprocess.Process) -> None:
    from redis.asyncio import Redis  # noqa: PLC0415
    from redis.exceptions import RedisError  # noqa: PLC0415

    deadline = time.monotonic() + _READY_TIMEOUT_S
    client = Redis(host=HOST, port=port, socket_connect_timeout=0.5)
    try:
        while True:
            if child.returncode is not None:
                raise ServeError(f"redis-server exited with status {child.returncode}")
            with contextlib.suppress(RedisError, OSError):
                if await client.ping():
                    return
            if time.monotonic() > deadline:
                raise ServeError(f"redis-server did not answer PING within {_READY_TIMEOUT_S}s")
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
