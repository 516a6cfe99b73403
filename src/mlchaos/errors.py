"""The exceptions mlchaos raises, and the exit code each one maps to.

Hierarchy::

    MlchaosError                      root of every error mlchaos raises on purpose
    ├── ConfigError (also ValueError) invalid input: experiment file, flags, config  → exit 2
    │   └── SpecError                 an experiment file with one or more problems
    └── RunError                      the system or the tool could not run           → exit 3
        ├── PreflightError            a target, proxy or fault failed its check before injection
        ├── ProxyStartError           a proxy could not bind or reach its upstream
        └── ControlAPIError           a proxy's control API refused or could not be reached

    ExperimentAborted                 a control signal, not an error: a guardrail tripped
                                      or the operator interrupted; the runner rolls back.

Context (phase, fault, target) is attached with :func:`add_context` where an error passes
through, so messages say *where* without every caller adding it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EXIT_CANNOT_RUN",
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "AgentStartError",
    "ConfigError",
    "ControlAPIError",
    "ExperimentAborted",
    "MlchaosError",
    "PreflightError",
    "ProxyStartError",
    "RunError",
    "SpecError",
    "SpecIssue",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_CANNOT_RUN = 3


class MlchaosError(Exception):
    """Root of every error mlchaos raises on purpose."""

    exit_code: int = EXIT_CANNOT_RUN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.context: list[str] = []

    def add_context(self, where: str) -> None:
        """Prefix where the error passed through (outermost last added, shown first)."""
        self.context.insert(0, where)

    def __str__(self) -> str:
        base = super().__str__()
        return ": ".join([*self.context, base]) if self.context else base


class ConfigError(MlchaosError, ValueError):
    """Invalid input: the user must change a file or a flag."""

    exit_code = EXIT_INVALID


@dataclass(frozen=True)
class SpecIssue:
    """One problem in an experiment file, located by its path (and line when known)."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def render(self, source: str | None = None) -> str:
        where = source or ""
        if self.line is not None:
            where = f"{where}:{self.line}:{self.column or 1}" if where else f"line {self.line}"
        prefix = f"{where}: " if where else ""
        path = f"{self.path}: " if self.path else ""
        return f"{prefix}{path}{self.message}"


class SpecError(ConfigError):
    """An experiment file with one or more problems; all are reported together."""

    def __init__(self, source: str, issues: list[SpecIssue]) -> None:
        self.source = source
        self.issues = issues
        count = len(issues)
        header = f"{source}: {count} problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([header, *("  " + i.render(source) for i in issues)]))


class RunError(MlchaosError):
    """The system under test or the tool could not run the experiment."""

    exit_code = EXIT_CANNOT_RUN


class PreflightError(RunError):
    """A check before injection failed; nothing was injected."""


class ProxyStartError(RunError):
    """A proxy could not start (port in use, upstream down)."""


class AgentStartError(RunError):
    """The agent could not start (its port in use, its token file unwritable)."""


class ControlAPIError(RunError):
    """A proxy's control API could not be reached or refused the request."""


class ExperimentAborted(Exception):  # noqa: N818 - a control signal, not an error
    """Stop the experiment now and roll back: a guardrail tripped or the operator interrupted."""

    def __init__(self, reason: str, evidence: dict[str, object] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.evidence = evidence or {}
