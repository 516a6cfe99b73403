"""The fault proxy in front of a real model server: what it costs an experiment's traffic.

Run: ``.venv/bin/python benchmarks/proxy_model_server.py [--duration 10] [--runs 3]``
(``make bench``; needs ``wrk`` and the MLServer environment ``.venv-mlserver``, which ``make
bench`` and ``make test`` make.)

``proxy_overhead.py`` measures the proxy against nginx serving a small file: an upstream that
does almost no work, so the proxy's own cost is as large a share as it can be. This measures
it where experiments put it: in front of Seldon MLServer (its scikit-learn runtime, the
example service's model of ``examples/your-service``, one process). Every request is one V2
inference of one row, posted by ``wrk -t1 -cN --latency`` with a Lua script, directly and
through a tcp-mode and an http-mode proxy (arms 50/50, observations recorded), interleaved,
medians of ``--runs`` after a 1 s warm-up each, at 1 and at 50 connections. It prints each
path's req/s and p50/p99 with their ratios to direct, what the proxy adds to p50 and p99, the
proxy's CPU per request and the model server's.

Before measuring it checks that a prediction read through each proxy equals the one read
directly (every field but MLServer's fresh request id); it exits 1 if one does not, or if wrk
saw an error or a non-2xx answer on any path.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from proxy_overhead import (
    ROOT,
    WRK,
    Load,
    Route,
    bench,
    free_port,
    median,
    start_proxy,
    stop,
)

EXAMPLE = ROOT / "examples" / "your-service"
MODEL = "cancer"
INFER = f"/v2/models/{MODEL}/infer"


def start_mlserver(python: Path, work: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Train the example model and serve it; the server (its own process group) and its port."""
    subprocess.run([str(python), str(EXAMPLE / "train.py"), str(work)], check=True)
    http = free_port()
    settings = json.loads((EXAMPLE / "mlserver" / "settings.json").read_text())
    settings |= {"http_port": http, "grpc_port": free_port(), "metrics_port": free_port()}
    (work / "settings.json").write_text(json.dumps(settings))
    shutil.copy(EXAMPLE / "mlserver" / "model-settings.json", work)
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(python.parent / "mlserver"), "start", str(work)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready", server, log)
    except BaseException:
        stop(server, group=True)
        raise
    return server, http


def wait_ready(
    url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 120.0
) -> None:
    """Until ``url`` answers 200 (the model has loaded); its log if the server exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"MLServer exited with {server.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the model was not ready within {timeout:.0f} s: {url}")


def inference_body(work: Path) -> bytes:
    """A V2 inference request for the first replay row."""
    with (work / "rows.csv").open() as rows:
        row = next(csv.DictReader(rows))
    features = [float(v) for k, v in row.items() if k not in ("row_id", "target")]
    request = {
        "inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 30], "data": features}]
    }
    return json.dumps(request).encode()


def predict(port: int, body: bytes) -> dict[str, object]:
    call = urllib.request.Request(
        f"http://127.0.0.1:{port}{INFER}",
        data=body,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(call, timeout=10) as answer:
        out: dict[str, object] = json.loads(answer.read())
    out.pop("id", None)  # MLServer's id of this request, fresh each time
    return out


def wrk_script(tmp: Path, body: bytes) -> Path:
    script = tmp / "infer.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def report(paths: list[Route], connections: int, duration: int) -> bool:
    """Print one connection count's table; False if wrk reported an error on any path."""
    print(f"\n{connections} connection(s) (median of {len(paths[0].runs[connections])} runs):")
    print(
        f"  {'path':<7}{'req/s':>9}{'vs direct':>11}{'p50 ms':>9}{'+p50':>8}{'p99 ms':>9}"
        f"{'+p99':>8}{'vs direct':>11}{'proxy CPU/req':>15}{'server CPU/req':>16}"
    )
    medians = {p.name: median(p, connections) for p in paths}
    direct = medians["direct"]
    clean = True
    for p in paths:
        m = medians[p.name]
        requests = m["rps"] * duration
        proxy = f"{m['cpu_proxy'] / requests * 1e6:.1f} µs" if "cpu_proxy" in m else "-"
        server = f"{m['cpu_upstream'] / requests * 1e6:.0f} µs"
        print(
            f"  {p.name:<7}{m['rps']:>9.0f}{m['rps'] / direct['rps']:>10.3f}x"
            f"{m['p50']:>9.3f}{m['p50'] - direct['p50']:>+8.3f}"
            f"{m['p99']:>9.3f}{m['p99'] - direct['p99']:>+8.3f}"
            f"{m['p99'] / direct['p99']:>10.2f}x{proxy:>15}{server:>16}"
            + ("   (wrk reported errors)" if "errors" in m else "")
        )
        clean = clean and "errors" not in m
    for p in paths[1:]:  # run i of a path came right after run i of direct
        pairs = zip(p.runs[connections], paths[0].runs[connections], strict=True)
        ratios = [r["rps"] / d["rps"] for r, d in pairs]
        print(f"  {p.name} vs direct, req/s, run by run: {min(ratios):.3f}-{max(ratios):.3f}")
    return clean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per path (median kept)")
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[1, 50], help="wrk -c, each in turn"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    python = Path(os.environ.get("MLCHAOS_MLSERVER_VENV", ROOT / ".venv-mlserver")) / "bin"
    python /= "python"
    if shutil.which(WRK) is None or not python.exists():
        print(f"this benchmark needs wrk and MLServer at {python.parent.parent} (make bench)")
        return 2
    print(
        f"cores: {os.cpu_count()}; MLServer (one process); wrk -t1 -d{args.duration}s "
        f"--latency, one V2 inference per request, paths interleaved, median of {args.runs} "
        "runs after a 1 s warm-up each"
    )
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlchaos-bench-")))
        server, port = start_mlserver(python, tmp, tmp / "mlserver.log")
        stack.callback(stop, server, group=True)
        log_file = stack.enter_context((tmp / "proxies.log").open("wb"))
        paths = [Route("direct", port)]
        for protocol in ("tcp", "http"):
            path = start_proxy(protocol, False, port, tmp, log_file)
            assert path.proc is not None
            stack.callback(stop, path.proc)
            paths.append(path)
        body = inference_body(tmp)
        direct = predict(port, body)
        for path in paths[1:]:
            proxied = predict(path.port, body)
            if proxied != direct:
                print(f"through the {path.name} proxy the prediction differs: {proxied}")
                print(f"directly: {direct}")
                return 1
        print(f"through each proxy, the same prediction as directly: {direct['outputs']}")
        load = Load(INFER, wrk_script(tmp, body))
        clean = True
        for connections in args.connections:
            bench(paths, args.duration, connections, args.runs, server.pid, load)
            clean = report(paths, connections, args.duration) and clean
        errors = (tmp / "proxies.log").read_text(errors="replace").strip()
        if errors:
            print("\nproxies' stderr, last lines:\n  " + "\n  ".join(errors.splitlines()[-8:]))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
