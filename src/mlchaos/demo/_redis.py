"""Redis as the demo's feature store: the server process, and reading and writing features.

``python -m mlchaos.demo redis`` starts a real ``redis-server`` (no persistence, its files in a
temporary directory) as its child on a free loopback port, waits until it answers PING, prints
the ready line and stops it again on SIGTERM/SIGINT. Features live in one hash per entity,
``entity_features:{id}`` with fields ``f1``, ``f2``, ``f3`` and ``event_ts`` (unix seconds).
The pipeline and the gateway pick this backend when their ``--store`` is a ``redis://`` URL.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from mlchaos.demo._child import serve_child
from mlchaos.demo._serve import HOST, ServeError, free_port

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


async def serve_redis(port: int) -> None:
    """Run redis-server on ``port`` (0: a free one) until SIGTERM or SIGINT."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServeError(
            "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)"
        )
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="mlchaos-redis-") as workdir:
        argv = [binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", workdir, "--protected-mode", "yes", "--loglevel", "warning"]
        await serve_child("redis", argv, port, lambda: _pings(port), _READY_TIMEOUT_S)


async def _pings(port: int) -> bool:
    from redis.asyncio import Redis  # noqa: PLC0415
    from redis.exceptions import RedisError  # noqa: PLC0415

    client = Redis(host=HOST, port=port, socket_connect_timeout=0.5)
    try:
        return bool(await client.ping())
    except RedisError:
        return False
    finally:
        await client.aclose()
