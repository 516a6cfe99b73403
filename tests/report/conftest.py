"""Real runs to report on: the bundled examples against the toy model, through a real proxy.

Run once per session, side by side: one that holds, one that fails its hypothesis, one that the
kill switch aborts (with hostile text in its title and guardrail name, so escaping is tested on
a real journal) and a two-value sweep.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MLCHAOS, ROOT, first_line, free_port

HOSTILE_TITLE = '<script>alert(1)</script> & "quoted" aborted run'
HOSTILE_GUARDRAIL = "<img src=x onerror=alert(2)> most experiment calls fail"


def _localised(text: str, upstream: int) -> str:
    """An example's text with its ports moved to free ones and its dataset path absolute."""
    text = text.replace("18500", str(upstream)).replace("18501", str(free_port()))
    return text.replace("dataset: data/", f"dataset: {ROOT / 'examples' / 'data'}/")


def _specs(upstream: int) -> dict[str, str]:
    # The latency bound is loosened: four runs share a loaded machine here, and these runs are
    # material for reports, not a test of the toy model's speed.
    example = (ROOT / "examples" / "abort-experiment-arm.yaml").read_text()
    assert "    max: 250ms" in example
    example = example.replace("    max: 250ms", "    max: 5s")
    aborted = (
        example.replace(
            "title: Aborted model calls stay in the experiment arm",
            f"title: '{HOSTILE_TITLE}'",
        )
        .replace("probability: 20%", "probability: 100%")
        .replace("name: most experiment calls fail", f"name: '{HOSTILE_GUARDRAIL}'")
        .replace("max: 80%", "max: 20%")
        .replace("  timeout: 1s", "  timeout: 0.25s")  # tripped soon after injection
    )
    sweep = (
        example.replace("duration: 10s", "duration: 4s")
        .replace("duration: 8s", "duration: 2s")
        .replace("  timeout: 1s", "  timeout: 0.25s")  # a short window: judge most of it
        .replace("metric: latency_p99", "metric: latency_p95")
        .replace("name: experiment p99 latency", "name: experiment p95 latency")
        # ~150 control requests in a 2 s window bound an error-free control below 2.5%, not
        # 2%: at 5% the first value holds for certain and the sweep's verdict is fixed.
        .replace("    max: 2%", "    max: 5%")
        + "sweep:\n  fault: 0\n  field: probability\n  values: [10%, 60%]\n"
    )
    assert aborted.count(HOSTILE_GUARDRAIL) == 1 and "sweep:" in sweep
    violated = (ROOT / "examples" / "violated-hypothesis.yaml").read_text()
    texts = {"held": example, "failed": violated, "aborted": aborted, "sweep": sweep}
    return {name: _localised(text, upstream) for name, text in texts.items()}


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """name → the run's output directory (for ``sweep``, the sweep's directory)."""
    base = tmp_path_factory.mktemp("real-runs")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen[str]] = []
    procs.append(
        subprocess.Popen(
            [*MLCHAOS, "upstream", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
    )
    try:
        found = re.search(r"http://127\.0\.0\.1:(\d+)", first_line(procs[0]))
        assert found is not None
        port = int(found[1])
        runs: dict[str, tuple[Path, subprocess.Popen[str]]] = {}
        for name, text in _specs(port).items():
            spec = base / f"{name}.yaml"
            spec.write_text(text)
            out = base / name
            # Each run its own registry: they share the toy model, one experiment per target.
            state = {"MLCHAOS_STATE_DIR": str(base / f"state-{name}")}
            proc = subprocess.Popen(
                [*MLCHAOS, "run", str(spec), "--out", str(out), "--quiet"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**env, **state},
            )
            procs.append(proc)
            runs[name] = (out, proc)
        for name, (_, proc) in runs.items():
            output, _ = proc.communicate(timeout=180)
            # (the sweep holds when its first value, 10%, does; its 60% fails)
            expected = {"held": 0, "failed": 1, "aborted": 1, "sweep": 0}[name]
            assert proc.returncode == expected, f"{name} run exited {proc.returncode}:\n{output}"
        yield {name: out for name, (out, _) in runs.items()}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
