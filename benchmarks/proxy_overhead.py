"""The fault proxy at production load: its cost against direct, and its faults' fidelity.

Run: ``.venv/bin/python benchmarks/proxy_overhead.py [--duration 10] [--runs 3]``
(``make bench``; needs ``apt-get install nginx-light wrk``; ``TOXIPROXY_BIN=/path/toxiproxy-server``
adds Toxiproxy to the same run.)

Starts nginx (one worker, a 539-byte file on loopback) and, each its own process on uvloop:
a tcp-mode proxy, an http-mode proxy, and an http-mode proxy with a fault (an abort on the
experiment arm at 0%: every request is planned and drawn, none is faulted), all with arms
50/50 and observations recorded; with ``TOXIPROXY_BIN``, a Toxiproxy proxy without toxics
(``LOG_LEVEL=error``: no log line per connection). Then,
at 50 and at 1000 connections, ``wrk -t1 -cN -dS --latency`` runs against each path in turn,
interleaved (run 1 of every path, then run 2 ...), after a 1 s warm-up each. Per path it prints
the median requests/s, the ratio to direct measured in the same run, p99 and its ratio, the
proxy's CPU per request, and (http) the upstream connections it opened.

A reference path, ``floor``: the least an HTTP proxy on httptools and uvloop can do, a bare
relay with none of mlchaos's features (no arms, faults, records, limits or timeouts; one
upstream connection per client, responses passed on as they come; accepting as the proxy
does). The gap between it and the http proxy is what the features cost; the gap between it and
direct is what any Python proxy costs on this machine.

Fidelity, against the http proxy through its control API: the delivered latency of 10 ms and
50 ms latency faults (minimum, p50, p99 of 20 clients x 25 requests, and what they add to the
same proxy without the fault), and the delivered rate of a 1 MB/s bandwidth fault on the tcp
proxy (a 3 MB download, net of the same download without the fault).

Targets (issue 17): at 50 connections http >= 0.53x direct, tcp >= 0.66x, p99 <= 2x direct in
both, and with Toxiproxy in the run, http >= 1.2x and tcp >= 1.5x its rate (the issue's own
reading of those ratios); at 1000 connections http keeps >= 0.8x its own 50-connection rate
and opens at most 2 upstream connections per client connection; the latency faults' minimum is
at least their delay; the bandwidth within 5%. Every process it starts is stopped at the end,
whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import httptools
import uvloop

from mlchaos.observations import ObservationStore
from mlchaos.proxy import AbortRule, Address, ProxyConfig, ProxyServer
from mlchaos.proxy._accept import Acceptor
from mlchaos.proxy._http import HttpPlane
from mlchaos.proxy._server import bind_socket
from mlchaos.units import Duration, Share

NGINX = "/usr/sbin/nginx"
WRK = "wrk"
ROOT = Path(__file__).resolve().parent.parent
BIG = 3_000_000  # bytes of the file the bandwidth check downloads


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    """Stop ``proc`` (with ``group``, every process of the session it leads), killing what a
    SIGTERM leaves running after 10 s."""
    if proc.poll() is None:
        send = functools.partial(os.killpg, proc.pid) if group else proc.send_signal
        send(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            proc.wait()


def start_nginx(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    www = tmp / "www"
    www.mkdir()
    (www / "index.html").write_text("<html><body>" + "mlchaos " * 64 + "</body></html>\n")
    (www / "big.bin").write_bytes(bytes(BIG))
    for path in (tmp, www):  # readable by nginx's worker user when we run as root
        path.chmod(0o755)
    (www / "index.html").chmod(0o644)
    (www / "big.bin").chmod(0o644)
    temp_paths = "\n".join(
        f"    {name}_temp_path {tmp / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "nginx.conf"
    conf.write_text(f"""\
worker_processes 1;
daemon off;
pid {tmp / "nginx.pid"};
error_log {tmp / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
{temp_paths}
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {www}; }}
    }}
}}
""")
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc)
    return proc


@dataclass
class Route:
    """One path under test: where wrk connects, the process whose CPU is the proxy's."""

    name: str
    port: int
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    control: str | None = None
    token_file: Path | None = None
    runs: dict[int, list[dict[str, float]]] = field(default_factory=dict)


