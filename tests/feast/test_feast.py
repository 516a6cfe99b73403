"""Feast data faults against a real Feast feature server (``feast serve``, SQLite online store)
and the real Feast SDK as client (its ``remote`` online store), through an mlchaos proxy.

Feast runs from its own virtual environment (``.venv-feast``, made by ``make test``; or the
``feast`` executable named by ``MLCHAOS_FEAST``), so its dependencies never meet mlchaos's. The
tests skip, naming why, where it is missing, and fail instead when ``MLCHAOS_REQUIRE_FEAST=1``
(CI).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlchaos.arms import Arm, arm_for_key
from tests.conftest import MLCHAOS, ROOT, first_line

FEAST = Path(os.environ.get("MLCHAOS_FEAST", ROOT / ".venv-feast" / "bin" / "feast"))
SALT = "feast-test"
USERS = (1, 2, 3, 4, 5, 6, 7, 8)

REPO_FEATURES = """\
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
source = FileSource(path="data/source.parquet", timestamp_field="event_timestamp")
stats = FeatureView(
    name="user_stats", entities=[user], ttl=timedelta(days=3650), online=True, source=source,
    schema=[Field(name="f1", dtype=Float64), Field(name="f2", dtype=Float64),
            Field(name="f3", dtype=Int64)],
)
"""
SEED = """\
import datetime as dt, sys
import pandas as pd
from feast import FeatureStore
now = dt.datetime.now(dt.timezone.utc)
users = [1, 2, 3, 4, 5, 6, 7, 8]
df = pd.DataFrame({"user_id": users, "f1": [u / 10 for u in users],
                   "f2": [u + 0.5 for u in users], "f3": [u * 7 for u in users],
                   "event_timestamp": [now] * len(users)})
df.to_parquet(sys.argv[1] + "/data/source.parquet")
FeatureStore(repo_path=sys.argv[1]).write_to_online_store("user_stats", df)
"""
CLIENT = """\
import json, sys
from feast import FeatureStore
store = FeatureStore(repo_path=sys.argv[1])
rows = [{"user_id": u} for u in json.loads(sys.argv[2])]
features = ["user_stats:f1", "user_stats:f2"]
for full in (True, False):
    answer = store.get_online_features(features=features, entity_rows=rows, full_feature_names=full)
    print(json.dumps(answer.to_dict()))
