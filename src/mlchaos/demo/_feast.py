"""Real Feast as the demo's feature store: ``feast serve`` over a SQLite online store.

``python -m mlchaos.demo feast --dir DIR`` writes a Feast repository into ``DIR`` (the feature
view ``entity_features`` keyed by ``entity_id`` with ``f1``, ``f2``, ``f3``, fed by the push
source of the same name), runs ``feast apply``, then serves it with ``feast serve`` as its child
and prints the ready line once ``GET /health`` answers. The gateway and the pipeline talk to it
exactly as to the built-in store: Feast's own HTTP API (``/get-online-features``, ``/push``).

Feast runs from its own virtual environment so its dependencies never meet mlchaos's: the
``feast`` executable named by ``MLCHAOS_FEAST``, else ``feast`` on the PATH, else the checkout's
``.venv-feast`` (``make .venv-feast/.installed``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

from mlchaos.demo._child import serve_child
from mlchaos.demo._serve import HOST, ServeError, free_port
from mlchaos.demo._store import ENTITY_KEY, FEATURE_VIEW, STORE_FEATURES

__all__ = ["find_feast", "serve_feast"]

_READY_TIMEOUT_S = 90.0  # Feast imports a great deal before it serves; slow on a busy machine
_CHECKOUT_FEAST = Path(__file__).resolve().parents[3] / ".venv-feast" / "bin" / "feast"

_FEATURES = f'''\
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64

entity = Entity(name="entity", join_keys=["{ENTITY_KEY}"], value_type=ValueType.INT64)
batch = FileSource(path="{{source}}", timestamp_field="event_timestamp")
push = PushSource(name="{FEATURE_VIEW}", batch_source=batch)
view = FeatureView(
    name="{FEATURE_VIEW}",
    entities=[entity],
    ttl=timedelta(days=3650),
    online=True,
    source=push,
    schema=[{", ".join(f'Field(name="{f}", dtype=Float64)' for f in STORE_FEATURES)}],
)
'''
# An empty batch source with the view's columns: ``feast apply`` reads its schema.
_SOURCE = f"""\
import sys
import pandas as pd
columns = {{"{ENTITY_KEY}": pd.Series([], dtype="int64"),
           "event_timestamp": pd.Series([], dtype="datetime64[us, UTC]")}}
columns |= {{name: pd.Series([], dtype="float64") for name in {list(STORE_FEATURES)!r}}}
pd.DataFrame(columns).to_parquet(sys.argv[1])
"""


def find_feast() -> Path | None:
    """The ``feast`` executable to run, or None when Feast is not installed."""
    named = os.environ.get("MLCHAOS_FEAST")
    if named:
        return Path(named) if Path(named).exists() else None
    on_path = shutil.which("feast")
    if on_path is not None:
        return Path(on_path)
    return _CHECKOUT_FEAST if _CHECKOUT_FEAST.exists() else None


async def serve_feast(repo: Path, port: int) -> None:
    """Write and apply the repository in ``repo``, then serve it until SIGTERM or SIGINT."""
    feast = find_feast()
    if feast is None:
        raise ServeError(
            "Feast is not installed: make .venv-feast/.installed (or set MLCHAOS_FEAST to a "
            "feast executable)"
        )
    repo, source = _write_repo(repo)
    python = feast.parent / "python"
    await _run([str(python), "-c", _SOURCE, str(source)], repo)
    await _run([str(feast), "apply"], repo)
    port = port or free_port()
    argv = [str(feast), "--chdir", str(repo), "serve", "-h", HOST, "-p", str(port)]
    argv += ["--no-access-log"]
    argv += ["--max-requests", "0", "--registry_ttl_sec", "3600"]  # no worker restarts
    await serve_child("store", argv, port, lambda: _healthy(port), _READY_TIMEOUT_S)


def _write_repo(repo: Path) -> tuple[Path, Path]:
    """A fresh repository in ``repo``: its absolute path, and its batch source's."""
    repo = repo.resolve()
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "data").mkdir(parents=True)
    source = repo / "data" / "source.parquet"
    (repo / "feature_store.yaml").write_text(
        f"project: mlchaos_demo\nregistry: {repo / 'data' / 'registry.db'}\nprovider: local\n"
        f"online_store:\n  type: sqlite\n  path: {repo / 'data' / 'online.db'}\n"
        "offline_store:\n  type: file\nentity_key_serialization_version: 3\n"
    )
    (repo / "features.py").write_text(_FEATURES.replace("{source}", str(source)))
    return repo, source


async def _run(argv: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    child = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdout=sys.stderr, stderr=asyncio.subprocess.STDOUT
    )
    if await child.wait() != 0:
        raise ServeError(f"{' '.join(argv[:2])} failed with status {child.returncode}")


async def _healthy(port: int) -> bool:
    import aiohttp  # noqa: PLC0415

    timeout = aiohttp.ClientTimeout(total=1)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"http://{HOST}:{port}/health") as answer,
    ):
        return answer.status == 200
