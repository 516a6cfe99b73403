"""docs/your-service.md, followed to the letter: its walkthrough block starts MLServer with a
model, writes an experiment with ``mlchaos init`` and runs it. The run must hold (exit 0), and
every answer it recorded must be scikit-learn's own prediction for that row."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlchaos.journal import read_journal
from mlchaos.observations import ErrorKind, key_code
from mlchaos.report._runs import rebuild_store
from tests.conftest import ROOT
from tests.servers.conftest import venv_python

GUIDE = ROOT / "docs" / "your-service.md"
WORK = ROOT / "reports" / "your-service"


def walkthrough() -> str:
    text = GUIDE.read_text()
    found = re.search(
        r"<!-- walkthrough -->\s*```bash\n(.*?)```\s*<!-- /walkthrough -->", text, re.S
    )
    assert found, "docs/your-service.md lost its walkthrough block"
    return found.group(1)


@pytest.mark.slow
def test_the_guide_walkthrough_runs_mlserver_init_and_a_run_that_holds() -> None:
    venv_python("mlserver")  # skip (or fail in CI) without MLServer
    shutil.rmtree(WORK, ignore_errors=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    script = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the server it starts in the background is in its group
    )
    try:
        output, _ = script.communicate(timeout=400)
    finally:
        os.killpg(script.pid, signal.SIGTERM)  # the server, left running by the walkthrough
        script.wait()
    assert script.returncode == 0, output[-4000:]
    assert "verdict: HELD" in output, output[-4000:]

    # Every answer recorded is the prediction scikit-learn computes for that row, so the
    # accuracy mlchaos judged is scikit-learn's on the same rows.
    expected = json.loads((WORK / "expected.json").read_text())
    truth = {key_code(str(i)): float(p) for i, p in enumerate(expected["predict"])}
    store = rebuild_store(read_journal(WORK / "run" / "journal.jsonl"))
    answered = (store.column("error") == ErrorKind.OK) & (store.column("status") == 200)
    keys = store.column("key")[answered]
    predictions = store.column("prediction")[answered]
    assert len(keys) > 300
    assert [truth[int(k)] for k in keys] == predictions.tolist()
    summary = json.loads((WORK / "run" / "summary.json").read_text())
    assert summary["verdict"] == "held"
    for arm in ("experiment", "control"):
        assert summary["arms"][arm]["accuracy"]["n"] > 100