"""


@dataclass(frozen=True)
class FeastServer:
    port: int
    repo: Path
    python: Path


def _settings(project: Path, online: str) -> str:
    return (
        f"project: mlchaos_test\nregistry: {project / 'data' / 'registry.db'}\n"
        f"provider: local\nonline_store:\n{online}entity_key_serialization_version: 3\n"
    )


@pytest.fixture(scope="module")
def feast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeastServer]:
    if not FEAST.exists():
        why = f"Feast is not installed at {FEAST} (make test installs it into .venv-feast)"
        if os.environ.get("MLCHAOS_REQUIRE_FEAST") == "1":
            pytest.fail(f"MLCHAOS_REQUIRE_FEAST=1 but {why}")
        pytest.skip(why)
    python = FEAST.parent / "python"
    repo = tmp_path_factory.mktemp("feast-repo")
    (repo / "data").mkdir()
    (repo / "feature_store.yaml").write_text(
        _settings(repo, f"  type: sqlite\n  path: {repo / 'data' / 'online.db'}\n")
        + "offline_store:\n  type: file\n"
    )
    (repo / "features.py").write_text(REPO_FEATURES)
    seed = repo.parent / "seed.py"  # outside the repo: `feast apply` imports every file in it
    seed.write_text(SEED)
    python_env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run(  # an empty source first: `apply` reads its schema
        [
            str(python),
            "-c",
            "import pandas as pd, datetime as dt, sys; pd.DataFrame({'user_id': [0], "
            "'f1': [0.0], 'f2': [0.0], 'f3': [0], 'event_timestamp': "
            "[dt.datetime.now(dt.timezone.utc)]}).to_parquet(sys.argv[1])",
            str(repo / "data" / "source.parquet"),
        ],
        check=True,
        env=python_env,
    )
    subprocess.run([str(FEAST), "apply"], cwd=repo, check=True, capture_output=True, env=python_env)
    subprocess.run([str(python), str(seed), str(repo)], check=True, env=python_env)
    log = repo.parent / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(FEAST), "serve", "-h", "127.0.0.1", "-p", "0"],
            cwd=repo,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=python_env,
            start_new_session=True,  # gunicorn's workers go with it
        )
    try:
        port = _listening_port(log, server)
        yield FeastServer(port, repo, python)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _listening_port(log: Path, server: subprocess.Popen[bytes], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
        if found and "Application startup complete" in log.read_text():
            return int(found[1])
        if server.poll() is not None:
            raise RuntimeError(f"feast serve exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise TimeoutError(f"feast serve did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def proxy(tmp_path: Path, feast_server: FeastServer) -> Iterator[dict[str, object]]:
    """An mlchaos proxy in front of Feast, each row of a lookup in the arm its user hashes to."""
    token = tmp_path / "proxy.token"
    config = tmp_path / "proxy.json"
    config.write_text(
        json.dumps(
            {
                "name": "store",
                "listen": "127.0.0.1:0",
                "upstream": f"127.0.0.1:{feast_server.port}",
                "arms": {
                    "experiment": "50%",
                    "control": "50%",
                    "salt": SALT,
                    "key": {"json_field": "entities.user_id[*]"},
                },
                "control": {"listen": "127.0.0.1:0", "token_file": str(token)},
            }
        )
    )
    proc = subprocess.Popen(
        [*MLCHAOS, "proxy", "serve", "--config", str(config), "--announce"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = json.loads(first_line(proc))
        yield {
            "port": ready["port"],
            "control": ready["control"],
            "token": token.read_text().strip(),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def _lookup(feast: FeastServer, port: int, tmp_path: Path) -> list[dict[str, list[object]]]:
    """The real Feast SDK's remote online store, asking the proxy for every user at once."""
    client = tmp_path / "client"
    client.mkdir(exist_ok=True)
    remote = f"  type: remote\n  path: http://127.0.0.1:{port}\n"
    (client / "feature_store.yaml").write_text(
        _settings(feast.repo, remote).replace(str(client), str(feast.repo))
    )
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    done = subprocess.run(
        [str(feast.python), str(script), str(client), json.dumps(USERS)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_a_batched_lookup_is_faulted_per_entity_by_name_under_full_feature_names(
    feast_server: FeastServer, proxy: dict[str, object], tmp_path: Path
) -> None:
    import asyncio

    from mlchaos.proxy import ControlClient
    from mlchaos.spec import FeastMissingFault

    rule = FeastMissingFault.model_validate(
        {"type": "feast_missing", "target": "store", "features": ["f1"]}
    ).rule()

    async def inject() -> str:
        async with ControlClient(str(proxy["control"]), str(proxy["token"])) as c:
            return await c.add_fault(rule, fault_id="missing-f1")

    asyncio.run(inject())
    full, short = _lookup(feast_server, int(str(proxy["port"])), tmp_path)
    arms = {u: arm_for_key(str(u), 0.5, 0.5, SALT) for u in USERS}
    assert Arm.EXPERIMENT in arms.values() and Arm.CONTROL in arms.values()
    for answer, f1, f2 in ((full, "user_stats__f1", "user_stats__f2"), (short, "f1", "f2")):
        assert answer["user_id"] == list(USERS), "the join key column is never touched"
        assert answer[f2] == [u + 0.5 for u in USERS], "f2 is not faulted"
        expected = [None if arms[u] is Arm.EXPERIMENT else u / 10 for u in USERS]
        assert answer[f1] == expected, "only the experiment arm's users lose f1"

    async def hits() -> dict[str, int]:
        async with ControlClient(str(proxy["control"]), str(proxy["token"])) as c:
            return (await c.list_faults())[0].hits

    assert asyncio.run(hits())["experiment"] == 2  # the two batched lookups
