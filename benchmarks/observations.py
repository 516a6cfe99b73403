"""Memory and analysis time of one million observations, against the project's targets.

Fills an ObservationStore through its public ``add`` method with simulated records (every
record in one of two arms, a few models, labelled predictions, some timeouts and 5xx), then
prints what the records take in memory (``store.nbytes()`` and the growth of the process's
resident set) against 100 MB, and how long ``arm_stats`` for both arms plus ``compare`` take
against 1 s, cold (the first call, which pays for scipy's lazy import) and warm.

Run: ``.venv/bin/python benchmarks/observations.py [records]``. A script that prints figures,
not a test.
"""

from __future__ import annotations

import gc
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mlchaos import stats
from mlchaos.arms import ArmCode
from mlchaos.observations import ObservationStore

MEMORY_TARGET_MB = 100.0
TIME_TARGET_S = 1.0
CHUNK = 10_000


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; falls back to the peak from getrusage)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def simulated_columns(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Every record in an arm, half each: the worst case for the analysis (most rows to sort).
    arm = rng.choice([ArmCode.EXPERIMENT, ArmCode.CONTROL], n)
    error = np.where(rng.random(n) < 0.01, 1, 0)  # 1% timeouts
    status = np.where(error == 1, 0, np.where(rng.random(n) < 0.02, 503, 200))
    label = rng.integers(0, 2, n).astype(np.float64)
    score = np.clip(label * 0.6 + rng.normal(0.2, 0.25, n), 0.0, 1.0)
    return {
        "arm": arm.astype(np.int64),
        "start": 1.7e9 + np.arange(n) / 1000.0,
        "latency": rng.lognormal(np.log(0.02), 0.5, n),
        "status": status,
        "error": error,
        "model": rng.choice([0, 1, 2, -1], n, p=[0.7, 0.2, 0.09, 0.01]),
        "prediction": np.where(error == 1, np.nan, score),
        "label": label,
        "fault": (arm == ArmCode.EXPERIMENT).astype(np.int64),
    }


def fill(store: ObservationStore, cols: dict[str, np.ndarray]) -> None:
    n = len(cols["arm"])
    names = list(cols)
    add = store.add
    for lo in range(0, n, CHUNK):
        chunk = [cols[name][lo : lo + CHUNK].tolist() for name in names]
        for values in zip(*chunk, strict=True):
            add(**dict(zip(names, values, strict=True)))


def analyse(store: ObservationStore) -> None:
    e = stats.arm_stats(store, ArmCode.EXPERIMENT, threshold=0.5)
    c = stats.arm_stats(store, ArmCode.CONTROL, threshold=0.5)
    stats.compare(e, c)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    cols = simulated_columns(n)
    store = ObservationStore()
    for model in ("model-v1", "model-v2", "fallback"):
        store.model_code(model)
    gc.collect()
    rss_before = rss_bytes()
    t0 = time.perf_counter()
    fill(store, cols)
    fill_s = time.perf_counter() - t0
    gc.collect()
    rss_growth = rss_bytes() - rss_before
    mb = 1024 * 1024

    print(f"records:                 {len(store):,}")
    print(f"fill through add():      {fill_s:.2f} s ({fill_s / n * 1e6:.2f} us per record)")
    print(
        f"store.nbytes():          {store.nbytes() / mb:.1f} MiB "
        f"({store.nbytes() / n:.0f} B/record), target {MEMORY_TARGET_MB:.0f} MB"
    )
    print(f"process RSS growth:      {rss_growth / mb:.1f} MiB, target {MEMORY_TARGET_MB:.0f} MB")

    t0 = time.perf_counter()
    analyse(store)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(5):
        t0 = time.perf_counter()
        analyse(store)
        warm.append(time.perf_counter() - t0)
    print(
        f"arm_stats x2 + compare:  cold {cold * 1000:.0f} ms (first call, imports scipy.special), "
        f"warm median {statistics.median(warm) * 1000:.0f} ms, target {TIME_TARGET_S:.0f} s"
    )

    e = stats.arm_stats(store, ArmCode.EXPERIMENT, threshold=0.5)
    c = stats.arm_stats(store, ArmCode.CONTROL, threshold=0.5)
    cmp = stats.compare(e, c)
    p99 = e.latency["p99"]
    print(
        f"sanity: experiment n={e.requests:,} error rate {e.errors.value:.4f} "
        f"p99 {p99.value * 1000:.1f} ms [{p99.low * 1000:.1f}, {p99.high * 1000:.1f}]; "
        f"error-rate diff {cmp.error_rate_diff.value:+.4f} "
        f"[{cmp.error_rate_diff.low:+.4f}, {cmp.error_rate_diff.high:+.4f}]"
    )


if __name__ == "__main__":
    main()
