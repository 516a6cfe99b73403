"""``mlchaos demo``: start the demo service, run the canonical experiments, summarise, stop.

``run_demo`` runs each bundled experiment against a fresh :class:`DemoStack` (so one
experiment's crash or cache cannot leak into the next), writes every journal and summary under
the output directory and a ``summary.json`` for the whole demo, prints one table, and returns 0
only when every experiment ended as expected: held, or — for the one that shows the kill
switch at work — aborted. ``serve_demo`` (``mlchaos demo up``) starts the stack and keeps
it running, printing the variables that the experiment files need.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlchaos.demo._isolation import isolation_unsupported
from mlchaos.demo._prometheus import alertmanager_binary
from mlchaos.demo._stack import DemoStack, FeatureStore, Variant
from mlchaos.errors import EXIT_FAILED, EXIT_OK, ConfigError
from mlchaos.units import Duration

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rich.console import Console

    from mlchaos.console import SweepOutcome
    from mlchaos.report import Summary
    from mlchaos.spec import Experiment

__all__ = ["EXPERIMENTS", "experiment_path", "load_demo_experiment", "run_demo", "serve_demo"]

EXPERIMENTS = (
    "endpoint-failover",
    "fallback-activation",
    "replica-crash",
    "feature-store-outage",
    "feature-missing",
    "pipeline-delay",
    "replica-cpu-starvation",
    "replica-memory-exhaustion",
    "gpu-memory-exhaustion",
    "feature-store-partition",
    "replica-partition",
    "replica-partition-loud",
    "staleness-sweep",
    "live-harmless",
    "live-kill-switch",
    "alert-validation",
)
# Experiments that need the HTTP feature store (a data fault on its Feast answers).
_HTTP_STORE_ONLY = frozenset({"feature-missing"})
# Experiments on live traffic: the client simulator calls the gateway through an edge proxy.
_LIVE = frozenset({"live-harmless", "live-kill-switch"})
# Experiments that validate alerts: they need Debian's prometheus, and are skipped without it.
_ALERTING = frozenset({"alert-validation"})
# Without prometheus-alertmanager these stand in for its addresses while the experiment loads;
# the notify checks that use them are then removed (and the demo says so).
_NO_ALERTMANAGER = {
    "MLCHAOS_DEMO_ALERTMANAGER": "http://127.0.0.1:9",
    "MLCHAOS_DEMO_WEBHOOK": "127.0.0.1:9",
}
# Experiments whose fault is a cgroup (the agent needs root and the controller).
_CGROUPS = frozenset({"replica-cpu-starvation", "replica-memory-exhaustion"})
# Experiments on a GPU (replica A's workspace is device memory): skipped on hosts without one,
# where replica-memory-exhaustion tests the same hypothesis on host memory.
_GPU = frozenset({"gpu-memory-exhaustion"})
# Experiments that cut the network between services: isolation mode (root, namespaces).
_ISOLATED = frozenset({"feature-store-partition", "replica-partition", "replica-partition-loud"})
LIVE_RATE = 120.0  # the simulated users' calls per second (more saturates 2 cores)
# How an experiment is meant to end when the service behaves: held, unless it shows a safety
# mechanism at work (the kill switch stopping a harmful fault).
_EXPECTED = {"live-kill-switch": "aborted"}
_EXIT_INTERRUPTED = 130


def cgroups_unsupported() -> str | None:
    """Why this host cannot run the CPU-quota experiments (None: it can)."""
    from mlchaos.agent._cgroup import Limits, unsupported  # noqa: PLC0415

    return unsupported(Limits(cpu=0.1, memory=2**20))


def gpu_unsupported() -> str | None:
    """Why this host cannot run the GPU experiments (None: it can)."""
    from mlchaos.agent._gpu import unsupported  # noqa: PLC0415

    return unsupported()


def experiment_path(name: str) -> Path:
    """The bundled experiment file of that name (it may not exist)."""
    return Path(__file__).resolve().parent / "experiments" / f"{name}.yaml"


def load_demo_experiment(
    name: str, variables: Mapping[str, str], *, duration: float | None = None
) -> Experiment:
    """Load a bundled experiment; ``duration`` shortens its traffic, scaling the fault schedule
    (not a sweep's: the lengths it varies are what it measures)."""
    from mlchaos.spec import KillFault, load_experiment  # noqa: PLC0415

    absent = {k: v for k, v in _NO_ALERTMANAGER.items() if k not in variables}
    exp = load_experiment(experiment_path(name), variables={**variables, **absent})
    if absent and exp.alerts is not None:  # no Alertmanager runs: no notify checks
        expect = [e.model_copy(update={"notify": None}) for e in exp.alerts.expect]
        alerts = exp.alerts.model_copy(
            update={"expect": expect, "alertmanager": None, "webhook": None}
        )
        exp = exp.model_copy(update={"alerts": alerts})
    if duration is None or exp.sweep is not None:  # a sweep's lengths are what it measures
        return exp
    factor = duration / exp.traffic.duration.seconds
    faults = []
    for f in exp.faults:
        update: dict[str, Any] = {"start": Duration(f.start.seconds * factor)}
        if not isinstance(f, KillFault) and f.duration is not None:
            update["duration"] = Duration(f.duration.seconds * factor)
        faults.append(f.model_copy(update=update))
    traffic = exp.traffic.model_copy(update={"duration": Duration(duration)})
    return exp.model_copy(update={"traffic": traffic, "faults": faults})


@dataclass(frozen=True)
class _Row:
    name: str
    verdict: str
    summary: Summary | None
    error: str | None = None
    sweep: SweepOutcome | None = None

    @property
    def expected(self) -> str:
        return _EXPECTED.get(self.name, "held")


async def run_demo(
    out_dir: Path,
    console: Console,
    *,
    variant: Variant = "resilient",
    feature_store: FeatureStore = "sqlite",
    names: Sequence[str] = EXPERIMENTS,
    duration: float | None = None,
    quiet: bool = False,
) -> int:
    """Run the named experiments, each on a fresh demo service; 0 when every hypothesis held."""
    from mlchaos.console import execute, execute_sweep  # noqa: PLC0415

    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ConfigError(
            f"no demo experiment named {', '.join(map(repr, unknown))} "
            f"(there are: {', '.join(EXPERIMENTS)})"
        )
    if duration is not None and not duration >= 1:
        raise ConfigError(f"--duration must be at least 1 second, got {duration:g}")
    await asyncio.to_thread(_clear_previous, out_dir, names)
    rows: list[_Row] = []
    if feature_store == "redis":  # no HTTP answers to rewrite
        skipped = [n for n in names if n in _HTTP_STORE_ONLY]
        for name in skipped:
            console.print(
                f"[yellow]skipping {name}: it rewrites the HTTP feature store's answers[/]"
            )
        names = [n for n in names if n not in _HTTP_STORE_ONLY]
    why_not_isolated = isolation_unsupported()
    if feature_store != "sqlite":
        why_not_isolated = "isolation mode runs the built-in feature store"
    if why_not_isolated is not None:
        for name in [n for n in names if n in _ISOLATED]:
            console.print(f"[yellow]skipping {name}: {why_not_isolated}[/]")
        names = [n for n in names if n not in _ISOLATED]
    if shutil.which("prometheus") is None:
        for name in [n for n in names if n in _ALERTING]:
            console.print(
                f"[yellow]skipping {name}: prometheus is not installed "
                "(apt-get install prometheus)[/]"
            )
        names = [n for n in names if n not in _ALERTING]
    elif alertmanager_binary() is None:
        for name in [n for n in names if n in _ALERTING]:
            console.print(
                f"[yellow]{name}: prometheus-alertmanager is not installed, so its notify "
                "checks are left out (apt-get install prometheus-alertmanager)[/]"
            )
    why = cgroups_unsupported()
    if why is not None:
        for name in [n for n in names if n in _CGROUPS]:
            console.print(f"[yellow]skipping {name}: {why}[/]")
        names = [n for n in names if n not in _CGROUPS]
    why = gpu_unsupported() if any(n in _GPU for n in names) else None
    if why is not None:
        for name in [n for n in names if n in _GPU]:
            console.print(
                f"[yellow]skipping {name}: {why}; replica-memory-exhaustion tests the same "
                "hypothesis on host memory[/]"
            )
        names = [n for n in names if n not in _GPU]
    try:
        for name in names:
            console.rule(f"[bold]{name}[/] ({variant} gateway, {feature_store} feature store)")
            stack_dir = out_dir / "service" / name
            clients = LIVE_RATE if name in _LIVE else None
            async with DemoStack(
                stack_dir,
                variant=variant,
                feature_store=feature_store,
                clients=clients,
                prometheus=name in _ALERTING,
                isolation=name in _ISOLATED,
                gpu=name in _GPU,
            ) as stack:
                console.print(f"demo service up: {len(stack.describe())} processes")
                exp = load_demo_experiment(name, stack.variables, duration=duration)
                base_dir, exp_out = experiment_path(name).parent, out_dir / name
                if exp.sweep is not None:
                    swept = await execute_sweep(
                        exp, base_dir=base_dir, out_dir=exp_out, console=console, quiet=quiet
                    )
                    rows.append(_Row(name, swept.verdict, None, sweep=swept))
                    interrupted = swept.interrupted
                else:
                    done = await execute(
                        exp,
                        base_dir=base_dir,
                        out_dir=exp_out,
                        console=console,
                        quiet=quiet,
                        formats=("html",),
                    )
                    rows.append(_Row(name, done.outcome.verdict, done.summary, done.outcome.error))
                    interrupted = done.interrupted
            if exp.sweep is not None:  # one report for the whole sweep, every run in it
                await asyncio.to_thread(_write_sweep_report, exp_out, console)
            if interrupted:
                console.print("[yellow]interrupted: the demo service is stopped[/]")
                return _EXIT_INTERRUPTED
    except asyncio.CancelledError:  # interrupted outside an experiment: everything is stopped
        console.print("[yellow]interrupted: the demo service is stopped[/]")
        return _EXIT_INTERRUPTED
    finally:
        _write_summary(out_dir, variant, feature_store, rows)
    _print_table(console, variant, feature_store, rows)
    failed = [r for r in rows if r.verdict != r.expected]
    for r in failed:
        console.print(f"[bold red]{r.name}: {r.verdict}[/]")
        if r.error:
            console.print(f"  error: {r.error}")
        for check in [] if r.summary is None else r.summary.checks:
            if check["status"] != "held":
                console.print(f"  [red]✗[/] {check['name']}: {check['status']} ({_value(check)})")
        if r.sweep is not None:
            _print_sweep_failures(console, r.sweep)
    console.print(f"reports: {out_dir}")
    return EXIT_OK if not failed else EXIT_FAILED


async def serve_demo(
    run_dir: Path,
    console: Console,
    *,
    variant: Variant = "resilient",
    feature_store: FeatureStore = "sqlite",
) -> int:
    """Start the demo service and keep it running until SIGINT or SIGTERM."""
    import signal  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with DemoStack(
            run_dir, variant=variant, feature_store=feature_store, clients=LIVE_RATE
        ) as stack:
            for service in stack.describe():
                console.print(f"{service['name']:>16}  {service['url']}")
            console.print("\n# in another shell, to run the bundled experiments against it:")
            for key, value in stack.variables.items():
                console.print(f"export {key}={value}", highlight=False, soft_wrap=True)
            console.print("# then: mlchaos run endpoint-failover   (Ctrl-C here stops the demo)")
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return EXIT_OK


def _arm(summary: Summary | None, arm: str) -> dict[str, Any]:
    return {} if summary is None else summary.arms.get(arm, {})


def _pct(estimate: dict[str, Any] | None) -> str:
    if not estimate or estimate.get("value") is None:
        return "-"
    return f"{estimate['value'] * 100:.1f}%"


def _print_table(console: Console, variant: str, feature_store: str, rows: list[_Row]) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"mlchaos demo — {variant} gateway, {feature_store} feature store")
    columns = ("experiment", "verdict", "arm", "errors", "p99", "accuracy", "fallback", "degraded")
    for col in (*columns, "recover"):
        table.add_column(
            col, justify="left" if col in ("experiment", "verdict", "arm") else "right"
        )
    for r in rows:
        if r.sweep is not None:
            table.add_row(r.name, _coloured(r), "(sweep: see below)", *[""] * 6)
            continue
        recover = None if r.summary is None else r.summary.recovery_seconds
        for i, arm in enumerate(("experiment", "control")):
            a = _arm(r.summary, arm)
            p99 = (a.get("latency") or {}).get("p99") or {}
            share = (a.get("model_share") or {}).get("fallback")
            table.add_row(
                r.name if i == 0 else "",
                _coloured(r) if i == 0 else "",
                arm,
                _pct(a.get("errors")),
                "-" if p99.get("value") is None else f"{p99['value'] * 1000:.0f}ms",
                _pct(a.get("accuracy")),
                _pct(share) if share else "0.0%" if a else "-",
                _pct(a.get("silent")),
                "" if i or recover is None else f"{recover:.2f}s",
            )
    console.print(table)
    console.print(
        "degraded: successful answers that used cached/default/stale features or the fallback"
    )
    for r in rows:
        for alert in [] if r.summary is None else r.summary.alerts:
            console.print(f"{r.name}: alert {alert['name']}: {_alert_times(alert)}")
        if r.summary is not None and r.summary.kill_switch_ms is not None:
            console.print(
                f"{r.name}: kill switch tripped ({r.summary.abort_reason}); faults removed "
                f"{r.summary.kill_switch_ms:.1f} ms after the trip"
            )
        if r.sweep is not None:
            points = " · ".join(
                f"{p['value']} {_accuracy_of(p)} {p['verdict']}" for p in r.sweep.points
            )
            console.print(f"{r.name}: {r.sweep.parameter} → accuracy: {points}")
            console.print(
                f"{r.name}: longest {r.sweep.parameter} the hypothesis survived "
                f"(maximum tolerable staleness): {r.sweep.largest_held_text}"
            )
        if r.summary is not None and len(r.summary.staleness) > 1:  # features went stale
            curve = " · ".join(
                f"{p['low']:g}-{p['high']:g}s {_pct(p['estimate'])}"
                if p["high"] is not None
                else f">{p['low']:g}s {_pct(p['estimate'])}"
                for p in r.summary.staleness
            )
            console.print(f"{r.name}: accuracy vs feature age: {curve}")
            if r.summary.max_tolerable_staleness is not None:
                console.print(
                    f"{r.name}: maximum tolerable staleness {r.summary.max_tolerable_staleness:g}s"
                )


