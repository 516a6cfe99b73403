"""The main job until the demo service lands: run the example experiments against the toy model.

Starts the bundled toy model server (`mlchaos upstream serve`) as its own process, runs
`examples/abort-experiment-arm.yaml` (its hypothesis must hold: exit 0) and
`examples/violated-hypothesis.yaml` (its hypothesis must fail: exit 1), and stops the server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MLCHAOS = [sys.executable, "-m", "mlchaos"]
UPSTREAM_PORT = 18500


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the toy model did not start on port {port}")


def main() -> int:
    upstream = subprocess.Popen([*MLCHAOS, "upstream", "serve", "--port", str(UPSTREAM_PORT)])
    try:
        wait_for_port(UPSTREAM_PORT)
        results = []
        for name, expected in (("abort-experiment-arm", 0), ("violated-hypothesis", 1)):
            print(f"\n=== mlchaos run examples/{name}.yaml (expected exit {expected})", flush=True)
            out = ROOT / "reports" / "example" / name
            code = subprocess.call(
                [*MLCHAOS, "run", str(ROOT / "examples" / f"{name}.yaml"), "--out", str(out)]
            )
            results.append((name, expected, code))
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
    print()
    ok = True
    for name, expected, code in results:
        good = code == expected
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} {name}: exit {code} (expected {expected})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
