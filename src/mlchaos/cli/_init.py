"""``mlchaos init``: a starter experiment for one's own model, written from what the model
server says about itself and one real request.

It reads the model's OIP v2 metadata (input names, datatypes, shapes; KServe v1 models have
none, and then the row goes as a list), builds the request shape that fits the dataset, sends
the dataset's first row through the real traffic code (the run's own preflight), and writes a
commented file: a proxy in front of the model, replay traffic, an abort fault on the
experiment arm, availability and accuracy checks, and the sample-size plan. The file is
validated before it is reported written.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlchaos.errors import EXIT_OK, ConfigError, PreflightError

__all__ = ["InitOptions", "init_experiment"]

_LABEL_GUESSES = ("label", "target", "y", "class", "outcome")
_INT_TYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
_FLOAT_TYPES = ("FP16", "FP32", "FP64")


@dataclass(frozen=True, slots=True)
class InitOptions:
    """What ``mlchaos init`` was asked for."""

    model_url: str
    model: str
    dataset: Path
    out: Path
    protocol: str = "v2"
    label: str | None = None
    key: str | None = None
    rate: float = 50.0
    duration: float = 30.0
    proxy_port: int | None = None
    force: bool = False
    wait: float = 0.0
    """seconds to wait for the model to be ready"""


async def init_experiment(options: InitOptions) -> int:
    """Write the starter experiment; ConfigError or PreflightError say what stopped it."""
    from mlchaos.traffic import load_dataset  # noqa: PLC0415

    if options.out.exists() and not options.force:
        raise ConfigError(f"{options.out} exists; choose another --out or pass --force")
    url = options.model_url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None or parts.port is None:
        raise ConfigError(f"--model-url: expected http://host:port, got {options.model_url!r}")
    dataset = load_dataset(options.dataset)
    label = _label(options.label, dataset.columns)
    if options.key is not None and options.key not in dataset.columns:
        raise ConfigError(f"--key: {dataset.path} has no column {options.key!r}")
    features = [c for c in dataset.columns if c not in (label, options.key)]
    await _wait_ready(_ready_url(url, options), options.wait)
    if options.protocol == "v1":
        request: dict[str, Any] = {"protocol": "v1", "model": options.model}
        metadata_note = "KServe v1 has no metadata: each instance is the row's columns, in order"
    else:
        metadata = await _metadata(url, options.model)
        request, metadata_note = _v2_request(options.model, metadata, features, dataset.numeric)
    traffic: dict[str, Any] = {
        "target": url,
        "dataset": str(options.dataset.resolve()),  # made relative to the file when written
        "rate": f"{options.rate:g}/s",
        "duration": f"{options.duration:g}s",
        "timeout": "2s",
        "request": request,
    }
    if label is not None:
        traffic["label"] = label
    if options.key is not None:
        traffic["key"] = options.key
    traffic["extract"], found = await _extract(traffic)
    port = options.proxy_port or _free_port(parts.hostname)
    text = _render(options, url, f"{parts.hostname}:{parts.port}", port, traffic, metadata_note)
    text += found
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(text)
    plan_lines = _validate(options.out)
    options.out.write_text(text + plan_lines)
    print(f"wrote {options.out}: {metadata_note}")
    print(plan_lines.rstrip())
    print(f"next: mlchaos validate {options.out} && mlchaos run {options.out}")
    return EXIT_OK


def _label(given: str | None, columns: list[str]) -> str | None:
    if given is not None:
        if given not in columns:
            raise ConfigError(
                f"--label: the dataset has no column {given!r} ({', '.join(columns)})"
            )
        return given
    return next((c for c in columns if c.lower() in _LABEL_GUESSES), None)


def _ready_url(url: str, options: InitOptions) -> str:
    """Where the server says whether the model is ready (v1: the model's own endpoint)."""
    if options.protocol == "v1":
        return f"{url}/v1/models/{options.model}"
    return f"{url}/v2/models/{options.model}/ready"


async def _wait_ready(url: str, seconds: float) -> None:
    """Until ``url`` answers 200, for at most ``seconds`` (a server still loading its model)."""
    import asyncio  # noqa: PLC0415

    import aiohttp  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
                    why = f"HTTP {response.status}"
                    if response.status == 404:
                        why += " (is --model the model's name on this server?)"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                why = str(exc) or type(exc).__name__
            if loop.time() >= deadline:
                waited = f" after {seconds:g} s" if seconds else " (--wait SECONDS waits for it)"
                raise PreflightError(f"the model is not ready at {url}{waited}: {why}")
            await asyncio.sleep(0.5)


async def _metadata(url: str, model: str) -> dict[str, Any]:
    """``GET /v2/models/{model}``: what the server says the model takes."""
    import aiohttp  # noqa: PLC0415

    where = f"{url}/v2/models/{model}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(where) as response,
        ):
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise PreflightError(f"could not read the model's metadata at {where}: {exc}") from None
    if status != 200:
        text = body.decode("utf-8", "replace")[:300]
        raise PreflightError(
            f"{where} answered HTTP {status} (is the model name right? is it an OIP v2 "
            f"server? for KServe v1 pass --protocol v1): {text}"
        )
    try:
        document = json.loads(body)
    except ValueError:
        raise PreflightError(f"{where} did not answer JSON metadata") from None
    return document if isinstance(document, dict) else {}


