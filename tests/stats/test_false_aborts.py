"""The false-abort simulation of benchmarks/false_aborts.py, reduced: every guardrail mlchaos
checks every tick keeps a harmless run's abort rate within alpha plus two Monte-Carlo standard
errors (the benchmark prints the same with 1000 runs a scenario)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.conftest import ROOT


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "false_aborts", ROOT / "benchmarks" / "false_aborts.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["false_aborts"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_every_guardrail_keeps_alpha_on_harmless_runs_where_a_peeked_interval_does_not() -> None:
    outcomes = list(_benchmark().scenarios(runs=60, seed=7))
    assert len(outcomes) == 18
    for o in outcomes:
        assert o.within, (o.name, o.sequential)
    naive = [o.naive for o in outcomes if "clustered, 5 keys" not in o.name and "500" not in o.name]
    assert min(naive) > 0.05, "the fixed-sample interval peeked at every tick is not valid"
