"""Open-loop replay against real servers on loopback ports.

Scheduling, arms, label join and error kinds are checked end to end: every test sends real
HTTP requests and reads what the server saw and what the observation store recorded.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mlchaos.arms import ARM_HEADER, ArmCode, arm_for_key
from mlchaos.errors import ConfigError
from mlchaos.observations import ErrorKind, ObservationStore
from mlchaos.spec import TrafficConfig
from mlchaos.testing import Upstream, make_dataset
from mlchaos.traffic import run_traffic

HttpServe = Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[str]]

V2_OK = {"model_name": "m", "outputs": [{"name": "label", "data": [1]}]}


def config(target: str, dataset: Path, **overrides: Any) -> TrafficConfig:
    fields: dict[str, Any] = {
        "target": target,
        "dataset": str(dataset),
        "rate": "40/s",
        "duration": "1s",
        "request": {"protocol": "v2", "model": "m"},
        "label": "label",
        "key": None,
        "timeout": "5s",
    }
    return TrafficConfig.model_validate(fields | overrides)


def observations(store: ObservationStore) -> list[dict[str, Any]]:
    """The store's records as dicts, sorted by scheduled start."""
    cols = store.columns()
    rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
    return sorted(rows, key=lambda r: r["start"])


@pytest.fixture
def toy_csv(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "toy.csv", rows=200, seed=3)


def small_csv(tmp_path: Path, rows: int = 10) -> Path:
    path = tmp_path / "small.csv"
    lines = ["x,label", *(f"{i},{i * 10 + 1}" for i in range(rows))]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- open loop --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_requests_start_on_schedule_while_the_server_is_slow(
    http_server: HttpServe, toy_csv: Path
) -> None:
    """A server taking 300 ms per request does not slow the sending: open loop, 40/s."""
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []

    async def slow(request: web.Request) -> web.Response:
        arrivals.append(loop.time())
        await asyncio.sleep(0.3)
        return web.json_response(V2_OK)

    url = await http_server(slow)
    store = ObservationStore()
    result = await run_traffic(config(url, toy_csv, key="entity_id"), store)

    assert (result.sent, result.completed, result.dropped) == (40, 40, 0)
    arrivals.sort()
    first = arrivals[0]
    for k, t in enumerate(arrivals):
        assert abs((t - first) - k / 40) < 0.15, f"request {k} arrived off schedule"
    before_first_answer = sum(t < first + 0.3 for t in arrivals)
    assert before_first_answer >= 10  # a closed loop would have sent 1
    assert all(r["latency"] >= 0.3 for r in observations(store))


@pytest.mark.asyncio
async def test_latency_runs_from_the_scheduled_start_and_includes_a_server_stall(
    http_server: HttpServe, toy_csv: Path
) -> None:
    """The server stalls for its first 0.5 s; a request due at s waits about 0.5 - s."""
    loop = asyncio.get_running_loop()
    stall_end: list[float] = []

    async def stalls(request: web.Request) -> web.Response:
        now = loop.time()
        if not stall_end:
            stall_end.append(now + 0.5)
        if now < stall_end[0]:
            await asyncio.sleep(stall_end[0] - now)
        return web.json_response(V2_OK)

    url = await http_server(stalls)
    store = ObservationStore()
    await run_traffic(config(url, toy_csv, key="entity_id"), store, clock=lambda: 1000.0)

    records = observations(store)
    assert [r["start"] for r in records] == [1000.0 + i / 40 for i in range(40)]
    for r in records:
        due = r["start"] - 1000.0
        waited = max(0.0, 0.5 - due)
        assert r["latency"] >= waited - 0.005, f"due {due:.3f}s: latency too short"
        assert r["latency"] < waited + 0.25, f"due {due:.3f}s: latency too long"


