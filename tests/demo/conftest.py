"""Fixtures of the demo tests: ``needs_redis`` skips a test, with its reason, where
``redis-server`` is not installed — or fails it, when ``MLCHAOS_REQUIRE_REDIS=1`` (CI)."""

from __future__ import annotations

import os
import shutil

import pytest

REDIS_MISSING = "redis-server is not installed (apt-get install redis-server)"


@pytest.fixture
def needs_redis() -> None:
    if shutil.which("redis-server") is not None:
        return
    if os.environ.get("MLCHAOS_REQUIRE_REDIS") == "1":
        pytest.fail(f"MLCHAOS_REQUIRE_REDIS=1 but {REDIS_MISSING}")
    pytest.skip(REDIS_MISSING)
