"""How long `mlchaos --help` takes to start (target: under 0.3 s).

Runs the installed entry point several times and prints the median and the fastest wall time,
and the modules it imported, so a heavy import creeping into start-up shows at once.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15
TARGET_S = 0.3


def main() -> int:
    exe = shutil.which("mlchaos") or str(Path(sys.executable).parent / "mlchaos")
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    probe = (
        "import sys; from mlchaos.cli import _main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy','scipy','statsmodels','pyarrow','aiohttp','rich','pydantic','yaml')))"
    )
    heavy = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"mlchaos --help: median {median * 1000:.0f} ms, fastest {min(times) * 1000:.0f} ms "
        f"over {RUNS} runs (target < {TARGET_S * 1000:.0f} ms): "
        f"{'MET' if median < TARGET_S else 'MISSED'}"
    )
    print(f"heavy modules imported at start-up: {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