@pytest.mark.asyncio
async def test_replaying_the_toy_model_reaches_the_rate_and_reads_model_and_prediction(
    toy_upstream: Upstream, toy_csv: Path
) -> None:
    store = ObservationStore()
    cfg = config(
        toy_upstream.url,
        toy_csv,
        rate="100/s",
        key="entity_id",
        request={"protocol": "v2", "model": "toy"},
    )
    result = await run_traffic(cfg, store)

    assert (result.sent, result.completed, result.failed, result.dropped) == (100, 100, 0, 0)
    assert result.target_rate == 100.0
    assert 85.0 <= result.achieved_rate <= 100.0 + 1e-9
    records = observations(store)
    assert {r["status"] for r in records} == {200}
    assert {store.models[r["model"]] for r in records} == {"toy"}
    assert {r["prediction"] for r in records} <= {0.0, 1.0}
    accuracy = sum(r["prediction"] == r["label"] for r in records) / len(records)
    assert 0.75 <= accuracy <= 1.0  # labels agree with the toy model on ~90% of rows
    assert json.loads(json.dumps(result.to_dict()))["sent"] == 100


@pytest.mark.asyncio
async def test_a_blocked_client_catches_up_on_the_schedule_and_reports_its_lateness(
    http_server: HttpServe, toy_csv: Path
) -> None:
    """The event loop is blocked for 200 ms; every due request is still sent, late."""
    blocked: list[bool] = []

    async def blocks_the_loop_once(request: web.Request) -> web.Response:
        if not blocked:
            blocked.append(True)
            time.sleep(0.2)  # noqa: ASYNC251 - deliberately stall the shared event loop
        return web.json_response(V2_OK)

    url = await http_server(blocks_the_loop_once)
    result = await run_traffic(
        config(url, toy_csv, rate="50/s", duration="500ms"), ObservationStore()
    )
    assert result.sent == 25
    assert result.max_lateness >= 0.15
    assert any("could not keep up" in note for note in result.notes)


# --- arms and rows ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_arm_headers_follow_the_configured_shares_and_match_the_store(
    http_server: HttpServe, toy_csv: Path
) -> None:
    seen: list[tuple[str | None, str | None]] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append((request.headers.get(ARM_HEADER), request.headers.get("x-team")))
        return web.json_response(V2_OK)

    url = await http_server(capture)
    store = ObservationStore()
    cfg = config(
        url,
        toy_csv,
        rate="300/s",
        arms={"experiment": "30%", "control": "20%"},
        headers={"x-team": "ml", ARM_HEADER: "ignored"},
        seed=7,
    )
    await run_traffic(cfg, store)

    assert len(seen) == 300
    assert {team for _, team in seen} == {"ml"}
    arms = Counter(arm for arm, _ in seen)
    assert set(arms) <= {"experiment", "control", None}
    assert abs(arms["experiment"] / 300 - 0.30) < 0.07
    assert abs(arms["control"] / 300 - 0.20) < 0.07
    stored = Counter(r["arm"] for r in observations(store))
    assert stored[ArmCode.EXPERIMENT] == arms["experiment"]
    assert stored[ArmCode.CONTROL] == arms["control"]
    assert stored[ArmCode.NONE] == arms[None]  # requests in no arm carry no arm header


