"""Overhead of the fault proxy: nginx direct vs through the proxy in tcp and in http mode.

Run: ``.venv/bin/python benchmarks/proxy_overhead.py [--duration 10] [--connections 50]``

Starts nginx (one worker, a small static file on loopback, everything in a temp dir) and the
proxy in a subprocess on uvloop, then runs ``wrk -t1 -cN -dS --latency`` against nginx
directly, through a tcp-mode proxy, and through an http-mode proxy (arms 50/50, one abort
fault on the experiment arm at 0% probability, observations recorded). Each mode gets a 1 s
warm-up and then ``--runs`` (3) measured runs; it prints the median requests/s, p50 and p99,
the ratios against direct, and the targets:

* tcp:  at least 0.70x the direct requests/s, p99 at most 2x direct;
* http: at least 0.50x the direct requests/s.

Every process it starts is stopped at the end, whatever happens. The machine's core count
matters: wrk, nginx and the proxy compete for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
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
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import uvloop

from mlchaos.observations import ObservationStore
from mlchaos.proxy import AbortRule, ProxyConfig, ProxyServer
from mlchaos.units import Duration, Share

NGINX = "/usr/sbin/nginx"
WRK = "wrk"
ROOT = Path(__file__).resolve().parent.parent


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


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_nginx(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    www = tmp / "www"
    www.mkdir()
    (www / "index.html").write_text("<html><body>" + "mlchaos " * 64 + "</body></html>\n")
    for path in (tmp, www):  # readable by nginx's worker user when we run as root
        path.chmod(0o755)
    (www / "index.html").chmod(0o644)
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


def start_proxy(
    protocol: str, listen: int, upstream: int, control: int, log: BinaryIO
) -> subprocess.Popen[bytes]:
    config = {
        "protocol": protocol,
        "listen": f"127.0.0.1:{listen}",
        "upstream": f"127.0.0.1:{upstream}",
        "arms": {"experiment": "50%", "control": "50%"},
        "control": {"listen": f"127.0.0.1:{control}"},
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    wait_for_port(listen, proc)
    return proc


def run_child(config_json: str) -> None:
    """The proxy process: uvloop, observations recorded, one abort fault at 0%."""
    config = ProxyConfig.model_validate_json(config_json)

    async def main() -> None:
        store = ObservationStore()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        async with ProxyServer(config, observations=store) as server:
            if config.protocol.value == "http":
                rule = AbortRule(type="abort", probability=Share(0.0))
                server.faults.add(rule, Duration(3600.0), "bench-abort")
            await stopping.wait()
        print(json.dumps({"observations": len(store)}), flush=True)

    uvloop.run(main())


LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(port: int, duration: int, connections: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/index.html"
    out = subprocess.run(
        [WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
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
        print("   wrk reported: " + "; ".join(errors))
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


def measure(
    port: int, duration: int, connections: int, pids: dict[str, int], runs: int
) -> dict[str, float]:
    """Warm up, then ``runs`` wrk runs; each figure is the median over the runs."""
    wrk(port, 1, connections)  # warm up: connections, pools, caches
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result = wrk(port, duration, connections)
        for name, pid in pids.items():
            result[f"cpu_{name}"] = (cpu_seconds(pid) - before[name]) / duration
        samples.append(result)
    if runs > 1:
        rates = ", ".join(f"{r['rps']:.0f}" for r in samples)
        print(f"   runs: {rates} req/s")
    keys = [key for key in samples[0] if key != "errors"]
    median = {key: statistics.median(r[key] for r in samples) for key in keys}
    if any("errors" in r for r in samples):
        median["errors"] = 1.0
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per mode (median kept)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return 0
    for tool in (NGINX, WRK):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed; this benchmark needs nginx and wrk")
            return 2

    print(
        f"cores: {os.cpu_count()}; wrk -t1 -c{args.connections} -d{args.duration}s --latency, "
        f"median of {args.runs} runs per mode after a 1 s warm-up"
    )
    results: dict[str, dict[str, float]] = {}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlchaos-bench-")))
        nginx_port = free_port()
        nginx = start_nginx(tmp, nginx_port)
        stack.callback(stop, nginx)
        results["direct"] = measure(
            nginx_port, args.duration, args.connections, {"nginx": nginx.pid}, args.runs
        )
        show("direct", results["direct"], None)
        for protocol in ("tcp", "http"):
            listen = free_port()
            log = tmp / f"proxy-{protocol}.log"
            log_file = stack.enter_context(log.open("wb"))
            proxy = start_proxy(protocol, listen, nginx_port, free_port(), log_file)
            stack.callback(stop, proxy)
            results[protocol] = measure(
                listen,
                args.duration,
                args.connections,
                {"nginx": nginx.pid, "proxy": proxy.pid},
                args.runs,
            )
            stop(proxy)
            tail = ""
            if proxy.stdout is not None:
                tail = proxy.stdout.read().decode().strip()
                proxy.stdout.close()
            recorded = json.loads(tail.splitlines()[-1])["observations"] if tail else "?"
            show(protocol, results[protocol], results["direct"], recorded)
            errors = log.read_text(errors="replace").strip()
            if errors:
                print(f"   proxy stderr ({len(errors.splitlines())} lines), last lines:")
                print("   " + "\n   ".join(errors.splitlines()[-8:]))

    direct = results["direct"]
    tcp, http = results["tcp"], results["http"]
    checks = [
        ("tcp rps >= 0.70x direct", tcp["rps"] / direct["rps"], 0.70, True),
        ("tcp p99 <= 2x direct", tcp["p99"] / direct["p99"], 2.0, False),
        ("http rps >= 0.50x direct", http["rps"] / direct["rps"], 0.50, True),
    ]
    print()
    if (os.cpu_count() or 1) < 4:
        print(
            f"note: {os.cpu_count()} cores for wrk, nginx and the proxy together: through the "
            "proxy the three compete for them, directly only two run"
        )
    failed = 0
    for name, ratio, target, at_least in checks:
        ok = ratio >= target if at_least else ratio <= target
        failed += not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {ratio:.2f}x")
    return 1 if failed else 0


def show(
    name: str, r: dict[str, float], direct: dict[str, float] | None, recorded: object = None
) -> None:
    line = f"{name:>6}: {r['rps']:>9.0f} req/s   p50 {r['p50']:7.3f} ms   p99 {r['p99']:7.3f} ms"
    if direct is not None:
        line += f"   ({r['rps'] / direct['rps']:.2f}x rps, {r['p99'] / direct['p99']:.2f}x p99)"
    cpu = ", ".join(f"{key[4:]} {value:.2f}" for key, value in r.items() if key.startswith("cpu_"))
    line += f"\n        CPU cores used: {cpu}"
    if recorded is not None:
        line += f"; observations recorded: {recorded}"
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
