"""The public surface of ``mlchaos.testing`` changes only on purpose."""

from __future__ import annotations

import mlchaos.testing


def test_the_exported_names_are_pinned() -> None:
    assert mlchaos.testing.__all__ == [
        "TOY_FEATURES",
        "TOY_MODEL",
        "ChaosProxy",
        "FakeInjector",
        "FakeTraffic",
        "Judged",
        "ManualClock",
        "Upstream",
        "error_rate",
        "fake_injectors",
        "is_error",
        "latency_quantile",
        "make_dataset",
        "no_endpoints",
        "serve_upstream_forever",
        "start_upstream",
        "toy_predict",
        "toy_score",
        "upstream_app",
    ]
    assert all(hasattr(mlchaos.testing, name) for name in mlchaos.testing.__all__)
