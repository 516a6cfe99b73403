"""The HTML report in a real browser: headless Chromium, driven over the DevTools Protocol.

Reports of real runs are opened from disk; the page must log no error and raise no exception,
every chart must be laid out with a size, and a screenshot must be a PNG of the viewport's size
that is not blank (:func:`tests.browser.assert_renders`). Skipped when ``chromium`` is not
installed, unless ``MLCHAOS_REQUIRE_CHROMIUM=1`` (as in CI), where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlchaos.cli import main
from tests.browser import assert_renders, headless_chromium, inspect_report
from tests.report.conftest import HOSTILE_TITLE


@pytest.fixture(scope="module")
def devtools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile")) as url:
        yield url


@pytest.fixture(scope="module")
def reports(
    real_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """HTML reports of the real runs, written by ``mlchaos report --format html``."""
    out = tmp_path_factory.mktemp("html-reports")
    paths = {}
    for name in ("held", "aborted", "sweep"):
        paths[name] = out / f"{name}.html"
        args = ["report", str(real_runs[name]), "--format", "html", "--out", str(paths[name])]
        assert main(args) == 0
    return paths


@pytest.mark.parametrize("name", ["held", "aborted", "sweep"])
def test_the_report_renders_in_chromium_without_errors_and_with_every_chart(
    name: str, reports: dict[str, Path], devtools: str, tmp_path: Path
) -> None:
    seen = inspect_report(devtools, reports[name])
    (tmp_path / f"{name}.png").write_bytes(seen["shot"])  # for a person looking at a failure
    assert_renders(seen, reports[name])
    if name == "aborted":
        assert seen["title"] == HOSTILE_TITLE  # shown as text, never run
