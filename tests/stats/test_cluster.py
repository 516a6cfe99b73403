"""Clustered traffic: requests of one key are not independent, and the statistics say so."""

from __future__ import annotations

import numpy as np

from mlchaos.stats import design_effect, distinct_keys, msprt_difference, proportion


def test_the_design_effect_is_one_for_independent_rows_and_large_for_clustered_ones() -> None:
    rng = np.random.default_rng(3)
    hits = rng.random(5000) < 0.1
    assert design_effect(hits, np.arange(5000)) < 1.001  # one request per key
    assert design_effect(hits, np.full(5000, -1)) == 1.0  # no keys at all
    assert 0.8 < design_effect(hits, rng.integers(0, 500, 5000)) < 1.3
    # Five users, each failing always or never: the rows are five observations, not 5000.
    users = np.repeat(np.arange(5), 1000)
    clustered = np.repeat([True, False, False, False, False], 1000)
    assert design_effect(clustered, users) > 900
    assert design_effect(np.ones(10, dtype=bool), np.zeros(10, dtype=int)) == 1.0  # p = 1
    assert design_effect([True, False, True], [7, 7, 7]) == 3.0  # one key: one unit
    assert distinct_keys([5, 5, -1, 9]) == 2


def test_a_clustered_share_gets_the_interval_of_its_effective_sample() -> None:
    plain = proportion(200, 1000, 0.95)
    clustered = proportion(200, 1000, 0.95, design=100.0)  # like 10 independent rows
    assert clustered.value == plain.value == 0.2
    assert clustered.high - clustered.low > 3 * (plain.high - plain.low)
    assert clustered.to_dict()["design"] == 100.0 and "design" not in plain.to_dict()


def _false_trips(keys_per_arm: int, runs: int, seed: int) -> tuple[float, float]:
    """A/A with per-key error rates (Beta, mean 5%, concentration 20: each user has their own
    rate), arms of `keys_per_arm` users each, 10 requests per arm per tick over 400 ticks,
    checked every 5 ticks against 'no worse than control': the share of runs the mSPRT trips
    with the cluster-robust effective counts, and assuming independence."""
    rng = np.random.default_rng(seed)
    robust = naive = 0
    for _ in range(runs):
        rates = rng.beta(1.0, 19.0, (2, keys_per_arm))
        k = np.zeros((2, keys_per_arm))
        n = np.zeros((2, keys_per_arm))
        r_hit = n_hit = False
        for tick in range(400):
            for arm in (0, 1):
                who = rng.integers(0, keys_per_arm, 10)
                np.add.at(n[arm], who, 1)
                np.add.at(k[arm], who, rng.random(10) < rates[arm, who])
            if tick % 5:
                continue
            counts = []
            for arm in (0, 1):
                rows_key = np.repeat(np.arange(keys_per_arm), n[arm].astype(int))
                rows_hit = np.concatenate(
                    [np.arange(int(c)) < int(e) for e, c in zip(k[arm], n[arm], strict=True)]
                )
                d = design_effect(rows_hit, rows_key)
                counts.append((k[arm].sum(), n[arm].sum(), d))
            (k1, n1, d1), (k2, n2, d2) = counts
            r_hit = (
                r_hit
                or msprt_difference(
                    k1 / d1, n1 / d1, k2 / d2, n2 / d2, bound=0.0, side="max"
                ).crossed
            )
            n_hit = n_hit or msprt_difference(k1, n1, k2, n2, bound=0.0, side="max").crossed
        robust += r_hit
        naive += n_hit
    return robust / runs, naive / runs


def test_with_few_keys_per_arm_the_cluster_robust_test_keeps_alpha_and_a_naive_one_does_not() -> (
    None
):
    runs = 60
    robust, naive = _false_trips(5, runs, seed=31)
    assert robust <= 0.05 + 2 * (0.05 * 0.95 / runs) ** 0.5, robust
    assert naive > 0.15, naive  # independence assumed: users mistaken for a difference
    robust, _ = _false_trips(500, runs, seed=32)
    assert robust <= 0.05 + 2 * (0.05 * 0.95 / runs) ** 0.5, robust
