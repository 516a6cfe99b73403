"""The phase machine of one experiment.

preflight → steady state before → inject (traffic, scheduled faults with lease renewal,
guardrails every tick) → rollback (always) → recovery → verdict. Everything that happens is
emitted as an event the moment it happens (:mod:`mlchaos.runner._events`): the journal writes
the records, the display and the metrics listen.

Rollback cannot skip a fault: every fault whose injection was *attempted* is removed (removal
is idempotent), every removal is verified, every rollback action runs, whatever failed before;
and the verdict record is written however the run ends. A cancelled run rolls back, writes its
verdict, and then lets the cancellation go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlchaos import __version__
from mlchaos.analysis import (
    CheckResult,
    CheckStatus,
    doubts,
    evaluate,
    guardrail_confidence,
    judge_hypothesis,
    plan,
    sample_ratio_check,
)
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
from mlchaos.faults import build_injector
from mlchaos.journal import (
    SCHEMA_VERSION,
    AbortRecord,
    AdmissionRecord,
    AlertRecord,
    CheckRecord,
    FaultRecord,
    GuardrailRecord,
    KillSwitchRecord,
    ObservationsRecord,
    PhaseRecord,
    ProbeRecord,
    RecoveryRecord,
    RollbackActionRecord,
    RunRecord,
    TrafficRateRecord,
    TrafficRecord,
    VerdictRecord,
    fault_arms,
    fault_reach,
    fault_windows,
    judged_windows,
)
from mlchaos.observations import ObservationStore
from mlchaos.observe import probe_all, reach_target
from mlchaos.runner._actions import run_action
from mlchaos.runner._alerts import AlertWatch
from mlchaos.runner._clock import Clock, SystemClock
from mlchaos.runner._endpoints import Endpoints, OpenEndpoints, open_endpoints
from mlchaos.runner._events import (
    ArmProgress,
    Event,
    FaultSilent,
    JournalSink,
    Listener,
    MeasuringRate,
    MetricsServing,
    Prepared,
    Progress,
    SampleTooSmall,
    SplitMismatch,
    SteadyStateHeld,
    Waiting,
)
from mlchaos.runner._metrics import RunnerState
from mlchaos.safety import Admission, Registry
from mlchaos.spec import Judge, TrafficConfig

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from mlchaos.faults import Injector
    from mlchaos.journal import Journal
    from mlchaos.observe import ProbeResult
    from mlchaos.proxy import Address
    from mlchaos.spec import Experiment, Fault
    from mlchaos.traffic import TrafficResult

__all__ = ["BuildInjector", "RunOutcome", "Runner", "TrafficSource", "new_run_id"]

# How the runner gets an injector for a fault (by default through the experiment's proxies and
# agents; a test passes fakes), and where its traffic comes from (by default the spec's replay
# or live traffic).
BuildInjector = Callable[["Fault", str, Endpoints], "Injector"]
TrafficSource = Callable[[ObservationStore], Coroutine[Any, Any, "TrafficResult"]]


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
    attempted: bool = False  # inject() was called: it may be in place even if it raised
    injected_at: float | None = None  # wall clock, once inject() returned
    removed_at: float | None = None
    silent_told: bool = False  # the display was told it changes nothing


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class Runner:
    """Runs one experiment; ``await run()`` never raises for the system's failures.

    It does raise ``CancelledError`` when cancelled — after rolling back and writing the
    verdict; :attr:`outcome` then holds what happened.
    """

    def __init__(
        self,
        exp: Experiment,
        *,
        base_dir: Path,
        journal: Journal,
        listeners: Sequence[Listener] = (),
        run_id: str | None = None,
        registry: Registry | None = None,
        admission: Admission | None = None,
        metrics: Address | None = None,
        clock: Clock | None = None,
        endpoints: OpenEndpoints = open_endpoints,
        injector: BuildInjector | None = None,
        traffic: TrafficSource | None = None,
    ) -> None:
        self.exp = exp
        self.base_dir = base_dir
        self.journal = journal
        self.run_id = run_id or new_run_id()
        self.store = ObservationStore()
        self.clock: Clock = clock or SystemClock()
        self.registry = registry or Registry()
        self.admission = admission or Admission()
        self.state = RunnerState(exp.title, self.run_id)
        self.outcome = RunOutcome(self.run_id, journal=journal.path)
        self.rolling_back = False
        self.metrics_port: int | None = None
        self.endpoints = Endpoints()
        self._listeners: list[Listener] = [JournalSink(journal), self.state, *listeners]
        self._open_endpoints = endpoints
        self._build_injector = injector or self._injector
        self._traffic_source = traffic or self._traffic
        self._own_traffic = traffic is None  # it sends the spec's requests (not a test's)
        self._scheduled: list[_Scheduled] = []
        self._fault_log: list[dict[str, Any]] = []  # the fault records, for the windows
        self._traffic_end: float | None = None  # wall clock, once every request had ended
        self._split_told = False
        self._flushed = 0
        self._trip_at: float | None = None  # monotonic
        self._last_guard: dict[str, str] = {}
        self._rollback_started: float | None = None  # monotonic
        self._cancelled = False
        self._watch: AlertWatch | None = None
        self._metrics_at = metrics
        self._promql: list[CheckResult] = []
        self._session: aiohttp.ClientSession | None = None

    def emit(self, event: Event) -> None:
        """Tell every listener, in order (the journal first)."""
        if isinstance(event, FaultRecord):
            self._fault_log.append(event.model_dump())
        for listener in self._listeners:
            listener(event)

    # ------------------------------------------------------------------ phases
    async def run(self) -> RunOutcome:
        out = self.outcome
        self.emit(
            RunRecord(
                schema_version=SCHEMA_VERSION,
                run_id=self.run_id,
                version=__version__,
                base_dir=str(self.base_dir),
                spec=self.exp.model_dump(mode="json"),
            )
        )
        metrics: web.AppRunner | None = None
        try:
            await self._admit()
            metrics = await self._serve_metrics()
            await self._execute(out)
            self._conclude(out)
        except asyncio.CancelledError:
            # Before injection (the inject phase turns a cancellation into an abort and rolls
            # back), or a second one during rollback: the endpoints were closed either way.
            when = "during rollback" if self._cancelled else "before any fault was injected"
            self._cancelled = True
            out.error = f"interrupted {when}"
            out.exit_code = EXIT_FAILED
        except (RunError, ConfigError) as exc:
            out.error = str(exc)
            out.exit_code = exc.exit_code
        except Exception as exc:  # noqa: BLE001 - a bug: the run still rolled back; keep it
            out.error = f"internal error: {exc!r}\n{traceback.format_exc()}"
            out.verdict, out.exit_code = "error", EXIT_CANNOT_RUN
        finally:
            if metrics is not None:
                await metrics.cleanup()
            self.registry.unregister(self.run_id)
            if out.error is not None:
                self.emit(VerdictRecord(verdict="error", exit_code=out.exit_code, error=out.error))
            self.journal.close()
        if self._cancelled:
            raise asyncio.CancelledError
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
        self.emit(MetricsServing(f"http://{at.host}:{self.metrics_port}/metrics"))
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
        self.emit(
            AdmissionRecord(
                environment=self.exp.environment,
                profile=profile.model_dump(mode="json"),
                site=None if site is None else str(site),
            )
        )
        if self.exp.schedule is not None:
            await wait_for_window(
                self.exp.schedule,
                wait=self.admission.wait_for_window,
                on_wait=lambda message: self.emit(Waiting(message)),
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
                self._watch = AlertWatch(self.exp.alerts, session, self.clock)
                await self._watch.start()
            try:
                async with self._phase("inject"):
                    await self._inject_and_observe()
            except (ExperimentAborted, MlchaosError) as exc:
                reason = exc.reason if isinstance(exc, ExperimentAborted) else str(exc)
                evidence = exc.evidence if isinstance(exc, ExperimentAborted) else {}
                out.abort_reason = reason
                self.emit(AbortRecord(reason=reason, evidence=evidence))
            finally:
                self.rolling_back = True
                self._rollback_started = self.clock.monotonic()
                if self._watch is not None:
                    self._watch.mark_rollback()
                async with self._phase("rollback"):
                    await self._rollback(session)
            async with self._phase("recovery"):
                await self._recover(session, out)
            out.checks = self._verdict_checks()
            if self._watch is not None:
                async with self._phase("alerts"):
                    await self._watch.finish()
                for record in self._watch.records():
                    self.emit(AlertRecord.model_validate(record))
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
            self.emit(CheckRecord.model_validate(c.to_dict()))
        self.emit(
            VerdictRecord.model_validate(
                {
                    "verdict": out.verdict,
                    "exit_code": out.exit_code,
                    "abort_reason": out.abort_reason,
                    "recovered": out.recovered,
                    "recovery_seconds": out.recovery_seconds,
                }
            )
        )

    @contextlib.asynccontextmanager
    async def _phase(self, name: str) -> AsyncIterator[None]:
        self.emit(PhaseRecord(phase=name, event="start"))
        t0 = self.clock.monotonic()
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, MlchaosError):
                exc.add_context(name)
            seconds = self.clock.monotonic() - t0
            error = str(exc) or type(exc).__name__
            self.emit(PhaseRecord(phase=name, event="end", ok=False, seconds=seconds, error=error))
            raise
        seconds = self.clock.monotonic() - t0
        self.emit(PhaseRecord(phase=name, event="end", ok=True, seconds=seconds))

    async def prepare(self, stack: AsyncExitStack, session: aiohttp.ClientSession) -> None:
        """Preflight alone, for a rehearsal: proxies and agents open (kept open by ``stack``),
        targets reachable, every fault's injector checked and in :attr:`scheduled`."""
        await self._preflight(stack, session)

    @property
    def scheduled(self) -> list[Injector]:
        return [s.injector for s in self._scheduled]

    async def _preflight(self, stack: AsyncExitStack, session: aiohttp.ClientSession) -> None:
        from mlchaos.traffic import load_dataset  # noqa: PLC0415

        exp = self.exp
        if isinstance(exp.traffic, TrafficConfig):
            dataset = Path(exp.traffic.dataset)
            load_dataset(dataset if dataset.is_absolute() else self.base_dir / dataset, exp.traffic)
        self.endpoints = await stack.enter_async_context(
            self._open_endpoints(exp, self.run_id, self.registry, self.emit)
        )
        await self._check_traffic_rate(session)
        for t in exp.targets:
            result = await reach_target(t, session)
            self.emit(_probe_record("preflight", result))
            if not result.ok:
                raise PreflightError(f"target '{t.name}' is not reachable: {result.detail}")
        if isinstance(exp.traffic, TrafficConfig) and self._own_traffic:
            await self._first_request(exp.traffic)
        for i, fault in enumerate(exp.faults):
            fault_id = f"{self.run_id}-{i}"
            injector = self._build_injector(fault, fault_id, self.endpoints)
            await injector.check()
            self._scheduled.append(_Scheduled(i, fault, injector, fault_id))
        self.emit(Prepared(len(exp.proxies), len(exp.targets), len(exp.faults)))
        for line in plan(exp):
            if line.short:
                self.emit(SampleTooSmall(line.describe()))

    async def _first_request(self, traffic: TrafficConfig) -> None:
        """One real request before anything is injected: a service that cannot answer the
        run's requests (a wrong model name, input shape or extract path) is named now, not
        found in an error rate of 100% later."""
        from mlchaos.traffic import first_request  # noqa: PLC0415

        try:
            detail = await first_request(traffic, base_dir=self.base_dir)
        except PreflightError as exc:
            self.emit(
                ProbeRecord(phase="preflight", name="test request", ok=False, detail=str(exc))
            )
            raise
        self.emit(ProbeRecord(phase="preflight", name="test request", ok=True, detail=detail))

    def _injector(self, fault: Fault, fault_id: str, endpoints: Endpoints) -> Injector:
        return build_injector(
            fault,
            fault_id,
            proxies=endpoints.proxies,
            agents=endpoints.agents,
            base_dir=self.base_dir,
            lease=self.exp.lease,
        )

    async def _check_traffic_rate(self, session: aiohttp.ClientSession) -> None:
        """The schedule's traffic preconditions: a PromQL probe that must hold, and the edge's
        request rate below ``max_rate``."""
        from mlchaos.observe import promql  # noqa: PLC0415

        schedule, traffic = self.exp.schedule, self.exp.traffic
        if schedule is not None and schedule.precondition is not None:
            result = await promql(schedule.precondition, session)
            self.emit(_probe_record("precondition", result))
            if not result.ok:
                raise PreflightError(
                    f"the traffic precondition '{result.name}' does not hold: {result.detail}"
                )
        if schedule is None or schedule.max_rate is None or isinstance(traffic, TrafficConfig):
            return
        edge = self.endpoints.proxies[traffic.edge]
        window = schedule.rate_window.seconds
        self.emit(MeasuringRate(str(schedule.rate_window)))
        before = sum(a.requests for a in (await edge.stats()).arms.values())
        await self.clock.sleep(window)
        after = sum(a.requests for a in (await edge.stats()).arms.values())
        rate = (after - before) / window
        self.emit(TrafficRateRecord(rate=rate, limit=schedule.max_rate.per_second))
        if rate >= schedule.max_rate.per_second:
            raise PreflightError(
                f"the service is busy: {rate:.1f} requests/s at the edge over "
                f"{schedule.rate_window}, and the schedule allows runs below {schedule.max_rate}"
            )

    async def _steady_state_before(self, session: aiohttp.ClientSession) -> None:
        results = await probe_all(self.exp.steady_state, session)
        for r in results:
            self.emit(_probe_record("steady_state", r))
        failing = [r for r in results if not r.ok]
        if failing:
            detail = "; ".join(f"{r.name}: {r.detail}" for r in failing)
            raise PreflightError(f"steady state does not hold before injection ({detail})")
        self.emit(SteadyStateHeld(len(results)))

    async def _inject_and_observe(self) -> None:
        t0 = self.clock.monotonic()
        traffic = asyncio.create_task(self._traffic_source(self.store), name="traffic")
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
            self._traffic_end = self.clock.time()
            self.emit(TrafficRecord.model_validate(result.to_dict()))
            self._promql = await self._judge_promql()  # while the faults are still in place
        except asyncio.CancelledError:
            # Roll back first; run() lets the cancellation go on once the verdict is written.
            self._cancelled = True
            raise ExperimentAborted("interrupted by the operator (SIGINT/SIGTERM)") from None
        finally:
            for job in (traffic, *helpers):
                job.cancel()
            await asyncio.gather(traffic, *helpers, return_exceptions=True)
            self._flush_observations()

    async def _judge_promql(self) -> list[CheckResult]:
        """The hypothesis's PromQL checks, queried as the traffic ends. A query that returns
        no series, or a Prometheus that times out or fails, is no data (with the reason)."""
        from mlchaos.observe import promql  # noqa: PLC0415

        assert self._session is not None
        out = []
        for check in self.exp.promql_checks:
            r = await promql(check, self._session)
            status = CheckStatus.HELD if r.ok else CheckStatus.VIOLATED
            if r.no_data:
                status = CheckStatus.NO_DATA
            out.append(
                CheckResult(check.name, status, None, check.describe(), Judge.POINT, r.detail)
            )
        return out

    async def _traffic(self, store: ObservationStore) -> TrafficResult:
        """Replay the dataset, or observe live traffic at the edge proxy."""
        from mlchaos.proxy import Protocol  # noqa: PLC0415
        from mlchaos.traffic import run_live, run_traffic  # noqa: PLC0415

        traffic = self.exp.traffic
        if isinstance(traffic, TrafficConfig):
            return await run_traffic(traffic, store, base_dir=self.base_dir)
        http = {p.name for p in self.exp.proxies if p.protocol is Protocol.HTTP}
        proxies = {n: c for n, c in self.endpoints.proxies.items() if n in http}
        return await run_live(traffic, store, proxies, salt=self.run_id, lease=self.exp.lease)

    async def _schedule_faults(self, t0: float) -> None:
        events: list[tuple[float, int, _Scheduled]] = []
        total = self.exp.traffic.duration
        for s in self._scheduled:
            events.append((s.fault.start.seconds, 1, s))
            events.append((s.fault.end(total), 0, s))
        for offset, is_inject, s in sorted(events, key=lambda e: (e[0], e[1])):
            await self.clock.sleep(max(0.0, t0 + offset - self.clock.monotonic()))
            if is_inject:
                await self._inject(s)
            elif s.injected_at is not None and s.removed_at is None:
                await s.injector.remove()
                s.removed_at = self.clock.time()
                self._removed(s)

    async def _inject(self, s: _Scheduled) -> None:
        s.attempted = True  # from here on, rollback removes it whatever happens
        try:
            await s.injector.inject()
        except BaseException as exc:
            error = str(exc) or type(exc).__name__
            self.emit(
                FaultRecord(
                    event="inject_failed",
                    index=s.index,
                    id=s.id,
                    label=s.injector.label,
                    error=error,
                )
            )
            raise
        s.injected_at = self.clock.time()
        if self._watch is not None:
            self._watch.mark_injected()
        self.emit(
            FaultRecord(
                event="injected",
                index=s.index,
                at=s.injected_at,
                id=s.id,
                label=s.injector.label,
                target=s.fault.target,
                fault=s.fault.model_dump(mode="json", exclude_none=True),
            )
        )

    def _removed(self, s: _Scheduled) -> None:
        hits = s.injector.hits
        self.emit(
            FaultRecord(
                event="removed",
                index=s.index,
                at=s.removed_at,
                id=s.id,
                label=s.injector.label,
                hits=hits,
                unit=None if hits is None else s.injector.unit,
            )
        )

    def _active(self) -> list[_Scheduled]:
        return [s for s in self._scheduled if s.injected_at is not None and s.removed_at is None]

    async def _renew_loop(self) -> None:
        period = self.exp.lease.seconds / 3
        while True:
            await self.clock.sleep(period)
            for s in self._active():
                try:
                    await s.injector.renew()
                except MlchaosError as exc:
                    raise ExperimentAborted(
                        f"could not renew the lease of {s.injector.label}: {exc}"
                    ) from None
                self._tell_if_silent(s)

    def _tell_if_silent(self, s: _Scheduled, at_least: int = 20) -> None:
        """Warn, once, about a fault that has changed nothing while its arm sent ``at_least``
        requests (the verdict then says so too: see :meth:`_verdict_checks`)."""
        hits = s.injector.hits
        if s.silent_told or hits is None or s.injected_at is None or any(hits.values()):
            return
        import numpy as np  # noqa: PLC0415

        arm = str(getattr(s.fault, "arm", "experiment"))
        codes = [ArmCode[name.upper()] for name in fault_arms(arm)]
        sent = (self.store.column("start") >= s.injected_at) & np.isin(
            self.store.column("arm"), codes
        )
        requests = int(sent.sum())
        if requests >= at_least:
            s.silent_told = True
            self.emit(FaultSilent(s.injector.label, arm, requests))

    async def _flush_loop(self) -> None:
        while True:
            await self.clock.sleep(1.0)
            self._flush_observations()

    def _flush_observations(self) -> None:
        n = len(self.store)
        if n > self._flushed:
            self.emit(
                ObservationsRecord(
                    models=list(self.store.models),
                    degradations=list(self.store.degradations),
                    columns=self.store.columns(self._flushed, n),
                )
            )
            self._flushed = n

    async def _guardrail_loop(self, t0: float) -> None:
        exp = self.exp
        total = exp.traffic.duration.seconds
        # Every guardrail is a chance to abort a harmless run: split alpha across them.
        conf = guardrail_confidence(exp.guardrails, exp.analysis.confidence.fraction)
        last_progress = last_split = 0.0
        while True:
            await self.clock.sleep(exp.tick.seconds)
            now = datetime.fromtimestamp(self.clock.time(), UTC)
            if exp.schedule is not None and not exp.schedule.open_at(now):
                raise ExperimentAborted(f"the allowed window closed ({exp.schedule.describe()})")
            for check in exp.guardrails:
                result = evaluate(
                    check,
                    self.store,
                    confidence=conf,
                    threshold=exp.analysis.threshold,
                    sequential=True,  # checked every tick: comparisons must stay valid
                )
                if result.status.value != self._last_guard.get(result.name):
                    self._last_guard[result.name] = result.status.value
                    self.emit(GuardrailRecord.model_validate(result.to_dict()))
                if result.status is CheckStatus.VIOLATED:
                    self._trip_at = self.clock.monotonic()
                    raise ExperimentAborted(
                        f"guardrail '{result.name}' tripped: {result.detail}",
                        evidence=result.to_dict(),
                    )
            elapsed = self.clock.monotonic() - t0
            if elapsed - last_progress >= 0.25:
                last_progress = elapsed
                self.emit(self._progress(elapsed, total))
            if elapsed - last_split >= 1.0:
                last_split = elapsed
                self._check_split()

    def _check_split(self) -> None:
        """Tell, once, when the arms are not getting their configured split (the verdict's
        sample-ratio check says so too)."""
        from mlchaos import stats  # noqa: PLC0415
        from mlchaos.analysis import arm_counts  # noqa: PLC0415

        split = self.exp.traffic.arms
        if self._split_told:
            return
        first, second, unit = arm_counts(self.store)
        share_e, share_c = split.experiment.fraction, split.control.fraction
        if stats.sample_ratio_sequential(first, second, share_e, share_c):
            self._split_told = True
            self.emit(SplitMismatch(first, second, unit, share_e / (share_e + share_c)))

    def _progress(self, elapsed: float, total: float) -> Progress:
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
        active = [s.injector.label for s in self._active()]
        return Progress(elapsed, total, arms, active, dict(self._last_guard))

    async def _rollback(self, session: aiohttp.ClientSession) -> None:
        """Remove every fault whose injection was attempted, verify each is gone, run every
        rollback action: each step is tried whatever the ones before it did."""
        removed_now = 0
        for s in self._scheduled:
            if not s.attempted or s.removed_at is not None:
                continue
            try:
                await s.injector.remove()
            except Exception as exc:  # noqa: BLE001 - journaled; the next fault still goes
                self.emit(
                    FaultRecord(
                        event="remove_failed",
                        index=s.index,
                        id=s.id,
                        label=s.injector.label,
                        error=str(exc) or type(exc).__name__,
                        note=f"its proxy or agent drops it when its lease ({self.exp.lease}) "
                        "ends; if the agent itself died, its guardian has resumed the process",
                    )
                )
                continue
            s.removed_at = self.clock.time()
            self._removed(s)
            removed_now += 1
        if self._trip_at is not None and removed_now:  # the trip removed faults: how fast
            ms = (self.clock.monotonic() - self._trip_at) * 1000
            self.emit(KillSwitchRecord(trip_to_removed_ms=ms))
        for s in self._scheduled:
            if not s.attempted:
                continue
            try:
                ok, error = await s.injector.verify_removed(), None
            except Exception as exc:  # noqa: BLE001 - journaled; rollback goes on
                ok, error = False, f"could not verify: {exc or type(exc).__name__}"
            self.emit(FaultRecord(event="verified_removed", index=s.index, ok=ok, error=error))
        for action in self.exp.rollback:
            try:
                ok, detail = await run_action(action, session)
            except Exception as exc:  # noqa: BLE001 - journaled; the next action still runs
                ok, detail = False, f"internal error: {exc!r}"
            self.emit(RollbackActionRecord(name=action.name, ok=ok, detail=detail))

    async def _recover(self, session: aiohttp.ClientSession, out: RunOutcome) -> None:
        rec = self.exp.recovery
        if not self.exp.steady_state:
            out.recovered, out.recovery_seconds = True, 0.0
            self.emit(RecoveryRecord(recovered=True, seconds=0.0, note="no steady-state probes"))
            return
        # Time to recover runs from the start of rollback (a restart there is part of it);
        # the deadline runs from now, after rollback.
        t0 = self._rollback_started or self.clock.monotonic()
        deadline = self.clock.monotonic() + rec.deadline.seconds
        failing: list[str] = []
        while True:
            results = await probe_all(self.exp.steady_state, session)
            if all(r.ok for r in results):
                out.recovered, out.recovery_seconds = True, self.clock.monotonic() - t0
                break
            if self.clock.monotonic() >= deadline:
                out.recovered = False
                for r in results:
                    self.emit(_probe_record("recovery", r))
                failing = [f"{r.name}: {r.detail}" for r in results if not r.ok]
                break
            await self.clock.sleep(rec.interval.seconds)
        self.emit(
            RecoveryRecord(
                recovered=out.recovered,
                seconds=out.recovery_seconds,
                note=None if out.recovered else f"not within {rec.deadline}",
                failing=failing,
            )
        )

    def _verdict_checks(self) -> list[CheckResult]:
        windows = fault_windows(self._fault_log, self.clock.time())
        srm = sample_ratio_check(self.store, self.exp.traffic.arms)
        horizon = self.exp.traffic.timeout.seconds
        judged = judge_hypothesis(
            self.exp.metric_checks,
            self.store,
            judged_windows(windows, horizon, self._traffic_end),
            self.exp.analysis,
            doubts(fault_reach(windows, self.store), srm),
            horizon,
        )
        if srm is not None:
            judged.append(srm)
        queried = {r.name: r for r in self._promql}
        for check in self.exp.promql_checks:
            if check.name not in queried:  # the run ended before the traffic did
                why = "not queried: the run was stopped before the traffic ended"
                queried[check.name] = CheckResult(
                    check.name, CheckStatus.NO_DATA, None, check.describe(), Judge.POINT, why
                )
        return judged + list(queried.values())


def _probe_record(phase: str, result: ProbeResult) -> ProbeRecord:
    return ProbeRecord(
        phase=phase,
        name=result.name,
        ok=result.ok,
        detail=result.detail,
        latency=result.latency,
    )