def _v2_request(
    model: str, metadata: dict[str, Any], features: list[str], numeric: frozenset[str]
) -> tuple[dict[str, Any], str]:
    """The request shape that fits the metadata's inputs and the dataset's columns."""
    inputs = [i for i in metadata.get("inputs") or () if isinstance(i, dict)]
    request: dict[str, Any] = {"protocol": "v2", "model": model}
    names = [str(i.get("name")) for i in inputs]
    if len(inputs) == 1:
        tensor = inputs[0]
        shape = tensor.get("shape") or []
        width = shape[-1] if len(shape) > 1 and isinstance(shape[-1], int) else None
        columns = [c for c in features if c in numeric]
        if width not in (None, -1, len(columns)):
            raise PreflightError(
                f"the model's input {names[0]} takes {width} values per row, but the dataset "
                f"has {len(columns)} numeric feature columns ({', '.join(columns)}): give a "
                "dataset whose columns are the model's features (plus the label)"
            )
        request |= {"input_name": names[0], "datatype": _datatype(tensor.get("datatype"))}
        if columns != features:
            request["inputs"] = columns
        return request, f"one input tensor {names[0]} of {len(columns)} columns (from metadata)"
    if inputs and all(n in features for n in names):
        request["inputs"] = [
            {"name": str(i["name"]), "datatype": _datatype(i.get("datatype")), "shape": [1]}
            for i in inputs
        ]
        return request, f"{len(inputs)} named inputs, one column each (from metadata)"
    if inputs:
        raise PreflightError(
            f"the model takes inputs {', '.join(names)}, which are not the dataset's columns "
            f"({', '.join(features)}): name the columns after the inputs, or write "
            "traffic.request.inputs by hand"
        )
    columns = [c for c in features if c in numeric]
    request |= {"datatype": "FP64"}
    if columns != features:
        request["inputs"] = columns
    return request, (
        f"the metadata lists no inputs: the row's {len(columns)} numeric columns go as one FP64 "
        "tensor input-0"
    )


def _datatype(value: Any) -> str:
    text = str(value or "FP64").upper()
    if text in _FLOAT_TYPES:
        return "FP64" if text == "FP64" else "FP32"
    if text in _INT_TYPES:
        return "INT64" if text in ("INT64", "UINT64", "UINT32") else "INT32"
    return text if text in ("BOOL", "BYTES") else "FP64"


