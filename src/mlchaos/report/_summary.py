"""Journal → summary: every number recomputed from the journal's own records.

The spec, the observations, the fault windows and the outcome are read back from the journal;
per-arm statistics and every check are recomputed with the same functions the runner used, and a
check whose recomputed status differs from the one the runner recorded is flagged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlchaos.analysis import doubts, fault_window_mask, judge_hypothesis, sample_ratio_check
from mlchaos.arms import ArmCode
from mlchaos.errors import ConfigError
from mlchaos.journal import fault_reach, fault_windows, judged_horizon, judged_windows
from mlchaos.observations import ObservationStore

if TYPE_CHECKING:
    from mlchaos.spec import Experiment

__all__ = ["Summary", "summarize"]


@dataclass
class Summary:
    run_id: str
    title: str
    verdict: str
    exit_code: int | None
    abort_reason: str | None = None
    error: str | None = None
    recovered: bool | None = None
    recovery_seconds: float | None = None
    recovery_failing: list[str] = field(default_factory=list)  # probe: its last answer
    kill_switch_ms: float | None = None
    observations: int = 0
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    reach: list[dict[str, Any]] = field(default_factory=list)  # what each traffic fault hit
    # per arm: each cause of failure over the whole run, with its count and sample answers
    errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    staleness: list[dict[str, Any]] = field(default_factory=list)
    max_tolerable_staleness: float | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "title": self.title,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "abort_reason": self.abort_reason,
            "error": self.error,
            "recovered": self.recovered,
            "recovery_seconds": self.recovery_seconds,
            "recovery_failing": self.recovery_failing,
            "kill_switch_ms": self.kill_switch_ms,
            "observations": self.observations,
            "arms": self.arms,
            "comparison": self.comparison,
            "checks": self.checks,
            "faults": self.faults,
            "reach": self.reach,
            "errors": self.errors,
            "phases": self.phases,
            "mismatches": self.mismatches,
            "staleness": self.staleness,
            "max_tolerable_staleness": self.max_tolerable_staleness,
            "quality": self.quality,
            "alerts": self.alerts,
        }


def summarize(records: list[dict[str, Any]]) -> Summary:
    """Rebuild the summary of one run from its journal records."""
    from pydantic import ValidationError  # noqa: PLC0415

    from mlchaos import stats  # noqa: PLC0415
    from mlchaos.spec import Experiment  # noqa: PLC0415

    header = records[0]
    try:
        exp = Experiment.model_validate(header["spec"])
    except (KeyError, ValidationError) as exc:
        raise ConfigError(f"the journal's spec record is unreadable: {exc}") from None
    verdict = next((r for r in reversed(records) if r["kind"] == "verdict"), None)
    s = Summary(
        run_id=str(header.get("run_id", "?")),
        title=exp.title,
        verdict=verdict["verdict"] if verdict else "incomplete",
        exit_code=verdict.get("exit_code") if verdict else None,
    )
    if verdict is None:
        s.error = "the journal ends before a verdict (the runner was killed or is still running)"
    else:
        s.error = verdict.get("error")
        s.abort_reason = verdict.get("abort_reason")
        s.recovered = verdict.get("recovered")
        s.recovery_seconds = verdict.get("recovery_seconds")

    store = ObservationStore()
    recorded_checks: dict[str, dict[str, Any]] = {}
    for r in records:
        kind = r["kind"]
        if kind == "observations":
            store.extend_columns(r["columns"], r["models"], r.get("degradations"))
        elif kind == "fault":
            s.faults.append({k: v for k, v in r.items() if k != "kind"})
        elif kind == "phase" and r.get("event") == "end":
            s.phases.append({"phase": r["phase"], "ok": r.get("ok"), "seconds": r.get("seconds")})
        elif kind == "recovery":
            s.recovery_failing = list(r.get("failing") or [])
        elif kind == "kill_switch":
            s.kill_switch_ms = r.get("trip_to_removed_ms")
        elif kind == "check":
            recorded_checks[r["name"]] = {k: v for k, v in r.items() if k not in ("kind", "t")}
        elif kind == "alert":
            s.alerts.append({k: v for k, v in r.items() if k != "kind"})
    full = fault_windows(records, records[-1]["t"])
    horizon = judged_horizon(header, exp.traffic.timeout.seconds)
    traffic_end = next((float(r["t"]) for r in records if r["kind"] == "traffic"), None)
    windows = judged_windows(full, horizon, traffic_end)
    s.observations = len(store)
    reach = fault_reach(full, store)
    s.reach = [{**asdict(r), "never_fired": r.never_fired, "text": r.describe()} for r in reach]
    # (journals before schema 3 had no sample-ratio check: their verdicts are rebuilt as written)
    srm = sample_ratio_check(store, exp.traffic.arms) if horizon is not None else None

    conf = exp.analysis.confidence.fraction
    mask = None
    if exp.analysis.window == "faults" and windows:
        mask = fault_window_mask(store, windows, horizon)
    per_arm = {
        name: stats.arm_stats(
            store, code, mask=mask, confidence=conf, threshold=exp.analysis.threshold
        )
        for name, code in (("experiment", ArmCode.EXPERIMENT), ("control", ArmCode.CONTROL))
    }
    s.arms = {name: a.to_dict() for name, a in per_arm.items()}
    s.errors = _errors(store, next((r for r in records if r["kind"] == "traffic"), None))
    s.comparison = stats.compare(per_arm["experiment"], per_arm["control"]).to_dict()
    _staleness_curve(s, exp, store)
    s.quality = _quality(store, mask, conf)
    if verdict is not None and verdict.get("verdict") != "error":
        judged = judge_hypothesis(
            exp.metric_checks, store, windows, exp.analysis, doubts(reach, srm), horizon
        )
        for result in judged + ([] if srm is None else [srm]):
            s.checks.append(result.to_dict())
            was = recorded_checks.pop(result.name, {}).get("status")
            if was is not None and was != result.status.value:
                s.mismatches.append(
                    f"check '{result.name}': recorded {was}, recomputed {result.status.value}"
                )
        # PromQL and alert checks ask a live Prometheus: their recorded results stand.
        s.checks.extend(recorded_checks.values())
    return s


def _errors(
    store: ObservationStore, traffic: dict[str, Any] | None
) -> dict[str, list[dict[str, Any]]]:
    """Each arm's failures by cause over the whole run, with the sample answers the traffic
    kept for that cause (replay traffic keeps up to three per arm and cause)."""
    from mlchaos import stats  # noqa: PLC0415

    samples = (traffic or {}).get("samples") or {}
    arm = store.column("arm")
    out: dict[str, list[dict[str, Any]]] = {}
    for name, code in (("experiment", ArmCode.EXPERIMENT), ("control", ArmCode.CONTROL)):
        mine = arm == code
        causes = stats.error_causes(
            store.column("status")[mine], store.column("error")[mine], store.column("fault")[mine]
        )
        kept = samples.get(name) or {}
        out[name] = [
            {"cause": cause, "count": n, "samples": list(kept.get(cause) or [])}
            for cause, n in causes.items()
        ]
    return out


def _staleness_curve(s: Summary, exp: Experiment, store: ObservationStore) -> None:
    """Accuracy against the age of the features answers used, over every successful answer of
    the run (both arms, all of the time: the curve needs fresh answers too). With an absolute
    accuracy ``min`` in the hypothesis, the largest age at which accuracy still meets it."""
    import numpy as np  # noqa: PLC0415

    from mlchaos import stats  # noqa: PLC0415
    from mlchaos.spec import Metric  # noqa: PLC0415

    ages, label = store.column("feature_age"), store.column("label")
    if not (np.isfinite(ages).any() and np.isfinite(label).any()):
        return
    ok = ~stats.failed(store.column("status"), store.column("error"))
    points = stats.accuracy_by(
        ages[ok],
        store.column("prediction")[ok],
        label[ok],
        threshold=exp.analysis.threshold,
        confidence=exp.analysis.confidence.fraction,
    )
    s.staleness = [p.to_dict() for p in points]
    minimum = next(
        (
            c.min.value
            for c in exp.metric_checks
            if c.metric is Metric.ACCURACY and c.relative_to is None and c.min is not None
        ),
        None,
    )
    if minimum is not None:
        s.max_tolerable_staleness = stats.largest_holding(points, minimum)


def _quality(store: ObservationStore, mask: Any, confidence: float) -> dict[str, Any]:
    """AUC per arm and their difference (where labelled 0/1), and prediction drift of the
    experiment arm against control (PSI, KS), over the successful answers judged."""
    import numpy as np  # noqa: PLC0415

    from mlchaos import stats  # noqa: PLC0415

    ok = ~stats.failed(store.column("status"), store.column("error"))
    if mask is not None:
        ok &= mask
    arm, pred, label = store.column("arm"), store.column("prediction"), store.column("label")
    rows = {
        name: ok & (arm == code)
        for name, code in (("experiment", ArmCode.EXPERIMENT), ("control", ArmCode.CONTROL))
    }
    if not any(np.isfinite(pred[r]).any() for r in rows.values()):
        return {}
    out: dict[str, Any] = {
        "drift": {
            t.method: t.to_dict()
            for t in (
                stats.psi(pred[rows["control"]], pred[rows["experiment"]]),
                stats.ks(pred[rows["control"]], pred[rows["experiment"]]),
            )
        }
    }
    labelled = label[ok][np.isfinite(label[ok])]
    # AUC is for a binary outcome: a run labelled otherwise (classes, values) gets none.
    if labelled.size and np.isin(labelled, (0.0, 1.0)).all():
        e, c = rows["experiment"], rows["control"]
        out["auc"] = {
            name: stats.auc(pred[r], label[r], confidence).to_dict() for name, r in rows.items()
        }
        out["auc_difference"] = stats.auc_difference(
            pred[e], label[e], pred[c], label[c], confidence
        ).to_dict()
    return out