def _coloured(row: _Row) -> str:
    if row.verdict != row.expected:
        return f"[red]{row.verdict}[/]"
    return f"[green]{row.verdict}{'' if row.verdict == 'held' else ' (expected)'}[/]"


def _alert_times(alert: dict[str, Any]) -> str:
    if alert["must_not_fire"]:
        return "fired" if alert["fired_at"] is not None else "silent, as it should be"
    if alert["time_to_detect_s"] is None:
        return "did not fire"
    text = f"fired {alert['time_to_detect_s']:.1f}s after injection"
    if alert.get("notify_receiver") is not None:
        notified = alert.get("time_to_notify_s")
        text += (
            f", paged {alert['notify_receiver']} {notified:.1f}s after injection"
            if notified is not None
            else f", never paged {alert['notify_receiver']}"
        )
    if alert["time_to_resolve_s"] is None:
        return text + ", did not resolve"
    text += f", resolved {alert['time_to_resolve_s']:.1f}s after rollback began"
    if alert.get("time_to_notify_resolved_s") is not None:
        text += f" (the resolution paged {alert['time_to_notify_resolved_s']:.1f}s after it)"
    return text


def _print_sweep_failures(console: Console, sweep: SweepOutcome) -> None:
    for point in sweep.points:
        for check in point["checks"]:
            if check["status"] != "held":
                console.print(
                    f"  [red]✗[/] {sweep.parameter} {point['value']}: {check['name']}: "
                    f"{check['status']} ({_value(check)})"
                )


