"""A run over time, from its journal: per-arm metrics in time bins, the latency distribution,
and the events to mark on them (fault windows, guardrail changes, the abort, alerts).

Time is in seconds from the first request of the run's traffic. Everything here is data for
charts; drawing is ``_svg``'s and composing the page is ``_html``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlchaos.arms import ArmCode
from mlchaos.journal import fault_windows

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import numpy.typing as npt

    from mlchaos.observations import ObservationStore

__all__ = ["ARMS", "Events", "Timeline", "events", "latency_ecdf", "timeline"]

ARMS = (("experiment", ArmCode.EXPERIMENT), ("control", ArmCode.CONTROL))
_WIDTHS = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
_BINS = 40  # about this many bins over the run


@dataclass
class Timeline:
    """Bin centres (``x``) and, per metric, per arm, one value per bin (None: no requests)."""

    width: float
    x: list[float]
    majority: str | None  # the model most successful answers came from
    metrics: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)


@dataclass
class Events:
    """What happened when, in seconds from the first request."""

    faults: list[tuple[float, float, str]] = field(default_factory=list)  # (injected, removed)
    guardrails: list[tuple[float, str, str]] = field(default_factory=list)  # (t, status, text)
    abort: tuple[float, str] | None = None
    alerts: list[tuple[float, str]] = field(default_factory=list)

    def span(self) -> float:
        xs = [b for _, b, _ in self.faults] + [t for t, _, _ in self.guardrails]
        xs += [t for t, _ in self.alerts] + ([self.abort[0]] if self.abort else [])
        return max(xs, default=0.0)


def origin(records: Sequence[dict[str, Any]], store: ObservationStore) -> float:
    """Time zero of the charts: the first request, else the start of the inject phase."""
    if len(store):
        return float(store.column("start").min())
    for r in records:
        if r.get("kind") == "phase" and r.get("phase") == "inject":
            return float(r["t"])
    return float(records[0]["t"])


def events(records: Sequence[dict[str, Any]], t0: float) -> Events:
    ev = Events()
    for w in fault_windows(records, float(records[-1]["t"])):
        f = w.injected.get("fault") or {}
        arm = f" ({f['arm']} arm)" if f.get("arm") else ""
        label = f"{f.get('type', 'fault')} {w.injected.get('target', '')}{arm}"
        ev.faults.append((w.start - t0, w.end - t0, label))
    last: dict[str, str] = {}
    for r in records:
        kind, t = r.get("kind"), float(r.get("t", t0)) - t0
        if kind == "guardrail":
            name, status = str(r.get("name")), str(r.get("status"))
            before = last.get(name)
            last[name] = status
            if status == "no_data" or (status == "held" and before in (None, "no_data")):
                continue  # the start of watching, not a change worth a line
            ev.guardrails.append((t, status, f"guardrail '{name}' {status}: {r.get('detail')}"))
        elif kind == "abort":
            ev.abort = (t, f"abort: {r.get('reason')}")
        elif kind == "alert":
            for key, what in (("fired_at", "fired"), ("resolved_at", "resolved")):
                at = r.get(key)
                if isinstance(at, int | float) and not isinstance(at, bool):
                    ev.alerts.append((float(at) - t0, f"alert '{r.get('name')}' {what}"))
    return ev


def _bin_width(span: float, requests: int) -> float:
    """A round width giving about ``_BINS`` bins, fewer when requests are few (about 20 a bin),
    so that a sparse run still draws lines rather than scattered points."""
    raw = span / min(_BINS, max(8, requests // 20))
    return next((w for w in _WIDTHS if w >= raw), _WIDTHS[-1])


def _per_bin(
    values: npt.NDArray[Any], bins: npt.NDArray[Any], n: int
) -> list[npt.NDArray[np.float64]]:
    """``values`` grouped by bin, each group sorted."""
    import numpy as np  # noqa: PLC0415

    order = np.lexsort((values, bins))
    v, b = values[order], bins[order]
    edges = np.searchsorted(b, np.arange(n + 1))
    return [v[edges[i] : edges[i + 1]] for i in range(n)]


def timeline(store: ObservationStore, t0: float, span: float, threshold: float | None) -> Timeline:
    """Per arm and time bin: request rate, error rate, p99 latency, the share of successful
    answers from other models than the majority (the fallback), and accuracy where labelled."""
    import numpy as np  # noqa: PLC0415

    from mlchaos import stats  # noqa: PLC0415

    width = _bin_width(max(span, 1e-9), len(store))
    n = max(1, math.ceil(span / width))
    tl = Timeline(width, [width * (i + 0.5) for i in range(n)], None)
    if not len(store):
        return tl
    col = store.column
    bins = np.clip(((col("start") - t0) // width).astype(np.int64), 0, n - 1)
    failed = stats.failed(col("status"), col("error"))
    ok = ~failed
    latency = col("latency")
    answered = (col("error") == 0) & np.isfinite(latency)
    model = col("model").astype(np.int64)
    with_model = ok & (model >= 0)
    other = np.zeros_like(ok)
    if len(store.models) > 1 and with_model.any():
        code = int(np.bincount(model[with_model]).argmax())
        tl.majority = store.models[code]
        other = with_model & (model != code)
    pred, label = col("prediction"), col("label")
    scored = ok & np.isfinite(pred) & np.isfinite(label)
    right = stats.correct(pred, label, threshold) & scored

    # The last bin ends with the traffic: its rate is over the time it covers.
    last = float(col("start").max()) - t0
    covered = [max(min(width, last - width * i), width / 10) for i in range(n)]

    def ratio(num: npt.NDArray[Any], den: npt.NDArray[Any], scale: float) -> list[float | None]:
        pairs = zip(num, den, strict=True)
        return [None if d == 0 else scale * float(k) / float(d) for k, d in pairs]

    def count(rows: npt.NDArray[np.bool_]) -> npt.NDArray[Any]:
        return np.bincount(bins[rows], minlength=n)

    for name, code_ in ARMS:
        rows = col("arm") == int(code_)
        if not rows.any():
            continue
        requests = count(rows)
        put = tl.metrics.setdefault
        put("rate", {})[name] = [float(c) / d for c, d in zip(requests, covered, strict=True)]
        put("errors", {})[name] = ratio(count(rows & failed), requests, 100.0)
        groups = _per_bin(latency[rows & answered], bins[rows & answered], n)
        put("p99", {})[name] = [
            1000.0 * float(np.quantile(g, 0.99)) if g.size else None for g in groups
        ]
        if tl.majority is not None:
            put("fallback", {})[name] = ratio(count(rows & other), count(rows & with_model), 100.0)
        if scored.any():
            put("accuracy", {})[name] = ratio(count(rows & right), count(rows & scored), 100.0)
    return tl


def latency_ecdf(
    store: ObservationStore, mask: npt.NDArray[np.bool_] | None, points: int = 400
) -> dict[str, list[tuple[float, float]]]:
    """Per arm, the empirical distribution of answered requests' latency (ms) as up to
    ``points`` (latency, % at or below) pairs."""
    import numpy as np  # noqa: PLC0415

    if not len(store):
        return {}
    latency = store.column("latency")
    answered = (store.column("error") == 0) & np.isfinite(latency)
    if mask is not None:
        answered &= mask
    out = {}
    for name, code in ARMS:
        values = np.sort(latency[answered & (store.column("arm") == int(code))]) * 1000.0
        if not values.size:
            continue
        if values.size > points:
            idx = np.unique(np.linspace(0, values.size - 1, points).round().astype(np.int64))
        else:
            idx = np.arange(values.size)
        out[name] = [(float(values[i]), 100.0 * (i + 1) / values.size) for i in idx]
    return out
