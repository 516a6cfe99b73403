"""The feature store (``store``): Feast's online HTTP API over an embedded SQLite database.

One feature view, ``entity_features``, keyed by ``entity_id`` with features ``f1``, ``f2``,
``f3`` and each row's event timestamp, in one SQLite table (WAL journal, so a reader never
waits for the pipeline's writes). The HTTP shapes are Feast's feature server's:

* ``POST /get-online-features`` ``{"features": ["entity_features:f1", ...], "entities":
  {"entity_id": [1, 2]}, "full_feature_names": false}`` → column-oriented
  ``{"metadata": {"feature_names": ["entity_id", "f3", ...]}, "results": [{"values",
  "statuses", "event_timestamps"}, ...]}``. As in real Feast, where it matters to a client:
  the entity column comes first and the features follow *not* in the order asked for (Feast's
  own order varies; here it is the reverse), so a client must match columns by name; a missing
  entity's value is null with status ``NOT_FOUND`` and the epoch as its timestamp; a stored
  null is null with status ``PRESENT``; an unknown feature is answered 400.
* ``POST /push`` ``{"push_source_name": "entity_features", "df": {"entity_id": [...], "f1":
  [...], ..., "event_timestamp": ["2026-11-28T19:54:10.123456Z", ...]}, "to": "online"}``
  upserts the rows (a row older than the stored one for its entity is ignored, so a late push
  never overwrites fresher features; a feature may be null) and answers ``{"written": n}``.
* ``GET /health`` → ``{"ok": true}``.

SQLite calls run on the event loop: each is a sub-millisecond local transaction.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from mlchaos.demo._serve import serve
from mlchaos.errors import ConfigError
from mlchaos.testing._oip import HTTPError, json_errors, read_json_object

__all__ = [
    "ENTITY_KEY",
    "FEATURE_VIEW",
    "STORE_FEATURES",
    "FeatureDB",
    "format_timestamp",
    "parse_timestamp",
    "serve_store",
    "store_app",
]

FEATURE_VIEW = "entity_features"
ENTITY_KEY = "entity_id"
STORE_FEATURES = ("f1", "f2", "f3")
_EPOCH_TEXT = "1970-01-01T00:00:00Z"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entity_features (
    entity_id INTEGER PRIMARY KEY,
    f1 REAL,
    f2 REAL,
    f3 REAL,
    event_ts REAL NOT NULL
)
"""
_UPSERT = """
INSERT INTO entity_features (entity_id, f1, f2, f3, event_ts) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (entity_id) DO UPDATE SET
    f1 = excluded.f1, f2 = excluded.f2, f3 = excluded.f3, event_ts = excluded.event_ts
WHERE excluded.event_ts >= entity_features.event_ts
"""
_SELECT = """
SELECT entity_id, f1, f2, f3, event_ts FROM entity_features
WHERE entity_id IN (SELECT value FROM json_each(?))
"""

Row = tuple[int, float | None, float | None, float | None, float]


def format_timestamp(unix: float) -> str:
    """Unix seconds as Feast writes them: ISO-8601 UTC with microseconds and ``Z``."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> float:
    """An ISO-8601 timestamp (``Z`` or an offset; naive means UTC) as unix seconds."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class FeatureDB:
    """The ``entity_features`` table in a SQLite file (WAL); one connection, one thread."""

    def __init__(self, path: Path) -> None:
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the feature database {path}: {exc}") from None

    def upsert(self, rows: Sequence[Row]) -> None:
        """Write rows ``(entity_id, f1, f2, f3, event_ts)`` in one transaction."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(_UPSERT, rows)

    def read(self, entities: Sequence[int]) -> dict[int, Row]:
        """The stored rows of those entities (missing ones are absent)."""
        if not entities:
            return {}
        cursor = self._db.execute(_SELECT, (json.dumps(sorted(set(entities))),))
        return {int(r[0]): (int(r[0]), r[1], r[2], r[3], r[4]) for r in cursor}

    def close(self) -> None:
        self._db.close()


_DB = web.AppKey("db", FeatureDB)


def store_app(db_path: Path) -> web.Application:
    """The feature store's aiohttp application over the SQLite file ``db_path``."""
    app = web.Application(middlewares=[json_errors()], client_max_size=64 * 1024 * 1024)
    app[_DB] = FeatureDB(db_path)

    async def close_db(app: web.Application) -> AsyncIterator[None]:
        yield
        app[_DB].close()

    app.cleanup_ctx.append(close_db)
    app.router.add_post("/get-online-features", _get_online_features)
    app.router.add_post("/push", _push)
    app.router.add_get("/health", _health)
    return app


