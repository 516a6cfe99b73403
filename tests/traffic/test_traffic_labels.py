"""Delayed labels: each answered request's label joined from a label service while traffic runs."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from mlchaos.observations import ObservationStore
from mlchaos.spec import TrafficConfig
from mlchaos.traffic import run_traffic

HttpServe = Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[str]]


def dataset(tmp_path: Path, rows: int = 20) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(["entity,x", *(f"{i % 4},{i}" for i in range(rows))]) + "\n")
    return path


async def echo_x(request: web.Request) -> web.Response:
    body = await request.json()
    if body["x"] == 13:
        return web.json_response({"error": "no"}, status=500)
    return web.json_response({"value": body["x"]})


def config(target: str, rows: Path, labels: dict[str, Any]) -> TrafficConfig:
    return TrafficConfig.model_validate(
        {
            "target": target,
            "dataset": str(rows),
            "rate": "100/s",
            "duration": "200ms",
            "request": {"protocol": "json", "template": {"x": "{{x}}"}},
            "key": "entity",
            "extract": {"prediction": "value", "model": None},
            "labels": labels,
        }
    )


@pytest.mark.asyncio
async def test_each_answered_request_gets_the_label_the_service_gives_for_its_row(
    http_server: HttpServe, tmp_path: Path
) -> None:
    """The label service answers 2·row for every request; batches hold at most `batch`."""
    seen: list[list[dict[str, Any]]] = []

    async def labels(request: web.Request) -> web.Response:
        requests = (await request.json())["requests"]
        seen.append(requests)
        return web.json_response({"labels": [2 * r["row"] for r in requests]})

    service, label_url = await http_server(echo_x), await http_server(labels)
    store = ObservationStore()
    result = await run_traffic(
        config(service, dataset(tmp_path), {"url": label_url, "batch": 3}), store
    )

    cols = store.columns()
    assert len(cols["label"]) == 20
    for x, label, status in zip(cols["prediction"], cols["label"], cols["status"], strict=True):
        if status == 200:
            assert label == 2 * x
        else:
            assert math.isnan(label)
    asked = [r for batch in seen for r in batch]
    assert len(asked) == 19
    assert all(len(batch) <= 3 for batch in seen)
    assert {r["key"] for r in asked} == {"0", "1", "2", "3"}
    assert all(isinstance(r["time"], float) and r["id"].isdigit() for r in asked)
    assert result.notes == ()


@pytest.mark.asyncio
async def test_a_failing_label_service_leaves_labels_missing_and_says_so(
    http_server: HttpServe, tmp_path: Path
) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"labels": "nope"})

    service, label_url = await http_server(echo_x), await http_server(broken)
    store = ObservationStore()
    result = await run_traffic(config(service, dataset(tmp_path), {"url": label_url}), store)

    assert all(math.isnan(v) for v in store.column("label"))
    assert any("label service failed" in note for note in result.notes)


@pytest.mark.asyncio
async def test_a_label_service_that_never_answers_does_not_hold_traffic_beyond_its_timeout(
    http_server: HttpServe, tmp_path: Path
) -> None:
    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    service, label_url = await http_server(echo_x), await http_server(silent)
    store = ObservationStore()
    async with asyncio.timeout(5):
        result = await run_traffic(
            config(service, dataset(tmp_path), {"url": label_url, "timeout": "300ms"}), store
        )
    assert len(store) == 20
    assert any("no answer within 300ms" in note for note in result.notes)


def test_a_label_column_and_a_label_service_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not both"):
        TrafficConfig.model_validate(
            {
                "target": "http://127.0.0.1:1",
                "dataset": "d.csv",
                "rate": "1/s",
                "duration": "1s",
                "request": {"protocol": "v2", "model": "m"},
                "label": "label",
                "labels": {"url": "http://127.0.0.1:2/labels"},
            }
        )


@pytest.mark.asyncio
async def test_class_labels_that_are_text_are_compared_with_text_predictions(
    http_server: HttpServe, tmp_path: Path
) -> None:
    """Labels `malignant`/`benign`; the model answers a class name (as text, or bytes-like in
    a one-element list) that is right for even rows and wrong for odd ones."""
    rows = tmp_path / "cells.csv"
    rows.write_text(
        "x,diagnosis\n" + "".join(f"{i},{'malignant' if i % 3 else 'benign'}\n" for i in range(12))
    )

    async def classify(request: web.Request) -> web.Response:
        x = (await request.json())["x"]
        truth = "malignant" if x % 3 else "benign"
        wrong = "benign" if truth == "malignant" else "malignant"
        return web.json_response({"value": [truth] if x % 2 == 0 else wrong})

    service = await http_server(classify)
    cfg = TrafficConfig.model_validate(
        {
            "target": service,
            "dataset": str(rows),
            "rate": "120/s",
            "duration": "100ms",
            "request": {"protocol": "json", "template": {"x": "{{x}}"}},
            "label": "diagnosis",
            "extract": {"prediction": "value", "model": None},
        }
    )
    store = ObservationStore()
    await run_traffic(cfg, store)
    from mlchaos import stats

    assert len(store) == 12
    right = stats.correct(store.column("prediction"), store.column("label"))
    assert int(right.sum()) == 6  # the even rows
    assert not any(math.isnan(v) for v in store.column("label"))
