"""``mlchaos init`` against the bundled toy model server (OIP v2): what it writes, and one clear
message with the documented exit code for each thing that stops it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import MLCHAOS, ROOT, Spawn, free_port, wait_for_port

TOY = ROOT / "examples" / "data" / "toy.csv"


@pytest.fixture
def toy(spawn: Spawn) -> str:
    port = free_port()
    spawn("upstream", "serve", "--port", str(port))
    wait_for_port(port)
    return f"http://127.0.0.1:{port}"


def init(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLCHAOS, "init", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_init_writes_a_commented_experiment_that_validates(toy: str, tmp_path: Path) -> None:
    out = tmp_path / "exp" / "experiment.yaml"
    done = init(
        "--model-url",
        toy,
        "--model",
        "toy",
        "--dataset",
        str(TOY),
        "--key",
        "entity_id",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout and "needs ≈" in done.stdout
    text = out.read_text()
    assert text.startswith("# Written by `mlchaos init` for model toy")
    spec = yaml.safe_load(text)
    traffic = spec["traffic"]
    assert traffic["label"] == "label" and traffic["key"] == "entity_id"
    assert (out.parent / traffic["dataset"]).resolve() == TOY.resolve()  # relative to the file
    assert traffic["target"] == f"http://{spec['proxies'][0]['serve']['listen']}"
    assert spec["faults"][0] | {"start": 0} == {
        "type": "abort",
        "target": "model-proxy",
        "status": 503,
        "arm": "experiment",
        "probability": "20%",
        "start": 0,
        "duration": "26s",
    }
    assert [c["name"] for c in spec["hypothesis"]] == [
        "control arm untouched",
        "experiment error increase bounded",
        "experiment accuracy within 5 points of control",
    ]
    valid = subprocess.run([*MLCHAOS, "validate", str(out)], capture_output=True, text=True)
    assert valid.returncode == 0, valid.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--model", "nope"],
            3,
            "/v2/models/nope/ready (--wait SECONDS waits for it): HTTP 404 (is --model",
        ),
        (["--label", "nope"], 2, "--label: the dataset has no column 'nope'"),
        (["--model-url", "ftp://x"], 2, "--model-url: expected http://host:port"),
        (["--dataset", "missing.csv"], 2, "missing.csv: file not found"),
        (["--rate", "0"], 2, "--rate must be in (0, 10000]"),
    ],
)
def test_each_mistake_gets_one_clear_message_and_no_file(
    toy: str, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    out = tmp_path / "experiment.yaml"
    base = {"--model-url": toy, "--model": "toy", "--dataset": str(TOY), "--out": str(out)}
    given = dict(zip(args[::2], args[1::2], strict=True))
    done = init(*[x for k, v in (base | given).items() for x in (k, v)])
    assert done.returncode == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_a_server_that_is_not_up_is_reported_after_the_wait(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = init(
        "--model-url",
        url,
        "--model",
        "m",
        "--dataset",
        str(TOY),
        "--wait",
        "1",
        "--out",
        str(tmp_path / "e.yaml"),
    )
    assert done.returncode == 3
    assert f"the model is not ready at {url}/v2/models/m/ready after 1 s" in done.stderr


def test_an_existing_file_is_kept_unless_forced(toy: str, tmp_path: Path) -> None:
    out = tmp_path / "experiment.yaml"
    out.write_text("mine\n")
    done = init("--model-url", toy, "--model", "toy", "--dataset", str(TOY), "--out", str(out))
    assert done.returncode == 2 and "exists; choose another --out or pass --force" in done.stderr
    assert out.read_text() == "mine\n"
