"""The demo's models: primary beats fallback beats constant, and stale features hurt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlchaos.demo._logistic import LinearModel, ModelFileError
from mlchaos.demo._models import staleness_accuracy, train_models


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    out = tmp_path_factory.mktemp("models")
    return out, train_models(7, out)


def test_training_writes_both_model_files(trained: tuple[Path, dict[str, float]]) -> None:
    out, _ = trained
    primary = json.loads((out / "primary.json").read_text())
    fallback = json.loads((out / "fallback.json").read_text())
    assert primary["features"] == ["x1", "x2", "f1", "f2", "f3"]
    assert fallback["features"] == ["x1", "x2"]
    for doc in (primary, fallback):
        assert doc["version"] == "1"
        assert len(doc["weights"]) == len(doc["features"])
        assert set(doc["defaults"]) == {"f1", "f2", "f3"}


def test_primary_clearly_beats_fallback_which_clearly_beats_constant(
    trained: tuple[Path, dict[str, float]],
) -> None:
    _, acc = trained
    assert 0.85 <= acc["primary"] <= 0.92
    assert acc["primary"] - acc["fallback"] >= 0.10
    assert acc["fallback"] - acc["constant"] >= 0.10


def test_training_is_deterministic_from_the_seed(
    trained: tuple[Path, dict[str, float]], tmp_path: Path
) -> None:
    out, acc = trained
    assert train_models(7, tmp_path) == acc
    assert (tmp_path / "primary.json").read_text() == (out / "primary.json").read_text()


def test_stale_features_lower_the_primary_models_accuracy(
    trained: tuple[Path, dict[str, float]],
) -> None:
    out, acc = trained
    stale = staleness_accuracy(LinearModel.load(out / "primary.json"), 7)
    assert stale[0.0] == acc["primary"]
    assert stale[0.0] > stale[5.0] > stale[10.0] > stale[30.0]
    assert stale[0.0] - stale[10.0] >= 0.05
    assert stale[0.0] - stale[30.0] >= 0.20


def test_a_model_file_round_trips_and_its_prediction_is_logistic(tmp_path: Path) -> None:
    model = LinearModel("m", ("a", "b"), (1.0, -2.0), 0.5, {"a": 0.1})
    loaded = LinearModel.load(model.save(tmp_path / "m.json"))
    assert loaded == model
    assert loaded.predict([0.0, 0.25]) == (1, 0.5)
    label, p = loaded.predict([-10.0, 0.0])
    assert label == 0 and 0 < p < 1e-4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{", "not valid JSON"),
        ('{"name": "m", "features": ["a"], "weights": [], "bias": 0}', "1 features but 0"),
        ('{"name": "m", "features": ["a"], "weights": ["x"], "bias": 0}', "finite numbers"),
    ],
)
def test_a_bad_model_file_is_a_config_error_naming_it(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "primary.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ModelFileError, match=message):
        LinearModel.load(path)


def test_the_accuracy_command_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mlchaos.demo", "accuracy", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("primary") for line in lines)
    assert any(line.startswith("constant") for line in lines)
    assert any("30 s stale" in line for line in lines)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["gateway", "--variant", "clever", "--replica", "http://x", "--store", "http://y"],
        ["store", "--db", "x.db", "--port", "70000"],
        ["pipeline", "--store", "http://x", "--interval", "0"],
    ],
)
def test_bad_options_are_one_line_and_exit_2(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mlchaos.demo", *argv], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "error:" in done.stderr
