"""``mlchaos rehearse``: prove every fault can be injected and removed, without harming traffic.

For each fault: a proxy fault is injected with no traffic share (probability 0%), seen active,
removed and seen gone; a kill or pause (which have no share) is checked — the process
resolves, the agent answers. Live cohorts are set at 0% and cleared on every HTTP proxy. Each
rollback action runs in check mode (its program exists; its host accepts a connection). The
steps go to a journal; the result is recorded by the spec's hash, which a production run
requires (:func:`mlchaos.safety.admit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlchaos.errors import ConfigError, MlchaosError
from mlchaos.journal import (
    SCHEMA_VERSION,
    Journal,
    RehearsalRecord,
    RehearsalResultRecord,
    RehearsalStepRecord,
)
from mlchaos.runner._actions import check_action
from mlchaos.runner._runner import Runner, new_run_id
from mlchaos.safety._registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

    from mlchaos.proxy import ControlClient
    from mlchaos.safety import Admission
    from mlchaos.spec import Experiment

__all__ = ["RehearsalStep", "rehearse"]


@dataclass(frozen=True)
class RehearsalStep:
    name: str
    ok: bool
    detail: str


async def rehearse(
    exp: Experiment,
    *,
    base_dir: Path,
    out_dir: Path,
    admission: Admission,
    registry: Registry | None = None,
    on_step: Callable[[RehearsalStep], object] = lambda step: None,
) -> tuple[bool, list[RehearsalStep]]:
    """Rehearse ``exp``; (passed, steps), each step also given to ``on_step`` as it is done.
    Over its environment's caps: ConfigError."""
    import aiohttp  # noqa: PLC0415

    from mlchaos.safety import cap_violations, spec_hash  # noqa: PLC0415

    registry = registry or Registry()
    profile = admission.site.profile(exp.environment)
    if profile is None:
        raise ConfigError(f"environment '{exp.environment}' has no profile")
    over = cap_violations(exp, exp.environment, profile)
    if over:
        raise ConfigError(
            f"refused by the blast-radius caps of '{exp.environment}': " + "; ".join(over)
        )
    digest = spec_hash(exp)
    journal = Journal(out_dir / "rehearsal.jsonl")
    run_id = new_run_id()
    journal.write(
        RehearsalRecord(
            schema_version=SCHEMA_VERSION,
            run_id=run_id,
            spec_hash=digest,
            spec=exp.model_dump(mode="json"),
        )
    )
    runner = Runner(exp, base_dir=base_dir, journal=journal, run_id=run_id, registry=registry)
    steps: list[RehearsalStep] = []

    def step(name: str, ok: bool, detail: str) -> None:
        steps.append(RehearsalStep(name, ok, detail))
        journal.write(RehearsalStepRecord(name=name, ok=ok, detail=detail))
        on_step(steps[-1])

    try:
        async with AsyncExitStack() as stack:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            try:
                await runner.prepare(stack, session)
            except MlchaosError as exc:
                step("preflight", False, str(exc))
            else:
                step("preflight", True, "proxies, agents and targets answer")
                for i, injector in enumerate(runner.scheduled):
                    try:
                        step(f"fault {i}: {injector.label}", True, await injector.rehearse())
                    except MlchaosError as exc:
                        step(f"fault {i}: {injector.label}", False, str(exc))
                if exp.traffic.mode == "live":
                    for name, client in _http_clients(runner).items():
                        step(f"cohorts on {name}", *await _rehearse_cohorts(client, exp))
                for action in exp.rollback:
                    step(f"rollback {action.name}", *await check_action(action))
    finally:
        passed = bool(steps) and all(s.ok for s in steps)
        failed = [s.name for s in steps if not s.ok]
        detail = "all steps passed" if passed else f"failed: {', '.join(failed)}"
        registry.record_rehearsal(
            digest,
            {
                "spec_hash": digest,
                "title": exp.title,
                "passed": passed,
                "time": time.time(),
                "detail": detail,
                "journal": str(journal.path),
            },
        )
        journal.write(RehearsalResultRecord(passed=passed, detail=detail, spec_hash=digest))
        journal.close()
    return passed, steps


def _http_clients(runner: Runner) -> dict[str, ControlClient]:
    from mlchaos.proxy import Protocol  # noqa: PLC0415

    http = {p.name for p in runner.exp.proxies if p.protocol is Protocol.HTTP}
    return {name: c for name, c in runner.endpoints.proxies.items() if name in http}


async def _rehearse_cohorts(client: ControlClient, exp: Experiment) -> tuple[bool, str]:
    """Cohorts at 0% (no request changes arm), seen set, cleared, seen gone."""
    from mlchaos.proxy._live import Cohorts  # noqa: PLC0415

    zero = Cohorts.model_validate({"experiment": "0%", "control": "0%", "lease": exp.lease})
    try:
        await client.set_cohorts(zero)
        seen = (await client.cohorts())["cohorts"] is not None
        await client.clear_cohorts()
        gone = (await client.cohorts())["cohorts"] is None
    except MlchaosError as exc:
        return False, str(exc)
    if not (seen and gone):
        return False, "the proxy did not show the cohorts set, or kept them after clearing"
    return True, "set at 0%, seen, cleared, gone"