def start_proxy(protocol: str, fault: bool, upstream: int, tmp: Path, log: BinaryIO) -> Route:
    listen, control = free_port(), free_port()
    token_file = tmp / f"token-{listen}"
    config = {
        "protocol": protocol,
        "listen": f"127.0.0.1:{listen}",
        "upstream": f"127.0.0.1:{upstream}",
        "arms": {"experiment": "50%", "control": "50%"},
        "control": {
            "listen": f"127.0.0.1:{control}",
            "token_file": str(token_file),
            "max_lease": "1h",
        },
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps({"config": config, "fault": fault})],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    wait_for_port(listen, proc)
    name = protocol + ("+fault" if fault else "")
    return Route(name, listen, proc.pid, proc, f"http://127.0.0.1:{control}", token_file)


def run_child(spec_json: str) -> None:
    """A proxy process: uvloop, observations recorded, with ``fault`` one abort at 0%. On
    SIGUSR1 it prints the upstream connections its pool has opened so far (http)."""
    spec = json.loads(spec_json)
    config = ProxyConfig.model_validate(spec["config"])

    async def main() -> None:
        store = ObservationStore()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        async with ProxyServer(config, observations=store) as server:
            plane = server._plane  # measuring the pool from inside: not a public figure

            def report() -> None:
                opened = plane.pool.opened if isinstance(plane, HttpPlane) else None
                print(json.dumps({"opened": opened}), flush=True)

            loop.add_signal_handler(signal.SIGUSR1, report)
            if spec["fault"]:
                rule = AbortRule(type="abort", probability=Share(0.0))
                server.faults.add(rule, Duration(3600.0), "bench-abort")
            await stopping.wait()
        print(json.dumps({"observations": len(store)}), flush=True)

    gc.freeze()  # as `mlchaos proxy serve` does before it serves
    uvloop.run(main())


class _FloorUpstream(asyncio.Protocol):
    """The bare relay's upstream side: the response, passed on whole when it is complete."""

    def __init__(self, client: _FloorClient) -> None:
        self.client = client
        self.parser = httptools.HttpResponseParser(self)
        self.out: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.out.append(data)
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        client = self.client.transport
        if client is not None and not client.is_closing():
            client.write(b"".join(self.out))
        self.out.clear()


class _FloorClient(asyncio.Protocol):
    """The bare relay's client side: each request re-written (as a proxy must) and sent on
    over this client's own upstream connection."""

    def __init__(self, upstream: int) -> None:
        self.upstream_port = upstream
        self.parser = httptools.HttpRequestParser(self)
        self.upstream: _FloorUpstream | None = None
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.lines: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.lines.append(b"%s: %s\r\n" % (name, value))

    def on_message_complete(self) -> None:
        request = b"".join([b"GET ", self.url, b" HTTP/1.1\r\n", *self.lines, b"\r\n"])
        self.lines = []
        if self.upstream is None:
            asyncio.get_running_loop().create_task(self.connect(request))
        else:
            assert self.upstream.transport is not None
            self.upstream.transport.write(request)

    async def connect(self, request: bytes) -> None:
        transport, self.upstream = await asyncio.get_running_loop().create_connection(
            lambda: _FloorUpstream(self), "127.0.0.1", self.upstream_port
        )
        if self.closed:  # the client left while this connected
            transport.close()
        else:
            transport.write(request)


def run_floor(spec_json: str) -> None:
    """The ``floor`` path's process: the bare relay on uvloop until SIGTERM."""
    spec = json.loads(spec_json)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        sock = bind_socket(Address(host="127.0.0.1", port=spec["listen"]), "the floor")
        acceptor = Acceptor(sock, lambda: _FloorClient(spec["upstream"]))  # as the proxy accepts
        await stopping.wait()
        acceptor.close()

    gc.freeze()  # as the proxy does
    uvloop.run(main())


def start_floor(upstream: int, log: BinaryIO) -> Route:
    listen = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    spec = json.dumps({"listen": listen, "upstream": upstream})
    proc = subprocess.Popen(
        [sys.executable, __file__, "--floor", spec], env=env, stdout=log, stderr=log
    )
    wait_for_port(listen, proc)
    return Route("floor", listen, proc.pid, proc)


