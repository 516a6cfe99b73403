"""The command line: clear one-line errors, documented exit codes, no tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from mlchaos.cli import main
from tests.conftest import Spawn, first_line

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES / "abort-experiment-arm.yaml")]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_reports_every_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\ntraffic: {rate: fast}\nhypothesis: []\nbogus: 1\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "problems" in err
    assert "unknown key 'bogus'" in err
    assert "traffic.rate" in err
    assert "Traceback" not in err


def test_schema_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "faults" in schema["properties"]


def test_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--frobnicate"])
    assert info.value.code == 2


def test_report_on_a_missing_journal_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such journal" in capsys.readouterr().err


def test_proxy_serve_with_an_invalid_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text("listen: nowhere\nupstream: 127.0.0.1:1\nprotocol: udp\n")
    assert main(["proxy", "serve", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "listen" in err
    assert "protocol" in err


def test_help_starts_without_heavy_imports() -> None:
    code = (
        "import sys; from mlchaos.cli import _main; "
        "heavy = [m for m in ('numpy', 'scipy', 'aiohttp', 'pyarrow', 'rich', 'pydantic') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bundled_proxy_config_is_valid() -> None:
    from mlchaos.proxy import ProxyConfig
    from mlchaos.spec import load_model

    config = load_model(EXAMPLES / "proxy.yaml", ProxyConfig)
    assert config.arms.key is not None
    assert config.arms.key.header == "x-entity-id"


def test_proxy_serve_announce_prints_one_json_ready_line_first(
    tmp_path: Path, spawn: Spawn
) -> None:
    """Supervisors (the demo) learn the ephemeral ports and token file from that line."""
    up = spawn("upstream", "serve", "--port", "0")
    found = re.search(r"http://127\.0\.0\.1:(\d+)", first_line(up))
    assert found is not None
    upstream = int(found[1])
    cfg = tmp_path / "proxy.json"
    token_file = tmp_path / "token"
    cfg.write_text(
        json.dumps(
            {
                "listen": "127.0.0.1:0",
                "upstream": f"127.0.0.1:{upstream}",
                "control": {"token_file": str(token_file)},
            }
        )
    )
    proc = spawn("proxy", "serve", "--config", str(cfg), "--announce")
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    assert ready["ready"] is True
    assert isinstance(ready["port"], int) and ready["port"] > 0
    assert ready["control"].startswith("http://127.0.0.1:")
    assert ready["token_file"] == str(token_file)
    with urllib.request.urlopen(f"http://127.0.0.1:{ready['port']}/v2/health/ready") as r:
        assert r.status == 200
    assert up.poll() is None


PARTITION = """\
title: partition
agents: [{{name: a, connect: {{url: "http://127.0.0.1:9", token_file: t}}}}]
traffic:
  target: http://127.0.0.1:8000
  dataset: {dataset}
  rate: 10/s
  duration: 5s
  request: {{protocol: v2, model: toy}}
  label: label
faults:
  - {{type: partition, target: a, process: {{pidfile: g.pid}}, {rest}}}
hypothesis:
  - {{metric: error_rate, arm: control, max: 5%}}
"""


def test_validate_says_a_partition_hits_every_arm_and_refuses_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "p.yaml"
    dataset = EXAMPLES / "data" / "toy.csv"
    spec.write_text(PARTITION.format(dataset=dataset, rest="peer: {pidfile: s.pid}, mode: loud"))
    assert main(["validate", str(spec)]) == 0
    assert "(partition) cuts the network itself: it hits every arm" in capsys.readouterr().out
    bad = "peer: {pidfile: s.pid, pick: one}, mode: quiet, direction: sideways"
    spec.write_text(PARTITION.format(dataset=dataset, rest=bad))
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "faults[0].mode" in err and "'silent' or 'loud'" in err
    assert "'both', 'outbound' or 'inbound'" in err
    spec.write_text(PARTITION.format(dataset=dataset, rest="peer: {pidfile: s.pid, pick: one}"))
    assert main(["validate", str(spec)]) == 2
    assert "faults[0].peer.pick: a partition fault acts on one process" in capsys.readouterr().err
    spec.write_text(PARTITION.format(dataset=dataset, rest="mode: loud"))
    assert main(["validate", str(spec)]) == 2
    assert "peer" in capsys.readouterr().err
