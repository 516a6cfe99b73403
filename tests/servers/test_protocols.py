"""Replay traffic in every protocol the real servers speak, and compare each answer with
scikit-learn's own prediction for the same row.

Each replay sends every row of ``rows.csv`` exactly once (240 rows: 60 requests of 4 rows), so
the (label, prediction) pairs the traffic recorded must be exactly scikit-learn's.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from mlchaos.observations import ObservationStore
from mlchaos.spec import TrafficConfig
from mlchaos.traffic import run_traffic
from tests.servers.conftest import MODEL, ModelServer

ROWS = 240


def replay(
    server: ModelServer, target: str, request: dict[str, Any], **extra: Any
) -> ObservationStore:
    config = TrafficConfig.model_validate(
        {
            "target": target,
            "dataset": str(server.rows),
            "rate": "40/s",
            "duration": "1.5s",
            "label": "target",
            "request": {"model": MODEL, "batch": 4, "inputs": _features(server)} | request,
        }
        | extra
    )
    store = ObservationStore()
    result = asyncio.run(run_traffic(config, store))
    assert result.sent == 60 and result.failed == 0, result
    return store


def _features(server: ModelServer) -> list[str]:
    header = server.rows.read_text().splitlines()[0].split(",")
    return [c for c in header if c not in ("row_id", "target")]


def pairs(store: ObservationStore) -> list[tuple[float, float]]:
    labels, predictions = store.column("label"), store.column("prediction")
    assert len(labels) == ROWS
    return sorted(zip(labels.tolist(), predictions.tolist(), strict=True))


def expected(server: ModelServer, what: str = "predict") -> list[tuple[float, float]]:
    labels, values = server.expected["labels"], server.expected[what]
    return sorted(zip(map(float, labels), map(float, values), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["v2", "v2-grpc"])
def test_mlserver_answers_every_row_as_sklearn_does_over_http_and_grpc(
    mlserver: ModelServer, protocol: str
) -> None:
    target = mlserver.grpc if protocol == "v2-grpc" else mlserver.http
    request = {"protocol": protocol, "input_name": "features", "datatype": "FP64"}
    store = replay(mlserver, target, request)
    assert pairs(store) == expected(mlserver)
    assert set(store.models) == {"cancer"}
    # predict_proba asked for by name: each row's class-1 probability, bit for bit.
    proba = replay(
        mlserver,
        target,
        request | {"outputs": ["predict_proba"]},
        extract={"output": "predict_proba", "index": 1, "model_version": "model_version"},
    )
    assert pairs(proba) == expected(mlserver, "proba")
    assert set(proba.models) == {"cancer:v1"}


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["v1", "v2", "v2-grpc"])
def test_kserve_answers_every_row_as_sklearn_does_in_each_protocol(
    kserve: ModelServer, protocol: str
) -> None:
    target = kserve.grpc if protocol == "v2-grpc" else kserve.http
    request: dict[str, Any] = {"protocol": protocol}
    if protocol != "v1":
        request |= {"datatype": "FP64"}
    extract = {"model": None} if protocol == "v1" else {}
    store = replay(kserve, target, request, extract=extract)
    assert pairs(store) == expected(kserve)
    assert not math.isnan(float(np.mean(store.column("latency"))))
