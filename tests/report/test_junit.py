"""JUnit XML: valid against Jenkins' junit-10 schema; checks, the abort and recovery as tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from mlchaos.report import RunJournal, read_runs, render_junit
from tests.report.conftest import HOSTILE_GUARDRAIL, HOSTILE_TITLE

SCHEMA = Path(__file__).with_name("junit-10.xsd")


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(SCHEMA)


def junit(path: Path) -> str:
    runs, sweep = read_runs(path)
    return render_junit(runs, sweep=sweep)


def cases(doc: str) -> dict[str, ET.Element]:
    return {tc.attrib["name"]: tc for tc in ET.fromstring(doc).iter("testcase")}


@pytest.mark.parametrize("name", ["held", "failed", "aborted", "sweep"])
def test_every_kind_of_run_validates_against_the_jenkins_schema(
    name: str, real_runs: dict[str, Path], schema: xmlschema.XMLSchema
) -> None:
    doc = junit(real_runs[name])
    schema.validate(doc)
    root = ET.fromstring(doc)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == (2 if name == "sweep" else 1)  # one suite per run
    for suite in suites:
        assert int(suite.attrib["tests"]) == len(suite.findall("testcase"))
        assert int(suite.attrib["failures"]) == len(suite.findall("testcase/failure"))


def test_a_held_run_passes_every_case_named_after_its_checks(real_runs: dict[str, Path]) -> None:
    doc = junit(real_runs["held"])
    suite = ET.fromstring(doc).find("testsuite")
    assert suite is not None
    assert suite.attrib["name"] == "Aborted model calls stay in the experiment arm"
    assert suite.attrib["failures"] == "0" and suite.attrib["errors"] == "0"
    names = list(cases(doc))
    assert names == [
        "control arm untouched",
        "experiment error increase bounded",
        "experiment p99 latency",
        "arms got their configured split",
        "no abort (guardrails held)",
        "recovery",
    ]
    for tc in cases(doc).values():
        assert tc.attrib["classname"] == suite.attrib["name"]
        assert float(tc.attrib["time"]) >= 0


def test_a_violated_check_is_a_failure_with_its_value_interval_and_bound(
    real_runs: dict[str, Path],
) -> None:
    tc = cases(junit(real_runs["failed"]))["experiment error increase at most 10 points"]
    failure = tc.find("failure")
    assert failure is not None
    assert failure.attrib["type"] == "violated"
    assert "bound <= 10%" in failure.attrib["message"]
    text = failure.text or ""
    for line in ("status: violated", "estimate: +", "interval: [+", "bound: <= 10%"):
        assert line in text


def test_a_kill_switch_abort_fails_the_run_with_its_reason_and_timing(
    real_runs: dict[str, Path],
) -> None:
    doc = junit(real_runs["aborted"])
    suite = ET.fromstring(doc).find("testsuite")
    assert suite is not None
    assert suite.attrib["name"] == HOSTILE_TITLE  # escaped in the XML, intact when read back
    failure = cases(doc)["no abort (guardrails held)"].find("failure")
    assert failure is not None
    assert failure.attrib["type"] == "aborted"
    assert HOSTILE_GUARDRAIL in failure.attrib["message"]
    assert "kill switch: faults removed" in (failure.text or "")
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props["verdict"] == "aborted" and float(props["kill_switch_ms"]) >= 0


def test_a_run_that_could_not_run_or_never_finished_is_an_error(
    real_runs: dict[str, Path], schema: xmlschema.XMLSchema
) -> None:
    (held,), _ = read_runs(real_runs["held"])
    header = held.records[0]
    could_not = [
        header,
        {
            "t": header["t"] + 1,
            "kind": "verdict",
            "verdict": "error",
            "exit_code": 3,
            "error": "preflight: target unreachable",
        },
    ]
    unfinished = held.records[: len(held.records) // 2]
    doc = render_junit([RunJournal.from_records(could_not), RunJournal.from_records(unfinished)])
    schema.validate(doc)
    errors = [tc.find("error") for tc in ET.fromstring(doc).iter("testcase")]
    kinds = [e.attrib["type"] for e in errors if e is not None]
    assert kinds == ["error", "incomplete"]
    assert "preflight: target unreachable" in doc


def test_characters_xml_cannot_carry_are_replaced(
    real_runs: dict[str, Path], schema: xmlschema.XMLSchema
) -> None:
    (held,), _ = read_runs(real_runs["held"])
    records = [dict(r) for r in held.records]
    records[0] = {**records[0], "spec": {**records[0]["spec"], "title": "bell\x07 and nul\x00"}}
    doc = render_junit([RunJournal.from_records(records)])
    schema.validate(doc)
    suite = ET.fromstring(doc).find("testsuite")
    assert suite is not None and suite.attrib["name"] == "bell\ufffd and nul\ufffd"
