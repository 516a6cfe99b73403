"""Render a summary for the terminal with rich."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from mlchaos.report._summary import Summary

__all__ = ["render_terminal"]

_VERDICT_STYLE = {"held": "bold green", "failed": "bold red", "aborted": "bold red"}


def render_terminal(s: Summary, console: Console) -> None:
    from rich.markup import escape as markup_escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    style = _VERDICT_STYLE.get(s.verdict, "bold yellow")
    console.print(f"\n[bold]{s.title}[/]  run {s.run_id}")
    console.print(f"verdict: [{style}]{s.verdict.upper()}[/]")
    if s.abort_reason:
        console.print(f"aborted: {s.abort_reason}")
    if s.error:
        console.print(f"error: {s.error}")

    arms = Table(title="per arm (judged window)", title_justify="left")
    for col in ("arm", "requests", "error rate [CI]", "p50", "p99 [CI]", "accuracy [CI]", "models"):
        arms.add_column(col, justify="left" if col in ("arm", "models") else "right")
    for name, a in s.arms.items():
        lat = a.get("latency", {})
        keys = a.get("keys") or 0
        arms.add_row(
            name,
            f"{a.get('requests', 0)} ({keys} keys)" if keys else str(a.get("requests", 0)),
            _pct(a.get("errors")),
            _ms(lat.get("p50"), interval=False),
            _ms(lat.get("p99")),
            _pct(a.get("accuracy")),
            ", ".join(
                f"{m} {100 * e['value']:.0f}%"
                for m, e in (a.get("model_share") or {}).items()
                if e and e.get("value") is not None  # None: the arm had no successful response
            ),
        )
    console.print(arms)
    _errors_table(s, console)
    _degradation_table(s, console)
    _staleness_table(s, console)
    _quality_lines(s, console)

    checks = Table(title="hypothesis", title_justify="left")
    for col in ("check", "status", "estimate [CI]", "bound"):
        checks.add_column(col)
    for c in s.checks:
        st = c["status"]
        colour = {"held": "green", "violated": "red"}.get(st, "yellow")
        checks.add_row(c["name"], f"[{colour}]{st}[/]", c["detail"].split(" n=")[0], c["bounds"])
    if s.checks:
        console.print(checks)
    if s.recovered is not None:
        rec = f"{s.recovery_seconds:.2f}s" if s.recovery_seconds is not None else "-"
        console.print(f"recovery: {'yes' if s.recovered else '[red]no[/]'} (time to recover {rec})")
        for failing in s.recovery_failing:
            console.print(f"  [red]did not hold:[/] {markup_escape(failing)}")
    if s.kill_switch_ms is not None:
        console.print(f"kill switch: faults removed {s.kill_switch_ms:.0f}ms after the trip")
    for r in s.reach:
        never = " [bold yellow]— it never fired[/]" if r["never_fired"] else ""
        console.print(f"fault {markup_escape(r['text'])}{never}")
    for m in s.mismatches:
        console.print(f"[red]journal mismatch:[/] {m}")


def _errors_table(s: Summary, console: Console) -> None:
    """Each arm's failures by cause, with the first sample answer (printed when any failed)."""
    from rich.markup import escape as markup_escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    rows = [(arm, e) for arm, causes in s.errors.items() for e in causes]
    if not rows:
        return
    table = Table(title="errors by cause (whole run)", title_justify="left")
    for col in ("arm", "cause", "requests", "sample answer"):
        table.add_column(col)
    for arm, e in rows:
        sample = e["samples"][0] if e["samples"] else "-"
        short = sample if len(sample) <= 80 else sample[:79] + "…"
        table.add_row(arm, e["cause"], str(e["count"]), markup_escape(short))
    console.print(table)


def _degradation_table(s: Summary, console: Console) -> None:
    """Silent degradation (2xx answers on degraded inputs or models) and feature age, per arm;
    printed only when the run extracted them."""
    from rich.table import Table  # noqa: PLC0415

    arms = {n: a for n, a in s.arms.items() if a.get("silent") or a.get("feature_age")}
    if not arms:
        return
    kinds = sorted({k for a in arms.values() for k in a.get("degraded") or {}})
    table = Table(
        title="silent degradation (successful answers) and feature age", title_justify="left"
    )
    for col in ("arm", "degraded [CI]", *kinds, "feature age p50", "p99 [CI]"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for name, a in arms.items():
        age = a.get("feature_age") or {}
        table.add_row(
            name,
            _pct(a.get("silent")),
            *(_pct((a.get("degraded") or {}).get(k)) for k in kinds),
            _seconds(age.get("p50"), interval=False),
            _seconds(age.get("p99")),
        )
    console.print(table)


def _quality_lines(s: Summary, console: Console) -> None:
    q = s.quality
    if "auc" in q:
        auc = q["auc"]
        console.print(
            f"AUC: experiment {_num(auc['experiment'])}, control {_num(auc['control'])}; "
            f"difference {_num(q['auc_difference'])}"
        )
    for test in (q.get("drift") or {}).values():
        if test.get("statistic") is None:
            continue
        verdict = "[red]drift[/]" if test["drift"] else "no drift"
        console.print(
            f"prediction drift (experiment vs control), {test['method'].upper()}: "
            f"{test['statistic']:.4f} (threshold {test['threshold']:.4f}, "
            f"p = {test['p_value']:.3g}): {verdict}"
        )


def _num(e: dict[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "-"
    lo, hi = e.get("low"), e.get("high")
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{e['value']:.3f}{ci}"


def _staleness_table(s: Summary, console: Console) -> None:
    from rich.table import Table  # noqa: PLC0415

    if not s.staleness:
        return
    table = Table(title="accuracy vs feature age (every successful answer)", title_justify="left")
    for col in ("feature age", "answers", "accuracy [CI]"):
        table.add_column(col, justify="right")
    for point in s.staleness:
        high = point["high"]
        age = f"{point['low']:g}-{high:g}s" if high is not None else f">= {point['low']:g}s"
        table.add_row(age, str(point["estimate"]["n"]), _pct(point["estimate"]))
    console.print(table)
    if s.max_tolerable_staleness is not None:
        console.print(
            f"maximum tolerable staleness: {s.max_tolerable_staleness:g}s "
            "(accuracy's interval meets the hypothesis' minimum up to this age)"
        )


def _pct(e: dict[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "-"
    lo, hi = e.get("low"), e.get("high")
    ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None and hi is not None else ""
    return f"{100 * e['value']:.1f}%{ci}"


def _seconds(e: dict[str, Any] | None, *, interval: bool = True) -> str:
    if not e or e.get("value") is None:
        return "-"
    lo, hi = e.get("low"), e.get("high")
    ci = f" [{lo:.1f}, {hi:.1f}]" if interval and lo is not None and hi is not None else ""
    return f"{e['value']:.1f}s{ci}"


def _ms(e: dict[str, Any] | None, *, interval: bool = True) -> str:
    if not e or e.get("value") is None:
        return "-"
    text = f"{1000 * e['value']:.1f}ms"
    lo, hi = e.get("low"), e.get("high")
    if interval and lo is not None and hi is not None:
        text += f" [{1000 * lo:.1f}, {1000 * hi:.1f}]"
    return text
