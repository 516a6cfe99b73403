"""Blast-radius caps: an experiment over its environment's caps is refused, naming each cap."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mlchaos.errors import ConfigError, SpecError
from mlchaos.safety import SiteConfig, cap_violations, fault_targets, is_loopback, load_site
from mlchaos.spec import Experiment


def experiment(**changes: Any) -> Experiment:
    data: dict[str, Any] = {
        "title": "t",
        "proxies": [
            {"name": "a", "connect": {"url": "http://127.0.0.1:9001", "token_file": "/t"}},
            {"name": "b", "connect": {"url": "http://127.0.0.1:9002", "token_file": "/t"}},
        ],
        "traffic": {
            "target": "http://127.0.0.1:8000",
            "dataset": "d.csv",
            "rate": "10/s",
            "duration": "10s",
            "request": {"protocol": "v2", "model": "m"},
            "arms": {"experiment": "5%", "control": "5%"},
        },
        "faults": [{"type": "abort", "target": "a"}],
        "hypothesis": [{"metric": "error_rate", "max": "5%"}],
    }
    for key, value in changes.items():
        if key == "traffic":
            data["traffic"] = {**data["traffic"], **value}
        else:
            data[key] = value
    return Experiment.model_validate(data)


def violations(exp: Experiment, site: SiteConfig | None = None) -> list[str]:
    site = site or SiteConfig()
    profile = site.profile(exp.environment)
    assert profile is not None
    return cap_violations(exp, exp.environment, profile)


def test_within_the_caps_nothing_is_refused() -> None:
    assert violations(experiment(environment="staging")) == []
    assert violations(experiment()) == []  # sandbox: every address on loopback


def test_each_cap_passed_is_named_with_the_value_and_the_limit() -> None:
    exp = experiment(
        environment="staging",
        traffic={"arms": {"experiment": "50%", "control": "50%"}, "duration": "20m"},
        faults=[{"type": "abort", "target": "a"}, {"type": "abort", "target": "b"}],
    )
    found = violations(exp)
    assert len(found) == 3
    share, targets, duration = found
    assert share.startswith("max_experiment_share: the experiment arm is 50%")
    assert "over the 5% allowed in staging" in share
    assert targets.startswith("max_targets: the faults affect 2 targets")
    assert "proxy http://127.0.0.1:9001" in targets
    assert duration.startswith(
        "max_duration: the traffic lasts 1200s, over the 15m allowed in staging"
    )


def test_the_same_proxy_faulted_twice_is_one_target() -> None:
    exp = experiment(faults=[{"type": "abort", "target": "a"}, {"type": "reset", "target": "a"}])
    assert fault_targets(exp) == ["proxy http://127.0.0.1:9001"]


def test_the_sandbox_refuses_an_address_off_this_machine() -> None:
    exp = experiment(traffic={"target": "http://10.0.0.8:8000"})
    (found,) = violations(exp)
    assert found.startswith("loopback_only: sandbox is for services on this machine")
    assert "10.0.0.8" in found
    assert [is_loopback(h) for h in ("127.0.0.2", "::1", "localhost", "example.com")] == [
        True,
        True,
        True,
        False,
    ]


def test_the_sandbox_takes_an_address_of_a_network_namespace_on_this_machine(
    needs_netns: None,
) -> None:
    """Isolation mode: a service in a namespace of its own is on this machine all the same."""
    namespace = "mlchaos-test-caps"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(
            ["ip", "-n", namespace, "addr", "add", "10.213.255.7/32", "dev", "lo"], check=True
        )
        held = subprocess.Popen(["ip", "netns", "exec", namespace, "sleep", "30"])
        try:
            time.sleep(0.2)  # exec'd into the namespace
            exp = experiment(traffic={"target": "http://10.213.255.7:8000"})
            assert violations(exp) == []
        finally:
            held.kill()
            held.wait()
        (found,) = violations(exp)  # no process in it any more: nothing shows it is here
        assert "10.213.255.7 is not on loopback or in a network namespace" in found
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=True)


def test_a_site_file_replaces_a_profile_and_may_add_one(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "profiles:\n  staging: {max_experiment_share: 60%, max_targets: 2}\n  lab: {}\n"
    )
    site, found = load_site(path)
    assert found == path
    wide = experiment(
        environment="staging",
        traffic={"arms": {"experiment": "50%", "control": "50%"}},
        faults=[{"type": "abort", "target": "a"}, {"type": "abort", "target": "b"}],
    )
    assert violations(wide, site) == []
    lab = site.profile("lab")
    assert lab is not None and lab.max_experiment_share.fraction == 0.05  # strict defaults
    production = site.profile("production")
    assert production is not None and production.require_confirmation  # still built in


def test_a_bad_site_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("profiles:\n  staging:\n    max_experiment_shar: 10%\n")
    with pytest.raises(SpecError, match=r"site.yaml:3:.*did you mean .max_experiment_share"):
        load_site(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_site(tmp_path / "missing.yaml")


def test_without_a_file_the_environment_variable_names_the_site_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLCHAOS_SITE_CONFIG", raising=False)
    assert load_site(None)[1] in (None, Path("/etc/mlchaos/site.yaml"))
    path = tmp_path / "site.yaml"
    path.write_text("profiles: {}\n")
    monkeypatch.setenv("MLCHAOS_SITE_CONFIG", str(path))
    assert load_site(None)[1] == path