async def serve_store(db_path: Path, port: int) -> None:
    """Serve the feature store until SIGTERM or SIGINT."""
    await serve(store_app(db_path), "store", port)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _get_online_features(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    wanted = _feature_refs(body.get("features"))
    entities = body.get("entities")
    if not isinstance(entities, dict) or set(entities) != {ENTITY_KEY}:
        raise HTTPError(f"'entities' must be {{{ENTITY_KEY!r}: [ids...]}}")
    ids = entities[ENTITY_KEY]
    if not isinstance(ids, list) or not all(_is_int(v) for v in ids):
        raise HTTPError(f"'entities.{ENTITY_KEY}' must be a list of integers")
    full = body.get("full_feature_names", False) is True

    stored = request.app[_DB].read(ids)
    wanted = wanted[::-1]  # not the order asked for, as Feast's answers are not
    names = [ENTITY_KEY] + [f"{FEATURE_VIEW}__{f}" if full else f for f in wanted]
    results: list[dict[str, list[Any]]] = [
        {
            "values": list(ids),
            "statuses": ["PRESENT"] * len(ids),
            "event_timestamps": [_EPOCH_TEXT] * len(ids),
        }
    ]
    for feature in wanted:
        column = 1 + STORE_FEATURES.index(feature)
        values: list[Any] = []
        statuses: list[str] = []
        stamps: list[str] = []
        for entity in ids:
            row = stored.get(entity)
            values.append(None if row is None else row[column])
            statuses.append("NOT_FOUND" if row is None else "PRESENT")
            stamps.append(_EPOCH_TEXT if row is None else format_timestamp(row[4]))
        results.append({"values": values, "statuses": statuses, "event_timestamps": stamps})
    return web.json_response({"metadata": {"feature_names": names}, "results": results})


def _feature_refs(features: Any) -> list[str]:
    """The feature names asked for, from ``view:feature`` references; 400 on an unknown one."""
    if not isinstance(features, list) or not features:
        raise HTTPError("'features' must be a non-empty list such as ['entity_features:f1']")
    out = []
    for ref in features:
        view, _, name = ref.partition(":") if isinstance(ref, str) else ("", "", "")
        if view != FEATURE_VIEW or name not in STORE_FEATURES:
            known = ", ".join(f"{FEATURE_VIEW}:{f}" for f in STORE_FEATURES)
            raise HTTPError(f"unknown feature {ref!r}; this store has {known}")
        out.append(name)
    return out


async def _push(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if body.get("push_source_name") != FEATURE_VIEW:
        source = body.get("push_source_name")
        raise HTTPError(f"unknown push source {source!r}; use {FEATURE_VIEW!r}")
    if body.get("to", "online") not in {"online", "online_and_offline"}:
        raise HTTPError("'to' must be 'online' (this store has no offline store)")
    df = body.get("df")
    columns = [ENTITY_KEY, *STORE_FEATURES, "event_timestamp"]
    if not isinstance(df, dict) or not all(isinstance(df.get(c), list) for c in columns):
        raise HTTPError(f"'df' must hold a list for each of {', '.join(columns)}")
    lengths = {len(df[c]) for c in columns}
    if len(lengths) != 1:
        raise HTTPError("every column of 'df' must have the same length")
    rows: list[Row] = []
    for i, (entity, f1, f2, f3, stamp) in enumerate(zip(*(df[c] for c in columns), strict=True)):
        if not _is_int(entity):
            raise HTTPError(f"df.{ENTITY_KEY}[{i}] must be an integer, got {entity!r}")
        values = [f1, f2, f3]
        if not all(v is None or _finite(v) for v in values):
            raise HTTPError(f"df row {i}: features must be finite numbers or null, got {values!r}")
        try:
            ts = parse_timestamp(stamp) if isinstance(stamp, str) else math.nan
        except ValueError:
            ts = math.nan
        if not math.isfinite(ts):
            raise HTTPError(f"df.event_timestamp[{i}] must be an ISO-8601 time, got {stamp!r}")
        a, b, c = (None if v is None else float(v) for v in values)
        rows.append((int(entity), a, b, c, ts))
    request.app[_DB].upsert(rows)
    return web.json_response({"written": len(rows)})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
