"""The sample-ratio check: the split the arms received, against the one configured.

It joins the hypothesis as one more check, so every report shows it; when it fails, the other
checks are unsure (``judge_hypothesis``'s doubts): comparing arms that did not get the traffic
they were meant to says nothing about the fault.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from mlchaos.analysis._evaluate import CheckResult, CheckStatus, Unit
from mlchaos.arms import ArmCode
from mlchaos.spec import Judge

if TYPE_CHECKING:
    from mlchaos.arms import ArmSplit
    from mlchaos.observations import ObservationStore

__all__ = ["SRM_NAME", "arm_counts", "doubts", "sample_ratio_check"]

SRM_NAME = "arms got their configured split"


def arm_counts(store: ObservationStore) -> tuple[int, int, str]:
    """What was assigned to each arm (experiment, control) and in what unit: distinct keys when
    the requests carry keys (keys are what is assigned), else requests."""
    from mlchaos import stats  # noqa: PLC0415

    arm, keys = store.column("arm"), store.column("key")
    exp, ctl = arm == ArmCode.EXPERIMENT, arm == ArmCode.CONTROL
    if (keys[exp | ctl] >= 0).any():
        return stats.distinct_keys(keys[exp]), stats.distinct_keys(keys[ctl]), "keys"
    return int(exp.sum()), int(ctl.sum()), "requests"


def sample_ratio_check(store: ObservationStore, split: ArmSplit) -> CheckResult | None:
    """The chi-square test of the split at p < 0.001; None when the split has a zero share."""
    from mlchaos import stats  # noqa: PLC0415

    share_e, share_c = split.experiment.fraction, split.control.fraction
    if share_e <= 0 or share_c <= 0:
        return None
    first, second, unit = arm_counts(store)
    test = stats.sample_ratio(first, second, share_e, share_c)
    expected = share_e / (share_e + share_c)
    bounds = f"experiment share = {expected:.1%} (chi-square p >= {stats.SRM_ALPHA:g})"
    if first + second == 0:
        return CheckResult(
            SRM_NAME, CheckStatus.NO_DATA, None, bounds, Judge.POINT, "no arm saw any traffic"
        )
    estimate = stats.proportion(first, first + second)
    detail = (
        f"experiment {first} and control {second} {unit}: {test.observed:.1%} against "
        f"{expected:.1%} configured (p = {test.p_value:.2g})"
    )
    status = CheckStatus.VIOLATED if test.mismatch else CheckStatus.HELD
    return CheckResult(SRM_NAME, status, estimate, bounds, Judge.POINT, detail, Unit.SHARE)


class _Reach(Protocol):
    @property
    def never_fired(self) -> bool: ...

    def describe(self) -> str: ...


def doubts(reach: Iterable[_Reach], srm: CheckResult | None) -> list[str]:
    """Why the hypothesis was not put to the test, if it was not: faults that never fired (see
    ``mlchaos.journal.fault_reach``) and a sample-ratio mismatch."""
    out = [f"fault never fired ({r.describe()})" for r in reach if r.never_fired]
    if srm is not None and srm.status is CheckStatus.VIOLATED:
        out.append(f"sample-ratio mismatch ({srm.detail})")
    return out