async def _extract(traffic: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Send the first row the way the run will, and fit the extraction to the answer."""
    from mlchaos.spec import TrafficConfig  # noqa: PLC0415
    from mlchaos.traffic import first_request  # noqa: PLC0415

    extract: dict[str, Any] = {}
    if traffic["request"]["protocol"] == "v1":
        extract["model"] = None  # v1 answers carry no model name
    for _ in range(3):  # each pass fixes what the answer showed
        config = TrafficConfig.model_validate(traffic | {"extract": extract})
        try:
            found = await first_request(config)
        except PreflightError as exc:
            message = str(exc)
            if message.startswith("traffic.extract.model:") and "model" not in extract:
                extract["model"] = None
            elif message.startswith("traffic.extract.index:") and "index" not in extract:
                extract["index"] = 1
            else:
                raise
            continue
        return extract, f"# the test request: {found}\n"
    raise PreflightError("could not read the test request's answer")  # pragma: no cover


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


def _validate(path: Path) -> str:
    """Load the written file as ``mlchaos validate`` would; the plan as comment lines."""
    from mlchaos.analysis import plan  # noqa: PLC0415
    from mlchaos.spec import load_experiment  # noqa: PLC0415

    exp = load_experiment(path)
    lines = [f"#   {'warning: ' if p.short else ''}{p.describe()}" for p in plan(exp)]
    return (
        "# sample size: the fewest requests with which each check can hold\n"
        + "\n".join(lines)
        + "\n"
    )


def _render(
    options: InitOptions,
    url: str,
    upstream: str,
    port: int,
    traffic: dict[str, Any],
    metadata_note: str,
) -> str:
    host = urlsplit(url).hostname
    proxy_url = f"http://{host}:{port}"
    ready = _ready_url(url, options)
    dataset = Path(traffic["dataset"])
    with contextlib.suppress(ValueError):  # on another drive it stays absolute
        dataset = Path(os.path.relpath(dataset, options.out.resolve().parent))
    traffic = traffic | {"target": proxy_url, "dataset": str(dataset)}
    threshold = (
        "analysis:\n  threshold: 0.5  # the prediction is a probability: class 1 from 0.5 on\n"
        if "index" in traffic["extract"]
        else ""
    )
    accuracy = (
        """  # Answers the experiment arm still gets are as accurate as control's.
  - name: experiment accuracy within 5 points of control
    metric: accuracy
    relative_to: control
    min: -5%
"""
        if "label" in traffic
        else "  # (no label column: add one, or traffic.labels, for accuracy checks)\n"
    )
    j = json.dumps
    return f"""# Written by `mlchaos init` for model {options.model} at {url}.
# Request shape: {metadata_note}.
# Run it: mlchaos run {options.out.name}   (exit 0: every check held)
title: {j(f"{options.model}: aborted calls stay in the experiment arm")}
description: >
  The proxy in front of {options.model} aborts 20% of the experiment arm's requests with HTTP
  503. Hypothesis: the control arm is untouched, the experiment arm's error rate rises by no more
  than the abort share allows, and the answers it does get are as accurate as control's.
targets:
  - name: model
    url: {j(url)}
    health: {j(urlsplit(ready).path)}
proxies:
  # Requests go to the proxy, which forwards them to the model and injects the faults.
  - name: model-proxy
    serve:
      protocol: http
      listen: {j(f"{host}:{port}")}
      upstream: {j(upstream)}
traffic:
  # Open-loop replay of the dataset; each request is put in an arm (x-mlchaos-arm header).
  target: {j(traffic["target"])}
  dataset: {j(traffic["dataset"])}
  rate: {j(traffic["rate"])}
  duration: {j(traffic["duration"])}
  timeout: {j(traffic["timeout"])}  # the longest a request may take
  request: {j(traffic["request"])}
{_optional(traffic, "label", "  # the true label of each row, for accuracy")}\
{_optional(traffic, "key", "  # rows with the same key always go to the same arm")}\
  extract: {j(traffic["extract"])}
  arms: {{experiment: 50%, control: 50%}}
steady_state:
  - name: model ready
    url: {j(ready)}
faults:
  - type: abort
    target: model-proxy
    status: 503
    arm: experiment
    probability: 20%
    start: 2s
    duration: {j(f"{max(options.duration - 4, 1):g}s")}
hypothesis:
  - name: control arm untouched
    metric: error_rate
    arm: control
    max: 2%
  - name: experiment error increase bounded
    metric: error_rate
    relative_to: control
    max: 35%
{accuracy}\
guardrails:
  # Stop at once (and roll back) if the experiment arm is hurt far more than planned.
  - name: most experiment calls fail
    metric: error_rate
    max: 80%
    min_samples: 50
recovery:
  deadline: 10s
{threshold}"""


def _optional(traffic: dict[str, Any], key: str, comment: str) -> str:
    if key not in traffic:
        return ""
    return f"{comment}\n  {key}: {json.dumps(traffic[key])}\n"