@pytest.mark.asyncio
async def test_arms_hashed_from_the_key_are_the_same_for_an_entity_in_every_run(
    http_server: HttpServe, tmp_path: Path
) -> None:
    dataset = make_dataset(tmp_path / "ents.csv", rows=50, seed=1)
    seen: list[tuple[int, str | None]] = []

    async def capture(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((body["entity"], request.headers.get(ARM_HEADER)))
        return web.json_response({"prediction": 1})

    url = await http_server(capture)
    template = {"entity": "{{entity_id}}", "features": ["{{x0}}", "{{x1}}"]}
    by_run = []
    for seed in (1, 2):
        cfg = config(
            url,
            dataset,
            rate="200/s",
            duration="500ms",
            key="entity_id",
            arms={"experiment": "50%", "control": "30%"},
            request={"protocol": "json", "template": template},
            seed=seed,
        )
        seen.clear()
        await run_traffic(cfg, ObservationStore())
        assert len(seen) == 100
        mapping = dict(seen)
        assert len(mapping) == 50  # every entity sent, and always with the same arm:
        assert set(seen) == set(mapping.items())
        for entity, header in mapping.items():
            expected = arm_for_key(str(entity), 0.5, 0.3)
            assert header == (expected.value if expected else None)
        by_run.append(mapping)
    assert by_run[0] == by_run[1]


@pytest.mark.asyncio
async def test_rows_cycle_in_an_order_fixed_by_the_seed(
    http_server: HttpServe, tmp_path: Path
) -> None:
    dataset = small_csv(tmp_path, rows=10)
    seen: dict[int, float] = {}

    async def capture(request: web.Request) -> web.Response:
        body = await request.json()
        seen[int(body["id"])] = body["inputs"][0]["data"][0]
        return web.json_response(V2_OK)

    url = await http_server(capture)
    orders = []
    for seed in (5, 5, 6):
        seen.clear()
        cfg = config(url, dataset, rate="100/s", duration="200ms", seed=seed)
        await run_traffic(cfg, ObservationStore())
        order = [seen[i] for i in range(20)]
        assert sorted(order[:10]) == [float(i) for i in range(10)]  # each row once per cycle
        assert order[10:] == order[:10]
        orders.append(order)
    assert orders[0] == orders[1]
    assert orders[0] != orders[2]


@pytest.mark.asyncio
async def test_each_observation_carries_the_label_of_the_row_it_sent(
    http_server: HttpServe, tmp_path: Path
) -> None:
    """The server echoes the row's x; the dataset's label is 10 x + 1 on every row."""

    async def echo(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"result": {"value": [body["x"]]}})

    url = await http_server(echo)
    store = ObservationStore()
    cfg = config(
        url,
        small_csv(tmp_path, rows=30),
        rate="100/s",
        duration="300ms",
        request={"protocol": "json", "template": {"x": "{{x}}"}},
        extract={"prediction": "result.value[0]", "model": None},
    )
    await run_traffic(cfg, store)

    records = observations(store)
    assert len(records) == 30
    for r in records:
        assert r["label"] == r["prediction"] * 10 + 1
        assert r["model"] == -1


