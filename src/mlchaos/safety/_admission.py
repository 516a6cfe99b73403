"""May this experiment start now? Caps, production confirmation, rehearsal, the time window.

:func:`admit` runs before anything is contacted: a spec over a cap, a production run without
``--confirm-production`` or without a recent passed rehearsal is refused (exit 2 for what the
spec or command line must change, 3 for what must happen first). :func:`wait_for_window` refuses
outside the schedule's windows, or waits for the next one with ``--wait-for-window``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlchaos.errors import ConfigError, RunError
from mlchaos.safety._caps import cap_violations
from mlchaos.safety._site import Profile, SiteConfig

if TYPE_CHECKING:
    from mlchaos.safety._registry import Registry
    from mlchaos.spec import Experiment
    from mlchaos.spec._schedule import Schedule

__all__ = ["Admission", "admit", "spec_hash", "wait_for_window"]

_MAX_SLEEP_S = 30.0  # re-check the window at least this often while waiting


@dataclass(frozen=True)
class Admission:
    """What the operator said: the site's profiles, and the flags of ``mlchaos run``."""

    site: SiteConfig = field(default_factory=SiteConfig)
    site_path: Path | None = None
    confirm_production: bool = False
    wait_for_window: bool = False


def spec_hash(exp: Experiment) -> str:
    """The hash of the resolved spec (variables substituted): what a rehearsal vouches for."""
    canonical = json.dumps(exp.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def admit(exp: Experiment, admission: Admission, registry: Registry) -> Profile:
    """The profile that caps ``exp``; ConfigError or RunError saying why it may not run."""
    env = exp.environment
    profile = admission.site.profile(env)
    where = f"site file {admission.site_path}" if admission.site_path else "built-in profiles"
    if profile is None:
        known = ", ".join(sorted(admission.site.all_profiles()))
        raise ConfigError(f"environment '{env}' has no profile ({where}: {known})")
    over = cap_violations(exp, env, profile)
    if over:
        raise ConfigError(
            f"refused by the blast-radius caps of '{env}' ({where}): " + "; ".join(over)
        )
    if profile.require_confirmation and not admission.confirm_production:
        raise ConfigError(
            f"environment '{env}' needs an explicit confirmation: run again with "
            "--confirm-production"
        )
    if profile.require_rehearsal is not None:
        _check_rehearsal(exp, env, profile, registry)
    return profile


def _check_rehearsal(exp: Experiment, env: str, profile: Profile, registry: Registry) -> None:
    assert profile.require_rehearsal is not None
    digest = spec_hash(exp)
    last = registry.rehearsal(digest)
    hint = f"run 'mlchaos rehearse' on this spec first (spec hash {digest[:12]})"
    if last is None:
        raise RunError(f"environment '{env}' needs a passed rehearsal of this spec: {hint}")
    if not last.get("passed"):
        raise RunError(f"the last rehearsal of this spec failed ({last.get('detail')}): {hint}")
    age = time.time() - float(last.get("time", 0.0))
    if age > profile.require_rehearsal.seconds:
        raise RunError(
            f"the last passed rehearsal of this spec is {age / 3600:.1f}h old, older than the "
            f"{profile.require_rehearsal} '{env}' allows: {hint}"
        )


async def wait_for_window(
    schedule: Schedule,
    *,
    wait: bool,
    on_wait: Callable[[str], object] = print,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Return once a window is open; RunError outside one unless ``wait``."""
    announced = False
    while not schedule.open_at(current := now()):
        try:
            opens = schedule.next_open(current)
        except ValueError as exc:
            raise RunError(str(exc)) from None
        if not wait:
            raise RunError(
                f"outside the allowed window ({schedule.describe()}); next opens "
                f"{opens:%Y-%m-%d %H:%M %Z}; 'mlchaos run --wait-for-window' waits for it"
            )
        if not announced:
            when = f"{opens:%Y-%m-%d %H:%M %Z}"
            on_wait(f"waiting for the window ({schedule.describe()}): it opens {when}")
            announced = True
        await sleep(min(_MAX_SLEEP_S, max(0.05, (opens - current).total_seconds())))
