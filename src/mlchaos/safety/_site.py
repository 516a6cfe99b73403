"""The site configuration: blast-radius caps per environment, set by whoever runs mlchaos.

An experiment names its ``environment``; the site's profile of that name caps it. Without a
site file (``--site FILE``, else ``$MLCHAOS_SITE_CONFIG``, else ``/etc/mlchaos/site.yaml`` when
it exists) the built-in profiles apply:

==============  ========  =======  ========  ==========================================
profile         share     targets  duration  also
==============  ========  =======  ========  ==========================================
``sandbox``     100%      10       1h        every address on this machine: loopback (127/8,
                                             ::1), or a network namespace on it
``staging``     5%        1        15min
``production``  5%        1        15min     ``--confirm-production``, and a passed
                                             rehearsal of the same spec within 24h
==============  ========  =======  ========  ==========================================

A profile written in the site file replaces the built-in one of that name; a field it leaves out
takes the strict default (5%, 1 target, 15 min). Every profile allows one experiment at a time
per target.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlchaos.units import Duration, PositiveDuration, Share

__all__ = ["DEFAULT_SITE_FILE", "Profile", "SiteConfig", "load_site"]

DEFAULT_SITE_FILE = Path("/etc/mlchaos/site.yaml")


class Profile(BaseModel):
    """The caps of one environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_experiment_share: Share = Field(
        Share(0.05), description="largest share of traffic in the experiment arm"
    )
    max_targets: int = Field(1, ge=1, description="most distinct targets faults may affect")
    max_duration: PositiveDuration = Field(
        Duration(900.0), description="longest traffic (each run of a sweep)"
    )
    max_lease: PositiveDuration = Field(
        Duration(15.0),
        description="longest lease of a fault: how long it can outlive a runner that died",
    )
    process_targets: list[str] | None = Field(
        [],
        description="regular expressions: a process fault may act only on processes whose "
        "command line matches one (checked on this machine at admission); empty: no process "
        "fault at all; null: any (the sandbox)",
    )
    loopback_only: bool = Field(False, description="every address must be on this machine")

    @field_validator("process_targets")
    @classmethod
    def _regexes(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or []:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value

    require_confirmation: bool = Field(
        False, description="'mlchaos run' needs --confirm-production"
    )
    require_rehearsal: PositiveDuration | None = Field(
        None, description="a passed 'mlchaos rehearse' of the same spec no older than this"
    )


_BUILT_IN = {
    "sandbox": Profile(
        max_experiment_share=Share(1.0),
        max_targets=10,
        max_duration=Duration(3600.0),
        max_lease=Duration(30.0),
        process_targets=None,
        loopback_only=True,
    ),
    "staging": Profile(),
    "production": Profile(require_confirmation=True, require_rehearsal=Duration(86400.0)),
}


class SiteConfig(BaseModel):
    """The site file: profiles by environment name (merged over the built-in ones)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profiles: dict[str, Profile] = {}

    def profile(self, environment: str) -> Profile | None:
        return self.all_profiles().get(environment)

    def all_profiles(self) -> dict[str, Profile]:
        return {**_BUILT_IN, **self.profiles}


def load_site(path: Path | None) -> tuple[SiteConfig, Path | None]:
    """The site configuration and the file it came from (None: the built-in profiles).

    ``path`` given must exist; else ``$MLCHAOS_SITE_CONFIG`` (must exist when set), else
    :data:`DEFAULT_SITE_FILE` when it exists. A bad file raises :class:`SpecError`.
    """
    from mlchaos.spec import load_model  # noqa: PLC0415

    if path is None:
        env = os.environ.get("MLCHAOS_SITE_CONFIG")
        if env:
            path = Path(env)
        elif DEFAULT_SITE_FILE.exists():
            path = DEFAULT_SITE_FILE
        else:
            return SiteConfig(), None
    return load_model(path, SiteConfig), path