def _accuracy_of(point: dict[str, Any]) -> str:
    for check in point["checks"]:
        est = check.get("estimate") or {}
        if "accuracy" in check["name"] and est.get("value") is not None:
            return f"{est['value'] * 100:.1f}%"
    return "-"


def _value(check: dict[str, Any]) -> str:
    est = check.get("estimate") or {}
    value, low, high = est.get("value"), est.get("low"), est.get("high")
    if value is None or math.isnan(value):
        return check.get("detail") or "no data"
    low_text = "-inf" if low is None else f"{low:.4g}"
    high_text = "inf" if high is None else f"{high:.4g}"
    return f"{value:.4g} in [{low_text}, {high_text}], bounds {check.get('bounds')}"


def _clear_previous(out_dir: Path, names: Sequence[str]) -> None:
    """Remove what an earlier demo left for these experiments here, its reports and the state
    of its services: these runs replace it, from fresh state."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").unlink(missing_ok=True)
    for name in names:
        shutil.rmtree(out_dir / name, ignore_errors=True)
        shutil.rmtree(out_dir / "service" / name, ignore_errors=True)


def _write_sweep_report(sweep_dir: Path, console: Console) -> None:
    from mlchaos.report import read_runs, render_html  # noqa: PLC0415

    try:
        runs, sweep = read_runs(sweep_dir)
    except ConfigError as exc:  # interrupted before any run of it was written
        console.print(f"[yellow]no sweep report:[/] {exc}")
        return
    (sweep_dir / "report.html").write_text(render_html(runs, sweep=sweep), encoding="utf-8")
    console.print(f"html report: {sweep_dir / 'report.html'}")


def _write_index(out_dir: Path, variant: str, feature_store: str, rows: list[_Row]) -> None:
    """``index.html``: every experiment's report with its verdict and the one expected."""
    from mlchaos.report import IndexEntry, render_index  # noqa: PLC0415

    entries = []
    for r in rows:
        report = out_dir / r.name / "report.html"
        note = r.error or ("" if r.summary is None else r.summary.abort_reason or "")
        if r.sweep is not None:
            note = f"largest {r.sweep.parameter} held: {r.sweep.largest_held_text}"
        entries.append(
            IndexEntry(
                r.name,
                r.verdict,
                f"{r.name}/report.html" if report.exists() else None,
                r.expected,
                note,
            )
        )
    page = render_index(
        "mlchaos demo",
        entries,
        note=f"{variant} gateway, {feature_store} feature store; each experiment ran against a "
        "fresh demo service",
    )
    (out_dir / "index.html").write_text(page, encoding="utf-8")


def _write_summary(out_dir: Path, variant: str, feature_store: str, rows: list[_Row]) -> None:
    doc = {
        "variant": variant,
        "feature_store": feature_store,
        "held": all(r.verdict == r.expected for r in rows) and bool(rows),
        "experiments": [
            {
                "name": r.name,
                "verdict": r.verdict,
                "expected": r.expected,
                "error": r.error,
                "recover_seconds": None if r.summary is None else r.summary.recovery_seconds,
                "summary": None if r.summary is None else r.summary.to_dict(),
                "sweep": None if r.sweep is None else r.sweep.to_dict(),
            }
            for r in rows
        ],
    }
    (out_dir / "summary.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    _write_index(out_dir, variant, feature_store, rows)
