"""Sample-ratio mismatch: the split the arms received against the configured one."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import chisquare

from mlchaos.analysis import CheckStatus, sample_ratio_check
from mlchaos.arms import ArmCode, ArmSplit
from mlchaos.observations import ObservationStore
from mlchaos.stats import sample_ratio, sample_ratio_sequential
from mlchaos.units import Share


def test_the_chi_square_agrees_with_scipy_and_flags_only_strong_mismatches() -> None:
    for first, second, share in ((520, 480, 0.5), (100, 1900, 0.05), (600, 400, 0.5)):
        total = first + second
        expected = [total * share, total * (1 - share)]
        test = sample_ratio(first, second, share, 1 - share)
        assert math.isclose(test.p_value, chisquare([first, second], expected).pvalue)
    assert not sample_ratio(520, 480, 0.5, 0.5).mismatch  # p = 0.21
    assert sample_ratio(600, 400, 0.5, 0.5).mismatch  # p = 2.5e-10
    assert sample_ratio(60, 40, 0.05, 0.05).expected == 0.5  # 5% : 5% is an even split
    assert math.isnan(sample_ratio(10, 0, 1.0, 0.0).p_value)  # 100 : 0 has nothing to test


def test_checked_every_second_the_sequential_test_keeps_its_rate_and_finds_a_real_skew() -> None:
    """A 50:50 split watched once a second for 60 s (20 requests a second), 300 seeded runs:
    no false alarm at alpha 0.001; a 60:40 skew is found in every run."""
    rng = np.random.default_rng(41)

    def alarms(share: float, runs: int) -> int:
        first = rng.binomial(20, share, (runs, 60)).cumsum(axis=1)
        hit = 0
        for row in first:
            hit += any(
                sample_ratio_sequential(int(k), 20 * (t + 1) - int(k), 0.5, 0.5)
                for t, k in enumerate(row)
            )
        return hit

    assert alarms(0.5, 300) <= 1
    assert alarms(0.6, 30) == 30


def test_keys_are_counted_when_requests_cluster_by_key() -> None:
    """Ten keys in each arm, but the experiment's keys send nine times as many requests: keys
    were assigned evenly, so the split holds (requests would have said otherwise)."""
    store = ObservationStore()
    split = ArmSplit(experiment=Share(0.5), control=Share(0.5))
    for key in range(20):
        arm = ArmCode.EXPERIMENT if key < 10 else ArmCode.CONTROL
        for _ in range(90 if arm == ArmCode.EXPERIMENT else 10):
            store.add(arm=arm, start=0.0, latency=0.01, status=200, key=key)
    check = sample_ratio_check(store, split)
    assert check is not None and check.status is CheckStatus.HELD
    assert "experiment 10 and control 10 keys" in check.detail
    unkeyed = ObservationStore()
    for i in range(1000):
        unkeyed.add(arm=ArmCode.EXPERIMENT if i % 10 else ArmCode.CONTROL, start=0.0, latency=0.0)
    check = sample_ratio_check(unkeyed, split)
    assert check is not None and check.status is CheckStatus.VIOLATED
