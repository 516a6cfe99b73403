"""The public surface of ``mlchaos.traffic`` changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import mlchaos.traffic


def test_the_exported_names_are_pinned() -> None:
    assert mlchaos.traffic.__all__ == [
        "Dataset",
        "RequestBuilder",
        "TrafficResult",
        "classify_error",
        "fill_template",
        "first_request",
        "input_columns",
        "load_dataset",
        "run_live",
        "run_traffic",
        "to_degradation",
        "to_model",
        "to_prediction",
    ]
    assert all(hasattr(mlchaos.traffic, name) for name in mlchaos.traffic.__all__)


def test_importing_traffic_loads_no_heavy_library() -> None:
    code = (
        "import sys, mlchaos.traffic; "
        "print(sorted(m for m in ('pyarrow', 'numpy', 'aiohttp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
