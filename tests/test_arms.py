"""The stable arm hash: the same key always lands in the same arm, in the configured shares."""

from __future__ import annotations

from collections import Counter

import pytest

from mlchaos.arms import Arm, arm_for_key, arm_for_unit


def test_same_key_gives_same_arm_every_time() -> None:
    arms = {arm_for_key(f"user-{i}", 0.05, 0.05) for _ in range(3) for i in [42]}
    assert len(arms) == 1


def test_salt_changes_the_assignment() -> None:
    keys = [f"k{i}" for i in range(2000)]
    a = [arm_for_key(k, 0.5, 0.5, salt="a") for k in keys]
    b = [arm_for_key(k, 0.5, 0.5, salt="b") for k in keys]
    assert a != b


def test_hash_shares_match_configuration() -> None:
    counts = Counter(arm_for_key(str(i), 0.05, 0.05) for i in range(40_000))
    assert abs(counts[Arm.EXPERIMENT] / 40_000 - 0.05) < 0.006
    assert abs(counts[Arm.CONTROL] / 40_000 - 0.05) < 0.006


def test_unit_interval_boundaries() -> None:
    assert arm_for_unit(0.0, 0.1, 0.1) is Arm.EXPERIMENT
    assert arm_for_unit(0.1, 0.1, 0.1) is Arm.CONTROL
    assert arm_for_unit(0.2, 0.1, 0.1) is None


def test_an_arm_key_may_name_the_rows_of_a_batch_with_one_wildcard() -> None:
    from pydantic import ValidationError

    from mlchaos.arms import ArmKey

    assert ArmKey(json_field="entities.user_id[*]").json_field == "entities.user_id[*]"
    for bad in ("a[*].b[*]", "a[?]", "a[#]"):
        with pytest.raises(ValidationError, match="at most one"):
            ArmKey(json_field=bad)