def upstream_opened(path: Route) -> int | None:
    """How many upstream connections the proxy has opened (http proxies; None otherwise)."""
    if path.proc is None or path.proc.stdout is None or not path.name.startswith("http"):
        return None
    path.proc.send_signal(signal.SIGUSR1)
    line = path.proc.stdout.readline()
    return json.loads(line)["opened"]  # type: ignore[no-any-return]


def start_toxiproxy(binary: str, upstream: int, log: BinaryIO) -> Route:
    api, listen = free_port(), free_port()
    proc = subprocess.Popen(
        [binary, "-host", "127.0.0.1", "-port", str(api)],
        stdout=log,
        stderr=log,
        env={**os.environ, "LOG_LEVEL": "error"},  # not a line per connection, as in a load test
    )
    wait_for_port(api, proc)
    body = {"name": "bench", "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream}"}
    request = urllib.request.Request(
        f"http://127.0.0.1:{api}/proxies",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5):
        pass
    wait_for_port(listen, proc)
    return Route("toxiproxy", listen, proc.pid, proc)


LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Load:
    """What wrk asks for: a path, and a Lua script setting method, body and headers."""

    path: str = "/index.html"
    script: Path | None = None


def wrk(
    port: int, duration: int, connections: int, name: str = "", load: Load = Load()
) -> dict[str, float]:
    """One wrk run; its errors are said (with ``name``, the path) unless it is a warm-up."""
    script = [] if load.script is None else ["-s", str(load.script)]
    url = f"http://127.0.0.1:{port}{load.path}"
    out = subprocess.run(
        [WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", *script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = RPS.search(out)
    if rps is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    result = {"rps": float(rps.group(1))}
    for pct, value, unit in LATENCY.findall(out):
        result[f"p{pct}"] = float(value) * UNIT[unit]
    if "non-2xx" in out or "Socket errors" in out:
        errors = [
            line.strip() for line in out.splitlines() if "non-2xx" in line or "errors" in line
        ]
        result["errors"] = 1.0
        if name:
            print(f"   {name} at {connections} conns, wrk reported: " + "; ".join(errors))
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its direct children (nginx's worker)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def bench(
    paths: list[Route],
    duration: int,
    connections: int,
    runs: int,
    upstream: int,
    load: Load = Load(),
) -> None:
    """Warm each path up, then ``runs`` rounds of one wrk run per path, interleaved; the CPU of
    the process ``upstream`` (and its children) is measured too."""
    for path in paths:
        wrk(path.port, 1, connections, load=load)
    for _ in range(runs):
        for path in paths:
            pids = {"upstream": upstream} | ({} if path.pid is None else {"proxy": path.pid})
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            opened = upstream_opened(path)
            result = wrk(path.port, duration, connections, path.name, load)
            for name, pid in pids.items():
                result[f"cpu_{name}"] = cpu_seconds(pid) - before[name]
            after = upstream_opened(path)
            if opened is not None and after is not None:
                result["opened"] = after - opened
            path.runs.setdefault(connections, []).append(result)


def median(path: Route, connections: int) -> dict[str, float]:
    samples = path.runs[connections]
    keys = [k for k in samples[0] if k != "errors"]
    out = {k: statistics.median(r[k] for r in samples) for k in keys}
    if any("errors" in r for r in samples):
        out["errors"] = 1.0
    return out


def table(paths: list[Route], connections: int, duration: int) -> dict[str, dict[str, float]]:
    print(f"\n{connections} connections (median of {len(paths[0].runs[connections])} runs):")
    print(
        f"  {'path':<11}{'req/s':>9}{'vs direct':>11}{'p99 ms':>9}{'vs direct':>11}"
        f"{'proxy CPU/req':>15}{'upstream conns':>16}"
    )
    medians = {p.name: median(p, connections) for p in paths}
    direct = medians["direct"]
    for p in paths:
        m = medians[p.name]
        requests = m["rps"] * duration
        cpu = f"{m['cpu_proxy'] / requests * 1e6:.1f} µs" if "cpu_proxy" in m else "-"
        opened = f"{m['opened']:.0f}" if "opened" in m else "-"
        print(
            f"  {p.name:<11}{m['rps']:>9.0f}{m['rps'] / direct['rps']:>10.2f}x"
            f"{m['p99']:>9.2f}{m['p99'] / direct['p99']:>10.2f}x{cpu:>15}{opened:>16}"
            + ("   (wrk reported errors)" if "errors" in m else "")
        )
    return medians


def control_call(path: Route, method: str, route: str, body: object | None = None) -> Any:
    assert path.control is not None and path.token_file is not None
    token = path.token_file.read_text().strip()
    request = urllib.request.Request(
        path.control + route,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


async def _get_times(port: int, clients: int, requests: int) -> list[float]:
    """Each request's latency, ``clients`` keep-alive connections sending ``requests`` each."""
    times: list[float] = []
    head = b"GET /index.html HTTP/1.1\r\nHost: bench\r\n\r\n"

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(requests):
                t0 = time.perf_counter()
                writer.write(head)
                length = 0
                while line := await reader.readline():
                    if line == b"\r\n":
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                times.append(time.perf_counter() - t0)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return times


def latency_fidelity(http: Route) -> list[tuple[str, float, bool]]:
    print("\nlatency faults on the http proxy (20 clients x 25 requests; ms):")
    base = sorted(asyncio.run(_get_times(http.port, 20, 25)))
    checks = []
    for delay_ms in (10, 50):
        rule = {"type": "latency", "delay": f"{delay_ms}ms", "arm": "all"}
        added = control_call(http, "POST", "/faults", {"rule": rule, "lease": "60s"})
        try:
            got = sorted(asyncio.run(_get_times(http.port, 20, 25)))
        finally:
            control_call(http, "DELETE", f"/faults/{added['id']}")
        q = statistics.quantiles
        row = {
            "min": got[0],
            "p50": statistics.median(got),
            "p99": q(got, n=100)[98],
        }
        without = {"min": base[0], "p50": statistics.median(base), "p99": q(base, n=100)[98]}
        print(
            f"  {delay_ms:>2} ms fault: delivered min {row['min'] * 1e3:.3f}  p50 "
            f"{row['p50'] * 1e3:.3f}  p99 {row['p99'] * 1e3:.3f}; without the fault min "
            f"{without['min'] * 1e3:.3f}  p50 {without['p50'] * 1e3:.3f}  p99 "
            f"{without['p99'] * 1e3:.3f}; added (quantile minus quantile) min "
            f"{(row['min'] - without['min']) * 1e3:.3f}  p50 "
            f"{(row['p50'] - without['p50']) * 1e3:.3f}  p99 "
            f"{(row['p99'] - without['p99']) * 1e3:.3f}"
        )
        checks.append(
            (
                f"{delay_ms} ms fault: minimum >= {delay_ms} ms",
                row["min"] * 1e3,
                row["min"] >= delay_ms / 1e3,
            )
        )
    return checks


def _download(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        t0 = time.perf_counter()
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        got = 0
        while chunk := sock.recv(262144):
            got += len(chunk)
        took = time.perf_counter() - t0
    if got < BIG:
        raise RuntimeError(f"downloaded {got} bytes of {BIG}")
    return took


def bandwidth_fidelity(tcp: Route) -> tuple[str, float, bool]:
    rate = 1_000_000
    free = _download(tcp.port)
    rule = {"type": "bandwidth", "bytes_per_second": rate, "arm": "all", "stream": "downstream"}
    added = control_call(tcp, "POST", "/faults", {"rule": rule, "lease": "60s"})
    try:
        shaped = _download(tcp.port)
    finally:
        control_call(tcp, "DELETE", f"/faults/{added['id']}")
    delivered = (BIG - rate / 20) / (shaped - free)  # the bucket starts with 1/20 s of bytes
    print(
        f"\nbandwidth fault 1 MB/s on the tcp proxy: a {BIG / 1e6:.0f} MB download took "
        f"{shaped:.3f} s ({free:.3f} s without): delivered {delivered / 1e6:.4f} MB/s"
    )
    return ("bandwidth within 5% of 1 MB/s", delivered / rate, abs(delivered / rate - 1) <= 0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per path (median kept)")
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[50, 1000], help="wrk -c, each in turn"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--floor", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return 0
    if args.floor:
        run_floor(args.floor)
        return 0
    # Stopped by a signal, the ExitStack below still stops every process this started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    for tool in (NGINX, WRK):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed; this benchmark needs nginx and wrk")
            return 2
    toxiproxy = os.environ.get("TOXIPROXY_BIN")
    print(
        f"cores: {os.cpu_count()}; wrk -t1 -d{args.duration}s --latency, paths interleaved, "
        f"median of {args.runs} runs after a 1 s warm-up each"
    )
    if toxiproxy is None:
        print("TOXIPROXY_BIN is not set: no Toxiproxy in this run, ratios are to direct only")
    checks: list[tuple[str, float, bool]] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlchaos-bench-")))
        nginx_port = free_port()
        nginx = start_nginx(tmp, nginx_port)
        stack.callback(stop, nginx)
        log_file = stack.enter_context((tmp / "proxies.log").open("wb"))
        paths = [Route("direct", nginx_port)]
        for protocol, fault in (("tcp", False), ("http", False), ("http", True)):
            path = start_proxy(protocol, fault, nginx_port, tmp, log_file)
            assert path.proc is not None
            stack.callback(stop, path.proc)
            paths.append(path)
        floor = start_floor(nginx_port, log_file)
        assert floor.proc is not None
        stack.callback(stop, floor.proc)
        paths.append(floor)
        if toxiproxy is not None:
            path = start_toxiproxy(toxiproxy, nginx_port, log_file)
            assert path.proc is not None
            stack.callback(stop, path.proc)
            paths.append(path)
        results = {}
        for connections in args.connections:
            bench(paths, args.duration, connections, args.runs, nginx.pid)
            results[connections] = table(paths, connections, args.duration)
        by_name = {p.name: p for p in paths}
        checks += latency_fidelity(by_name["http"])
        checks.append(bandwidth_fidelity(by_name["tcp"]))
        errors = (tmp / "proxies.log").read_text(errors="replace").strip()
        if errors:
            print(f"\nproxies' stderr ({len(errors.splitlines())} lines), last lines:")
            print("  " + "\n  ".join(errors.splitlines()[-8:]))

    if 50 in results:
        r = results[50]
        d = r["direct"]
        checks += [
            (
                "50 conns: http >= 0.53x direct",
                r["http"]["rps"] / d["rps"],
                r["http"]["rps"] / d["rps"] >= 0.53,
            ),
            (
                "50 conns: tcp >= 0.66x direct",
                r["tcp"]["rps"] / d["rps"],
                r["tcp"]["rps"] / d["rps"] >= 0.66,
            ),
            (
                "50 conns: http p99 <= 2x direct",
                r["http"]["p99"] / d["p99"],
                r["http"]["p99"] <= 2 * d["p99"],
            ),
            (
                "50 conns: tcp p99 <= 2x direct",
                r["tcp"]["p99"] / d["p99"],
                r["tcp"]["p99"] <= 2 * d["p99"],
            ),
        ]
        if "toxiproxy" in r:  # the targets as it states them against Toxiproxy
            for name, factor in (("http", 1.2), ("tcp", 1.5)):
                ratio = r[name]["rps"] / r["toxiproxy"]["rps"]
                checks.append(
                    (f"50 conns: {name} >= {factor}x Toxiproxy (req/s)", ratio, ratio >= factor)
                )
    references = [
        (f"{connections} conns: {name} vs {ref} ({what})", r[name][key] / r[ref][key])
        for connections, r in results.items()
        for ref in ("floor", "toxiproxy")
        if ref in r
        for name in ("http", "tcp")
        for key, what in (("rps", "req/s"), ("p99", "p99"))
    ]
    if 50 in results and 1000 in results:
        kept = results[1000]["http"]["rps"] / results[50]["http"]["rps"]
        checks.append(("1000 conns: http keeps >= 0.8x its 50-conn rate", kept, kept >= 0.8))
        opened = results[1000]["http"].get("opened", 0.0)
        checks.append(
            ("1000 conns: http upstream conns <= 2x clients", opened / 1000, opened <= 2000)
        )
    print()
    if (os.cpu_count() or 1) < 4:
        print(
            f"note: {os.cpu_count()} cores for wrk, nginx and the proxy together: through the "
            "proxy the three compete for them, directly only two run"
        )
    for name, value in references:
        print(f"INFO  {name}: {value:.3f}")
    for name, value, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {name}: {value:.3f}")
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
