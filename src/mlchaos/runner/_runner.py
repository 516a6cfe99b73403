"""The phase machine of one experiment.

preflight → steady state before → inject (traffic, scheduled faults with lease renewal,
guardrails every tick) → rollback (always) → recovery → verdict. Everything that happens is
written to the journal as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlchaos import __version__
from mlchaos.analysis import CheckResult, CheckStatus, evaluate, judge_hypothesis
from mlchaos.arms import ArmCode
from mlchaos.errors import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_OK,
    ConfigError,
    ExperimentAborted,
    MlchaosError,
    PreflightError,
    RunError,
)
from mlchaos.journal import Journal
from mlchaos.observations import ObservationStore
from mlchaos.observe import probe_all, reach_target
from mlchaos.runner._actions import run_action
from mlchaos.runner._alerts import AlertWatch
from mlchaos.runner._display import ArmProgress, Display, NullDisplay, Snapshot
from mlchaos.runner._metrics import RunnerState
from mlchaos.safety._admission import Admission
from mlchaos.safety._registry import Registry
from mlchaos.spec._checks import Judge
from mlchaos.spec._traffic import TrafficConfig

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from mlchaos.agent import AgentClient
    from mlchaos.faults import Injector
    from mlchaos.proxy import Address, ControlClient
    from mlchaos.spec import Experiment, Fault
    from mlchaos.traffic import TrafficResult

__all__ = ["RunOutcome", "Runner", "new_run_id"]


@dataclass
class RunOutcome:
    """What happened, in one object: the CLI turns it into a summary and an exit code."""

    run_id: str
    verdict: str = "error"  # held | failed | aborted | error
    exit_code: int = EXIT_CANNOT_RUN
    checks: list[CheckResult] = field(default_factory=list)
    abort_reason: str | None = None
    error: str | None = None
    recovered: bool | None = None
    recovery_seconds: float | None = None
    journal: Path | None = None


@dataclass
class _Scheduled:
    index: int
    fault: Fault
    injector: Injector
    id: str
    injected_at: float | None = None  # wall clock
    removed_at: float | None = None


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class Runner:
    """Runs one experiment; ``await run()`` never raises for the system's failures."""

    def __init__(
        self,
        exp: Experiment,
        *,
        base_dir: Path,
        journal: Journal,
        display: Display | None = None,
        run_id: str | None = None,
        registry: Registry | None = None,
        admission: Admission | None = None,
        metrics: Address | None = None,
    ) -> None:
        self.exp = exp
        self.base_dir = base_dir
        self.journal = journal
        self.display = display or NullDisplay()
        self.run_id = run_id or new_run_id()
        self.store = ObservationStore()
        self._scheduled: list[_Scheduled] = []
        self._flushed = 0
        self._trip_mono: float | None = None
        self._last_guard: dict[str, str] = {}
        self.rolling_back = False
        self._rollback_started: float | None = None
        self.registry = registry or Registry()
        self.admission = admission or Admission()
        self._clients: dict[str, ControlClient] = {}
        self._watch: AlertWatch | None = None
        self.state = RunnerState(exp.title, self.run_id)
        self._metrics_at = metrics
        self.metrics_port: int | None = None
        self._promql: list[CheckResult] = []
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ phases
    async def run(self) -> RunOutcome:
        out = RunOutcome(self.run_id, journal=self.journal.path)
        self.journal.write(
            "run",
            run_id=self.run_id,
            version=__version__,
            base_dir=str(self.base_dir),
            spec=self.exp.model_dump(mode="json"),
        )
        metrics: web.AppRunner | None = None
        try:
            await self._admit()
            metrics = await self._serve_metrics()
            await self._execute(out)
        except asyncio.CancelledError:
            # Interrupted before injection began (during injection the inject phase handles
            # it): nothing is active; proxies the runner started were stopped by the stack.
            out.error = "interrupted before any fault was injected"
            out.exit_code = EXIT_FAILED
        except (RunError, ConfigError) as exc:
            out.error = str(exc)
            out.exit_code = exc.exit_code
        else:
            self._conclude(out)
        finally:
            if metrics is not None:
                await metrics.cleanup()
            self.registry.unregister(self.run_id)
            if out.error is not None:
                self.journal.write(
                    "verdict", verdict="error", exit_code=out.exit_code, error=out.error
                )
            self.journal.close()
        return out

    async def _serve_metrics(self) -> web.AppRunner | None:
        """The runner's Prometheus metrics on the address asked for, for the run's length."""
        if self._metrics_at is None:
            return None
        from mlchaos.runner._metrics import RunnerCollector, serve_metrics  # noqa: PLC0415

        at = self._metrics_at
        try:
            runner, self.metrics_port = await serve_metrics(
                at.host, at.port, RunnerCollector(self.state, self.store)
            )
        except OSError as exc:
            raise RunError(f"cannot serve metrics on {at}: {exc.strerror or exc}") from None
        self.display.event(f"metrics: http://{at.host}:{self.metrics_port}/metrics")
        return runner

    async def _admit(self) -> None:
        """Before anything is contacted: refuse while mlchaos is disabled, over a blast-radius
        cap, without a production run's confirmation or rehearsal, or outside the schedule
        (or wait for it); then register (one experiment per target; for 'mlchaos halt')."""
        from mlchaos.safety import admit, fault_targets, wait_for_window  # noqa: PLC0415

        reason = self.registry.disabled()
        if reason is not None:
            raise RunError(
                f"mlchaos is disabled ({reason}); no experiment may start until "
                "'mlchaos enable' clears the switch"
            )
        profile = admit(self.exp, self.admission, self.registry)
        site = self.admission.site_path
        self.journal.write(
            "admission",
            environment=self.exp.environment,
            profile=profile.model_dump(mode="json"),
            site=None if site is None else str(site),
        )
        if self.exp.schedule is not None:
            await wait_for_window(
                self.exp.schedule, wait=self.admission.wait_for_window, on_wait=self.display.event
            )
        self.registry.register(self.run_id, self.exp.title, fault_targets(self.exp))

    async def _execute(self, out: RunOutcome) -> None:
        import aiohttp  # noqa: PLC0415

        async with AsyncExitStack() as stack:
            session = self._session = await stack.enter_async_context(aiohttp.ClientSession())
            async with self._phase("preflight"):
                await self._preflight(stack, session)
            async with self._phase("steady_state"):
                await self._steady_state_before(session)
            if self.exp.alerts is not None:
                self._watch = AlertWatch(self.exp.alerts, session)
                self._watch.start()
            try:
                async with self._phase("inject"):
                    await self._inject_and_observe()
            except (ExperimentAborted, MlchaosError) as exc:
                reason = exc.reason if isinstance(exc, ExperimentAborted) else str(exc)
                evidence = exc.evidence if isinstance(exc, ExperimentAborted) else {}
                out.abort_reason = reason
                self.journal.write("abort", reason=reason, evidence=evidence)
                self.display.event(f"[bold red]aborted:[/] {reason}")
            finally:
                self.rolling_back = True
                self._rollback_started = time.monotonic()
                if self._watch is not None:
                    self._watch.rollback_at = time.time()
                async with self._phase("rollback"):
                    await self._rollback(session)
            async with self._phase("recovery"):
                await self._recover(session, out)
            out.checks = self._verdict_checks()
            if self._watch is not None:
                async with self._phase("alerts"):
                    await self._watch.finish()
                for record in self._watch.records():
                    self.journal.write("alert", **record)
                out.checks += self._watch.results()

    def _conclude(self, out: RunOutcome) -> None:
        """The verdict: held only without abort, with every check held and recovery done."""
        held = all(c.status is CheckStatus.HELD for c in out.checks)
        if out.abort_reason is not None:
            out.verdict, out.exit_code = "aborted", EXIT_FAILED
        elif held and out.recovered is not False:
            out.verdict, out.exit_code = "held", EXIT_OK
        else:
            out.verdict, out.exit_code = "failed", EXIT_FAILED
        for c in out.checks:
            self.journal.write("check", **c.to_dict())
        self.journal.write(
            "verdict",
            verdict=out.verdict,
            exit_code=out.exit_code,
            abort_reason=out.abort_reason,
            recovered=out.recovered,
            recovery_seconds=out.recovery_seconds,
        )

    @contextlib.asynccontextmanager
    async def _phase(self, name: str) -> AsyncIterator[None]:
        self.display.phase(name)
        self.state.phase = name
        self.journal.write("phase", phase=name, event="start")
        t0 = time.monotonic()
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, MlchaosError):
                exc.add_context(name)
            self.journal.write(
                "phase",
                phase=name,
                event="end",
                ok=False,
                seconds=time.monotonic() - t0,
                error=str(exc) or type(exc).__name__,
            )
            self.journal.sync()
            raise
        self.journal.write("phase", phase=name, event="end", ok=True, seconds=time.monotonic() - t0)
        self.journal.sync()

    async def prepare(self, stack: AsyncExitStack, session: aiohttp.ClientSession) -> None:
        """Preflight alone, for a rehearsal: proxies and agents open (kept open by ``stack``),
        targets reachable, every fault's injector checked and in :attr:`scheduled`."""
        await self._preflight(stack, session)

    @property
    def scheduled(self) -> list[Injector]:
        return [s.injector for s in self._scheduled]

    @property
    def clients(self) -> dict[str, ControlClient]:
        """The control API clients of the experiment's proxies, by name (after preflight)."""
        return dict(self._clients)

    async def _preflight(self, stack: AsyncExitStack, session: aiohttp.ClientSession) -> None:
        from mlchaos.traffic import load_dataset  # noqa: PLC0415

        exp = self.exp
        if isinstance(exp.traffic, TrafficConfig):
            dataset = Path(exp.traffic.dataset)
            load_dataset(dataset if dataset.is_absolute() else self.base_dir / dataset, exp.traffic)
        clients = self._clients
        for spec in exp.proxies:
            clients[spec.name] = await self._open_proxy(stack, spec.name)
        agents = {a.name: await self._open_agent(stack, a.name) for a in exp.agents}
        await self._check_traffic_rate(session)
        for t in exp.targets:
            result = await reach_target(t, session)
            self.journal.write("probe", phase="preflight", **result.to_dict())
            if not result.ok:
                raise PreflightError(f"target '{t.name}' is not reachable: {result.detail}")
        for i, fault in enumerate(exp.faults):
            fault_id = f"{self.run_id}-{i}"
            injector = self._injector(fault, fault_id, clients, agents)
            await injector.check()
            self._scheduled.append(_Scheduled(i, fault, injector, fault_id))
        self.display.event(
            f"{len(exp.proxies)} proxies, {len(exp.targets)} targets, "
            f"{len(exp.faults)} faults ready"
        )

    async def _check_traffic_rate(self, session: aiohttp.ClientSession) -> None:
        """The schedule's traffic preconditions: a PromQL probe that must hold, and the edge's
        request rate below ``max_rate``."""
        from mlchaos.observe import promql  # noqa: PLC0415

        schedule, traffic = self.exp.schedule, self.exp.traffic
        if schedule is not None and schedule.precondition is not None:
            result = await promql(schedule.precondition, session)
            self.journal.write("probe", phase="precondition", **result.to_dict())
            if not result.ok:
                raise PreflightError(
                    f"the traffic precondition '{result.name}' does not hold: {result.detail}"
                )
        if schedule is None or schedule.max_rate is None or isinstance(traffic, TrafficConfig):
            return
        edge = self._clients[traffic.edge]
        window = schedule.rate_window.seconds
        self.display.event(f"measuring the request rate at the edge for {schedule.rate_window}")
        before = sum(a.requests for a in (await edge.stats()).arms.values())
        await asyncio.sleep(window)
        after = sum(a.requests for a in (await edge.stats()).arms.values())
        rate = (after - before) / window
        self.journal.write("traffic_rate", rate=rate, limit=schedule.max_rate.per_second)
        if rate >= schedule.max_rate.per_second:
            raise PreflightError(
                f"the service is busy: {rate:.1f} requests/s at the edge over "
                f"{schedule.rate_window}, and the schedule allows runs below {schedule.max_rate}"
            )

    def _injector(
        self,
        fault: Fault,
        fault_id: str,
        clients: dict[str, ControlClient],
        agents: dict[str, AgentClient],
    ) -> Injector:
        from mlchaos.faults import KillInjector, PauseInjector, ProxyFaultInjector  # noqa: PLC0415
        from mlchaos.spec import KillFault, PauseFault  # noqa: PLC0415

        if isinstance(fault, KillFault):
            return KillInjector(
                fault.process.relative_to(self.base_dir),
                signal.Signals[fault.signal],
                fault.restart,
            )
        if isinstance(fault, PauseFault):
            return PauseInjector(
                agents[fault.target],
                fault.process.relative_to(self.base_dir),
                lease=self.exp.lease,
                fault_id=fault_id,
                agent=fault.target,
            )
        return ProxyFaultInjector(
            clients[fault.target],
            fault.rule(),
            lease=self.exp.lease,
            fault_id=fault_id,
            proxy=fault.target,
        )

    async def _open_proxy(self, stack: AsyncExitStack, name: str) -> ControlClient:
        from mlchaos.proxy import ControlClient, ProxyServer  # noqa: PLC0415

        spec = next(p for p in self.exp.proxies if p.name == name)
        if spec.serve is not None:
            server = ProxyServer(spec.serve)
            await server.start()
            stack.push_async_callback(server.stop)
            url, token = server.control_url, server.token
            self.journal.write(
                "proxy", name=name, mode="serve", listen=str(server.listen_address), control=url
            )
            self.display.event(f"proxy {name}: listening on {server.listen_address}")
        else:
            assert spec.connect is not None
            url = spec.connect.url
            token = _read_token(Path(spec.connect.token_file), f"proxy '{name}'")
            self.journal.write("proxy", name=name, mode="connect", control=url)
        client = ControlClient(url, token)
        await stack.enter_async_context(client)
        self.registry.add_proxy(self.run_id, url, token)  # so 'mlchaos halt' can clear it
        try:
            await client.health()
        except MlchaosError as exc:
            raise PreflightError(f"proxy '{name}': {exc}") from None
        return client

    async def _open_agent(self, stack: AsyncExitStack, name: str) -> AgentClient:
        from mlchaos.agent import AgentClient  # noqa: PLC0415

        spec = next(a for a in self.exp.agents if a.name == name).connect
        token = _read_token(Path(spec.token_file), f"agent '{name}'")
        client = AgentClient(spec.url, token)
        await stack.enter_async_context(client)
        self.registry.add_agent(self.run_id, spec.url, token)  # so 'mlchaos halt' can resume
        try:
            await client.health()
        except MlchaosError as exc:
            raise PreflightError(f"agent '{name}': {exc}") from None
        self.journal.write("agent", name=name, control=spec.url)
        return client

    async def _steady_state_before(self, session: aiohttp.ClientSession) -> None:
        results = await probe_all(self.exp.steady_state, session)
        for r in results:
            self.journal.write("probe", phase="steady_state", **r.to_dict())
        failing = [r for r in results if not r.ok]
        if failing:
            detail = "; ".join(f"{r.name}: {r.detail}" for r in failing)
            raise PreflightError(f"steady state does not hold before injection ({detail})")
        self.display.event(f"steady state holds ({len(results)} probes)")

    async def _inject_and_observe(self) -> None:
        t0 = time.monotonic()
        traffic = asyncio.create_task(self._traffic(), name="traffic")
        helpers = [
            asyncio.create_task(self._schedule_faults(t0), name="faults"),
            asyncio.create_task(self._renew_loop(), name="renew"),
            asyncio.create_task(self._guardrail_loop(t0), name="guardrails"),
            asyncio.create_task(self._flush_loop(), name="flush"),
        ]
        try:
            pending: set[asyncio.Task[Any]] = {traffic, *helpers}
            while not traffic.done():
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    failure = None if finished.cancelled() else finished.exception()
                    if finished is not traffic and failure is not None:
                        raise failure
            result = traffic.result()
            self.journal.write("traffic", **result.to_dict())
            self._promql = await self._judge_promql()  # while the faults are still in place
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            raise ExperimentAborted("interrupted by the operator (SIGINT/SIGTERM)") from None
        finally:
            for job in (traffic, *helpers):
                job.cancel()
            await asyncio.gather(traffic, *helpers, return_exceptions=True)
            self._flush_observations()

    async def _judge_promql(self) -> list[CheckResult]:
        """The hypothesis's PromQL checks, queried as the traffic ends."""
        from mlchaos.observe import promql  # noqa: PLC0415

        assert self._session is not None
        out = []
        for check in self.exp.promql_checks:
            r = await promql(check, self._session)
            status = CheckStatus.HELD if r.ok else CheckStatus.VIOLATED
            if r.detail.startswith("no data") or "not reachable" in r.detail:
                status = CheckStatus.NO_DATA
            out.append(
                CheckResult(check.name, status, None, check.describe(), Judge.POINT, r.detail)
            )
        return out

    async def _traffic(self) -> TrafficResult:
        """Replay the dataset, or observe live traffic at the edge proxy."""
        from mlchaos.proxy import Protocol  # noqa: PLC0415
        from mlchaos.traffic import run_live, run_traffic  # noqa: PLC0415

        traffic = self.exp.traffic
        if isinstance(traffic, TrafficConfig):
            return await run_traffic(traffic, self.store, base_dir=self.base_dir)
        http = {p.name for p in self.exp.proxies if p.protocol is Protocol.HTTP}
        proxies = {name: c for name, c in self._clients.items() if name in http}
        return await run_live(traffic, self.store, proxies, salt=self.run_id, lease=self.exp.lease)

    async def _schedule_faults(self, t0: float) -> None:
        events: list[tuple[float, int, _Scheduled]] = []
        total = self.exp.traffic.duration
        for s in self._scheduled:
            events.append((s.fault.start.seconds, 1, s))
            events.append((s.fault.end(total), 0, s))
        for offset, is_inject, s in sorted(events, key=lambda e: (e[0], e[1])):
            await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
            if is_inject:
                await s.injector.inject()
                s.injected_at = time.time()
                if self._watch is not None and self._watch.injected_at is None:
                    self._watch.injected_at = s.injected_at
                self.state.faults_injected += 1
                self.state.faults_active += 1
                self.journal.write(
                    "fault",
                    event="injected",
                    index=s.index,
                    id=s.id,
                    target=s.fault.target,
                    fault=s.fault.model_dump(mode="json", exclude_none=True),
                )
                self.display.event(f"injected {s.injector.label}")
            elif s.injected_at is not None and s.removed_at is None:
                await s.injector.remove()
                s.removed_at = time.time()
                self.state.faults_active -= 1
                self.journal.write("fault", event="removed", index=s.index, id=s.id)
                self.display.event(f"removed {s.injector.label}")

    def _active(self) -> list[_Scheduled]:
        return [s for s in self._scheduled if s.injected_at is not None and s.removed_at is None]

    async def _renew_loop(self) -> None:
        period = self.exp.lease.seconds / 3
        while True:
            await asyncio.sleep(period)
            for s in self._active():
                try:
                    await s.injector.renew()
                except MlchaosError as exc:
                    raise ExperimentAborted(
                        f"could not renew the lease of {s.injector.label}: {exc}"
                    ) from None

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._flush_observations()

    def _flush_observations(self) -> None:
        n = len(self.store)
        if n > self._flushed:
            self.journal.write(
                "observations",
                models=list(self.store.models),
                degradations=list(self.store.degradations),
                columns=self.store.columns(self._flushed, n),
            )
            self._flushed = n

    async def _guardrail_loop(self, t0: float) -> None:
        exp = self.exp
        total = exp.traffic.duration.seconds
        conf = exp.analysis.confidence.fraction
        last_snapshot = 0.0
        while True:
            await asyncio.sleep(exp.tick.seconds)
            if exp.schedule is not None and not exp.schedule.open_at(datetime.now(UTC)):
                raise ExperimentAborted(f"the allowed window closed ({exp.schedule.describe()})")
            for check in exp.guardrails:
                result = evaluate(
                    check,
                    self.store,
                    confidence=conf,
                    threshold=exp.analysis.threshold,
                    sequential=True,  # checked every tick: comparisons must stay valid
                )
                previous = self._last_guard.get(result.name)
                if result.status.value != previous:
                    self._last_guard[result.name] = result.status.value
                    self.journal.write("guardrail", **result.to_dict())
                if result.status is CheckStatus.VIOLATED:
                    self._trip_mono = time.monotonic()
                    self.state.trips[result.name] = self.state.trips.get(result.name, 0) + 1
                    raise ExperimentAborted(
                        f"guardrail '{result.name}' tripped: {result.detail}",
                        evidence=result.to_dict(),
                    )
            now = time.monotonic()
            if now - last_snapshot >= 0.25:
                last_snapshot = now
                self.display.tick(self._snapshot(now - t0, total))

    def _snapshot(self, elapsed: float, total: float) -> Snapshot:
        import numpy as np  # noqa: PLC0415

        from mlchaos import stats  # noqa: PLC0415

        arm = self.store.column("arm")
        failed = stats.failed(self.store.column("status"), self.store.column("error"))
        latency = self.store.column("latency")
        arms = {}
        for name, code in (("experiment", ArmCode.EXPERIMENT), ("control", ArmCode.CONTROL)):
            mine = arm == code
            n = int(mine.sum())
            answered = latency[mine & ~np.isnan(latency)]  # dropped requests have no latency
            p99 = float(np.quantile(answered, 0.99)) * 1000 if answered.size else 0.0
            arms[name] = ArmProgress(n, int((failed & mine).sum()), p99)
        return Snapshot(
            elapsed, total, arms, [s.injector.label for s in self._active()], dict(self._last_guard)
        )

    async def _rollback(self, session: aiohttp.ClientSession) -> None:
        for s in self._scheduled:
            if s.injected_at is None or s.removed_at is not None:
                continue
            try:
                await s.injector.remove()
                s.removed_at = time.time()
                self.state.faults_active -= 1
                self.journal.write("fault", event="removed", index=s.index, id=s.id)
                self.display.event(f"removed {s.injector.label}")
            except MlchaosError as exc:
                self.journal.write(
                    "fault",
                    event="remove_failed",
                    index=s.index,
                    id=s.id,
                    error=str(exc),
                    note=f"the proxy drops it when its lease ({self.exp.lease}) ends",
                )
                self.display.event(f"[red]could not remove {s.injector.label}:[/] {exc}")
        if self._trip_mono is not None:
            ms = (time.monotonic() - self._trip_mono) * 1000
            self.journal.write("kill_switch", trip_to_removed_ms=ms)
            self.display.event(f"faults removed {ms:.0f}ms after the guardrail tripped")
        for s in self._scheduled:
            if s.injected_at is None:
                continue
            with contextlib.suppress(MlchaosError):
                ok = await s.injector.verify_removed()
                self.journal.write("fault", event="verified_removed", index=s.index, ok=ok)
        for action in self.exp.rollback:
            ok, detail = await run_action(action, session)
            self.journal.write("rollback_action", name=action.name, ok=ok, detail=detail)
            self.display.event(f"rollback {action.name}: {'ok' if ok else 'FAILED'} ({detail})")

    async def _recover(self, session: aiohttp.ClientSession, out: RunOutcome) -> None:
        rec = self.exp.recovery
        if not self.exp.steady_state:
            out.recovered, out.recovery_seconds = True, 0.0
            self.journal.write(
                "recovery", recovered=True, seconds=0.0, note="no steady-state probes"
            )
            return
        # Time to recover runs from the start of rollback (a restart there is part of it);
        # the deadline runs from now, after rollback.
        t0 = self._rollback_started or time.monotonic()
        deadline = time.monotonic() + rec.deadline.seconds
        while True:
            results = await probe_all(self.exp.steady_state, session)
            if all(r.ok for r in results):
                out.recovered, out.recovery_seconds = True, time.monotonic() - t0
                break
            if time.monotonic() >= deadline:
                out.recovered = False
                for r in results:
                    self.journal.write("probe", phase="recovery", **r.to_dict())
                break
            await asyncio.sleep(rec.interval.seconds)
        self.journal.write("recovery", recovered=out.recovered, seconds=out.recovery_seconds)
        if out.recovered:
            self.display.event(
                f"steady state holds again {out.recovery_seconds:.2f}s after rollback began"
            )
        else:
            self.display.event(f"[red]steady state did not return within {rec.deadline}[/]")

    def _verdict_checks(self) -> list[CheckResult]:
        judged = judge_hypothesis(
            self.exp.metric_checks, self.store, self.fault_windows(), self.exp.analysis
        )
        queried = {r.name: r for r in self._promql}
        for check in self.exp.promql_checks:
            if check.name not in queried:  # the run ended before the traffic did
                why = "not queried: the run was stopped before the traffic ended"
                queried[check.name] = CheckResult(
                    check.name, CheckStatus.NO_DATA, None, check.describe(), Judge.POINT, why
                )
        return judged + list(queried.values())

    def fault_windows(self) -> list[tuple[float, float]]:
        return [
            (s.injected_at, s.removed_at or time.time())
            for s in self._scheduled
            if s.injected_at is not None
        ]


def _read_token(path: Path, owner: str) -> str:
    """``owner`` is e.g. "proxy 'p'" or "agent 'a'"."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PreflightError(
            f"{owner}: cannot read its token file {path}: {exc.strerror}"
        ) from None
    if not token:
        raise PreflightError(f"{owner}: token file {path} is empty")
    return token