# --- errors -----------------------------------------------------------------------------------


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read and never answer; return when the client closes the connection."""
    while await reader.read(65536):
        pass


async def reset_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # RST, not FIN


async def answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()


def errors(store: ObservationStore) -> Counter[ErrorKind]:
    return Counter(ErrorKind(r["error"]) for r in observations(store))


@pytest.mark.asyncio
async def test_a_port_nobody_listens_on_gives_connect_errors(
    closed_port: int, toy_csv: Path
) -> None:
    store = ObservationStore()
    cfg = config(f"http://127.0.0.1:{closed_port}", toy_csv, rate="20/s", duration="150ms")
    result = await run_traffic(cfg, store)
    assert errors(store) == {ErrorKind.CONNECT: 3}
    assert (result.sent, result.completed, result.failed) == (3, 0, 3)
    assert {r["status"] for r in observations(store)} == {0}


@pytest.mark.asyncio
async def test_a_server_that_never_answers_gives_timeouts_after_the_timeout(
    tcp_server: Any, toy_csv: Path
) -> None:
    server = await tcp_server(never_answer)
    store = ObservationStore()
    cfg = config(server.url, toy_csv, rate="20/s", duration="150ms", timeout="200ms")
    await run_traffic(cfg, store)
    assert errors(store) == {ErrorKind.TIMEOUT: 3}
    assert all(0.2 <= r["latency"] < 1.0 for r in observations(store))


@pytest.mark.asyncio
async def test_a_server_that_resets_the_connection_gives_reset_errors(
    tcp_server: Any, toy_csv: Path
) -> None:
    server = await tcp_server(reset_after_request)
    store = ObservationStore()
    await run_traffic(config(server.url, toy_csv, rate="20/s", duration="150ms"), store)
    assert errors(store) == {ErrorKind.RESET: 3}


@pytest.mark.asyncio
async def test_a_server_that_does_not_speak_http_gives_protocol_errors(
    tcp_server: Any, toy_csv: Path
) -> None:
    server = await tcp_server(answer_garbage)
    store = ObservationStore()
    await run_traffic(config(server.url, toy_csv, rate="20/s", duration="150ms"), store)
    assert errors(store) == {ErrorKind.PROTOCOL: 3}


@pytest.mark.asyncio
async def test_an_http_error_status_is_a_response_with_no_prediction(
    http_server: HttpServe, toy_csv: Path
) -> None:
    async def unavailable(request: web.Request) -> web.Response:
        return web.json_response({"error": "overloaded"}, status=503)

    url = await http_server(unavailable)
    store = ObservationStore()
    result = await run_traffic(config(url, toy_csv, rate="20/s", duration="150ms"), store)
    assert result.completed == 3
    records = observations(store)
    assert errors(store) == {ErrorKind.OK: 3}
    assert {r["status"] for r in records} == {503}
    assert all(math.isnan(r["prediction"]) for r in records)


@pytest.mark.asyncio
async def test_requests_due_while_max_in_flight_are_open_are_dropped_and_reported(
    tcp_server: Any, toy_csv: Path
) -> None:
    server = await tcp_server(never_answer)
    store = ObservationStore()
    cfg = config(
        server.url, toy_csv, rate="20/s", duration="500ms", timeout="800ms", max_in_flight=2
    )
    result = await run_traffic(cfg, store)
    assert (result.sent, result.dropped, result.failed) == (2, 8, 2)
    assert server.accepted == 2
    assert errors(store) == {ErrorKind.TIMEOUT: 2, ErrorKind.OTHER: 8}
    assert any("max_in_flight" in note for note in result.notes)


# --- lifecycle --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cancelling_stops_sending_and_leaves_no_tasks_or_open_connections(
    tcp_server: Any, toy_csv: Path
) -> None:
    server = await tcp_server(never_answer)
    cfg = config(server.url, toy_csv, rate="50/s", duration="30s", timeout="30s")
    task = asyncio.create_task(run_traffic(cfg, ObservationStore()))
    assert await server.wait_until(lambda: server.accepted >= 5)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    ours = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} - server.tasks
    assert ours == set(), "run_traffic left tasks behind"
    closed = await server.wait_until(lambda: server.done == server.accepted)
    assert closed, "a client connection was left open"
    accepted = server.accepted
    await asyncio.sleep(0.1)
    assert server.accepted == accepted, "requests were sent after cancellation"


@pytest.mark.asyncio
async def test_a_broken_dataset_is_a_config_error_before_anything_is_sent(
    closed_port: int, tmp_path: Path
) -> None:
    cfg = config(f"http://127.0.0.1:{closed_port}", Path("missing.csv"))
    store = ObservationStore()
    with pytest.raises(ConfigError, match=r"missing\.csv: file not found"):
        await run_traffic(cfg, store, base_dir=tmp_path)
    assert len(store) == 0


@pytest.mark.asyncio
async def test_a_bug_building_a_request_is_a_crash_not_error_observations(
    toy_upstream: Upstream, toy_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from mlchaos.traffic import RequestBuilder

    def broken(row: int, request_id: str) -> Any:
        raise KeyError("a bug in request building")

    real = RequestBuilder.for_config

    def with_a_bug(config: Any, dataset: Any) -> RequestBuilder:
        return dataclasses.replace(real(config, dataset), body=broken)

    monkeypatch.setattr(RequestBuilder, "for_config", with_a_bug)
    store = ObservationStore()
    cfg = config(
        toy_upstream.url, toy_csv, rate="100/s", request={"protocol": "v2", "model": "toy"}
    )
    with pytest.raises(ExceptionGroup) as caught:
        await run_traffic(cfg, store)
    assert caught.group_contains(KeyError, match="a bug in request building")
    assert len(store) == 0  # nothing recorded as if the service had failed
