"""JUnit XML for CI systems: each run a ``<testsuite>``, each hypothesis check a ``<testcase>``.

The document follows the Jenkins/Ant "junit-10" schema that CI systems read (Jenkins, GitLab,
GitHub Actions reporters): ``<testsuites>`` holding one ``<testsuite>`` per run, named after
the experiment. A check that is violated, unsure or has no data is a ``<failure>`` whose type is
its status and whose text gives its estimate, interval and bound. Each run also has a test case
for recovery and one for the kill switch: an aborted run fails it, with the abort's reason; a run
that could not run has an ``<error>``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlchaos.report._runs import RunJournal, check_text, point_label

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from xml.etree.ElementTree import Element

__all__ = ["render_junit"]

# Characters XML 1.0 cannot carry at all (control characters other than tab, newline, CR).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_junit(runs: Sequence[RunJournal], *, sweep: Mapping[str, Any] | None = None) -> str:
    """The runs as one JUnit XML document (``sweep`` only names the suites of a sweep)."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    root = ET.Element("testsuites", name="mlchaos")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    seconds = 0.0
    for run in runs:
        suite = _suite(run, sweep)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        seconds += float(suite.get("time", "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _time(seconds))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(run: RunJournal, sweep: Mapping[str, Any] | None) -> Element:
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    s = run.summary
    point = point_label(sweep, run.name) or run.name
    name = f"{s.title} [{point}]" if point else s.title
    suite = ET.Element(
        "testsuite",
        name=_text(name),
        timestamp=datetime.fromtimestamp(run.started, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        time=_time(run.ended - run.started),
        id=_text(s.run_id),
        package="mlchaos",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("run_id", s.run_id),
        ("verdict", s.verdict),
        ("exit_code", s.exit_code),
        ("abort_reason", s.abort_reason),
        ("kill_switch_ms", None if s.kill_switch_ms is None else f"{s.kill_switch_ms:.1f}"),
        ("recovery_seconds", s.recovery_seconds),
        ("observations", s.observations),
    ):
        if value is not None:
            ET.SubElement(props, "property", name=key, value=_text(str(value)))
    for r in s.reach:
        never = " (it never fired)" if r["never_fired"] else ""
        ET.SubElement(props, "property", name=f"fault_{r['index']}", value=_text(r["text"] + never))
    classname = _text(s.title)
    inject = next((p.get("seconds") for p in s.phases if p["phase"] == "inject"), None) or 0.0
    failures = errors = 0

    def case(name: str, seconds: float) -> Element:
        return ET.SubElement(
            suite, "testcase", classname=classname, name=_text(name), time=_time(seconds)
        )

    for check in map(check_text, s.checks):
        tc = case(check.name, inject)
        if check.failed:
            failures += 1
            message = f"{check.status}: {check.estimate()}; bound {check.bound}"
            failure = ET.SubElement(tc, "failure", message=_text(message), type=check.status)
            failure.text = _text(
                f"check: {check.name}\nstatus: {check.status}\nestimate: {check.value}\n"
                f"interval: {check.interval or '-'}\nn: {check.n or '-'}\nbound: {check.bound}\n"
                + (f"note: {check.note}\n" if check.note else "")
            )
    if s.verdict in ("error", "incomplete"):
        errors += 1
        tc = case("run", run.ended - run.started)
        err = ET.SubElement(tc, "error", message=_text(s.error or s.verdict), type=s.verdict)
        err.text = _text(s.error or "")
    else:
        tc = case("no abort (guardrails held)", inject)
        if s.verdict == "aborted":
            failures += 1
            reason = s.abort_reason or "aborted"
            failure = ET.SubElement(tc, "failure", message=_text(reason), type="aborted")
            removed = (
                ""
                if s.kill_switch_ms is None
                else f"\nkill switch: faults removed {s.kill_switch_ms:.1f} ms after the trip"
            )
            failure.text = _text(f"the run was aborted: {reason}{removed}")
        tc = case("recovery", s.recovery_seconds or 0.0)
        if s.recovered is False:
            failures += 1
            failure = ET.SubElement(
                tc,
                "failure",
                message="the steady state did not return within the recovery deadline",
                type="not_recovered",
            )
            failure.text = _text("\n".join(s.recovery_failing))
        elif s.recovered is None:
            ET.SubElement(tc, "skipped", message="the run did not reach recovery")
    causes = [
        f"{arm}: {e['cause']}: {e['count']} requests"
        + "".join(f"\n    sample: {x}" for x in e["samples"])
        for arm, errors in s.errors.items()
        for e in errors
    ]
    if causes:
        log = ET.SubElement(suite, "system-out")
        log.text = _text("errors by cause (whole run):\n" + "\n".join(causes))
    if s.mismatches:
        out = ET.SubElement(suite, "system-err")
        out.text = _text("\n".join(f"journal mismatch: {m}" for m in s.mismatches))
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(len(suite.findall("testcase/skipped"))))
    return suite


def _time(seconds: float) -> str:
    """Seconds as the schema's SUREFIRE_TIME: digits, at most three decimals, never negative."""
    return f"{max(seconds, 0.0):.3f}"


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)
