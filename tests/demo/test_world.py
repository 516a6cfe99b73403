"""The synthetic world: deterministic from its seed, time-varying labels, and the label service."""

from __future__ import annotations

import sys
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from mlchaos.demo._services import ServiceGroup, ServiceSpec
from mlchaos.demo._world import (
    N_ENTITIES,
    LabelOracle,
    LabelRequest,
    World,
    make_dataset,
    row_noise,
    write_dataset,
)
from tests.conftest import ROOT

T0 = 1_764_355_200.0


def demo_spec(name: str, *args: str) -> ServiceSpec:
    argv = [sys.executable, "-m", "mlchaos.demo", *args, "--port", "0"]
    return ServiceSpec(name, argv, ready_timeout=20.0)


def test_the_same_seed_gives_the_same_world_and_another_seed_another() -> None:
    a, b, c = World.from_seed(7), World.from_seed(7), World.from_seed(8)
    assert np.array_equal(a.period, b.period) and np.array_equal(a.phase, b.phase)
    assert not np.array_equal(a.phase, c.phase)
    assert a.period.shape == (N_ENTITIES, 3)
    assert a.period.min() >= 40 and a.period.max() <= 90


def test_entity_state_drifts_with_time_so_stale_state_differs() -> None:
    world = World.from_seed(7)
    entities = np.arange(N_ENTITIES, dtype=np.int64)
    now = world.state(entities, T0)
    assert np.array_equal(now, world.state(entities, T0))
    small = np.abs(world.state(entities, T0 + 1.0) - now).mean()
    large = np.abs(world.state(entities, T0 + 10.0) - now).mean()
    assert 0 < small < large


def test_the_dataset_is_deterministic_with_exactly_the_request_columns(tmp_path: Path) -> None:
    a, b = make_dataset(7), make_dataset(7)
    assert a.rows == 4000
    assert np.array_equal(a.entity_id, b.entity_id) and np.array_equal(a.x1, b.x1)
    assert set(a.entity_id.tolist()) <= set(range(N_ENTITIES))
    path = write_dataset(make_dataset(7, rows=3), tmp_path / "d.csv")
    assert path.read_text().splitlines()[0] == "entity_id,x1,x2"
    assert len(path.read_text().splitlines()) == 4


def test_the_committed_demo_csv_is_what_the_generator_writes(tmp_path: Path) -> None:
    written = write_dataset(make_dataset(7), tmp_path / "demo.csv")
    assert (ROOT / "examples" / "data" / "demo.csv").read_bytes() == written.read_bytes()


def test_labels_are_deterministic_and_change_with_the_send_time() -> None:
    oracle = LabelOracle(7)
    rows = range(400)
    at = [LabelRequest(row, None, T0) for row in rows]
    later = [LabelRequest(row, None, T0 + 20.0) for row in rows]
    first = oracle.labels(at)
    assert first == LabelOracle(7).labels(at)
    assert set(first) == {0, 1}
    changed = sum(x != y for x, y in zip(first, oracle.labels(later), strict=True))
    assert changed > 40  # the entity state moved: many labels flipped


def test_label_noise_is_fixed_per_row() -> None:
    assert np.array_equal(row_noise(7, 10), row_noise(7, 20)[:10])


def test_unknown_rows_wrong_keys_and_missing_times_have_no_label() -> None:
    oracle = LabelOracle(7)
    entity = str(int(oracle.dataset.entity_id[5]))
    labels = oracle.labels(
        [
            LabelRequest(5, entity, T0),
            LabelRequest(5, f"{entity}.0", T0),
            LabelRequest(5, str((int(entity) + 1) % N_ENTITIES), T0),
            LabelRequest(5, "not a number", T0),
            LabelRequest(4000, None, T0),
            LabelRequest(-1, None, T0),
            LabelRequest(None, None, T0),
            LabelRequest(5, entity, None),
            LabelRequest(5, entity, float("nan")),
        ]
    )
    assert labels[0] in (0, 1)
    assert labels[1] == labels[0]
    assert labels[2:] == [None] * 7


@pytest.mark.asyncio
async def test_the_label_service_answers_in_order_and_refuses_malformed_bodies() -> None:
    oracle = LabelOracle(7)
    entity = str(int(oracle.dataset.entity_id[3]))
    asked = [
        {"id": "1", "row": 3, "key": entity, "time": T0 + 0.25},
        {"id": "2", "row": 3, "key": "nope", "time": T0},
        {"id": "3", "row": 99999, "key": None, "time": T0},
        {"id": "4", "row": 7, "key": None, "time": T0 + 3.5},
        {"id": "5", "row": "7", "key": None, "time": T0},
    ]
    expected = oracle.labels([LabelRequest(3, entity, T0 + 0.25), LabelRequest(7, None, T0 + 3.5)])
    async with ServiceGroup() as group, aiohttp.ClientSession() as http:
        world = await group.start(demo_spec("world", "world", "--seed", "7"))
        url = f"http://127.0.0.1:{world.port}"
        async with http.post(f"{url}/labels", json={"requests": asked}) as r:
            assert r.status == 200
            assert await r.json() == {"labels": [expected[0], None, None, expected[1], None]}
        async with http.get(f"{url}/health") as r:
            assert await r.json() == {"ok": True}
        for bad in (b"not json", b"[]", b'{"requests": 3}', b'{"requests": [1]}'):
            async with http.post(f"{url}/labels", data=bad) as r:
                assert r.status == 400
                assert "error" in await r.json()
        assert await group.stop("world") == 0
        assert not any("Traceback" in line for line in world.log_tail())
