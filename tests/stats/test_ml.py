"""ML-quality statistics, checked against definitions and on simulated data with a known truth.

AUC: binormal scores (negatives N(0,1), positives N(d,1)) have AUC = Φ(d/√2); DeLong intervals
must cover it near the nominal 95%. Drift: two samples of one distribution must raise PSI/KS
alarms at about the stated alpha at every sample size (a fixed PSI threshold of 0.1 does not),
and a planted shift must be found. All simulations are seeded, so the measured rates quoted in
the docstrings are what this code gives (the assertions allow the bands, not the exact figures, so
that a new numpy random stream does not fail them).
"""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, norm

from mlchaos.stats import DriftTest, auc, auc_difference, ks, ks_distance, psi
from mlchaos.stats._auc import _delong

Arrays = tuple[np.ndarray, np.ndarray]
SEED = 20240611


def brute_force_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


def brute_force_delong_variance(scores: np.ndarray, labels: np.ndarray) -> float:
    """DeLong's variance from the O(m·n) kernel matrix, as in the 1988 paper."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
    return float(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)


def binormal(rng: np.random.Generator, d: float, n_pos: int, n_neg: int) -> Arrays:
    labels = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    return rng.normal(d * labels, 1.0), labels


def true_auc(d: float) -> float:
    return float(norm.cdf(d / math.sqrt(2)))


# --- AUC: definition and known values --------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_its_delong_variance_match_the_pairwise_definitions_with_and_without_ties(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    labels = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(float)
    for scores in (rng.integers(0, 5, n).astype(float), rng.normal(labels * 0.7, 1.0)):
        value, var, n_pos, n_neg = _delong(scores, labels)
        assert value == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)
        u = mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
        assert value == pytest.approx(u / (n_pos * n_neg), abs=1e-12)
        assert var == pytest.approx(brute_force_delong_variance(scores, labels), rel=1e-9)
        assert auc(scores, labels).value == value


def test_perfect_inverted_and_constant_scores_have_the_known_auc() -> None:
    y = np.array([0, 0, 0, 1, 1, 1.0])
    perfect = auc(np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), y)
    inverted = auc(np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), y)
    constant = auc(np.full(6, 0.5), y)
    assert (perfect.value, inverted.value, constant.value) == (1.0, 0.0, 0.5)
    assert perfect.n == 6 and perfect.confidence == 0.95


def test_a_perfect_auc_gets_the_exact_one_sided_bound_not_a_zero_width_interval() -> None:
    """DeLong's variance is 0 at AUC 1; the bound is (alpha/2)^(1/smaller class)."""
    scores, labels = np.r_[np.arange(10.0), 100 + np.arange(4.0)], np.r_[np.zeros(10), np.ones(4)]
    e = auc(scores, labels, confidence=0.9)
    assert (e.value, e.high) == (1.0, 1.0)
    assert e.low == pytest.approx(0.05**0.25)
    flipped = auc(-scores, labels, confidence=0.9)
    assert (flipped.value, flipped.low) == (0.0, 0.0)
    assert flipped.high == pytest.approx(1 - 0.05**0.25)


def test_auc_interval_lies_in_the_unit_interval_around_the_value_and_narrows_with_n() -> None:
    rng = np.random.default_rng(2)
    widths = []
    for n in (40, 400, 4000):
        e = auc(*binormal(rng, 1.0, n // 2, n // 2))
        assert 0.0 < e.low < e.value < e.high < 1.0
        widths.append(e.high - e.low)
    assert widths[0] > widths[1] > widths[2]


def test_degenerate_auc_input_gives_nan_and_bad_input_a_clear_error() -> None:
    assert math.isnan(auc([], []).value)
    one_class = auc([0.1, 0.2], [1, 1])
    assert math.isnan(one_class.value) and (one_class.low, one_class.high, one_class.n) == (0, 1, 2)
    nan_rows = auc([math.nan, 0.3, 0.4], [0, 1, math.nan])  # NaN rows dropped: one class left
    assert math.isnan(nan_rows.value) and nan_rows.n == 1
    assert auc([0.1, math.nan, 0.9], [0, 0, 1]).value == 1.0
    assert math.isnan(auc_difference([0.1], [1], [0.2, 0.3], [0, 1]).value)
    assert auc_difference([], [], [], []).to_dict()["value"] is None
    with pytest.raises(ValueError, match="differ in length"):
        auc([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="differ in length"):
        auc_difference([0.1, 0.2], [0, 1], [0.3], [0, 1])
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        auc([0.1, 0.2, 0.3], [0, 1, 2])
    with pytest.raises(ValueError, match="confidence"):
        auc([0.1, 0.2], [0, 1], confidence=95)


# --- AUC: coverage on simulated data ----------------------------------------------------------


def auc_coverage(
    seed: int, runs: int, d: tuple[float, float], sizes: tuple[int, int]
) -> dict[str, float]:
    """Coverage of the logit interval (ours) and of the normal interval clipped to [0, 1].

    The separation ``d`` (so the true AUC) and the class sizes are drawn afresh per run, so the
    check is of average coverage over a range rather than at one lucky or unlucky point.
    """
    rng = np.random.default_rng(seed)
    z = norm.ppf(0.975)
    hits = {"logit": 0, "clipped": 0}
    for _ in range(runs):
        di = float(rng.uniform(*d))
        n_pos, n_neg = (int(k) for k in rng.integers(sizes[0], sizes[1] + 1, 2))
        scores, labels = binormal(rng, di, n_pos, n_neg)
        truth = true_auc(di)
        e = auc(scores, labels)
        hits["logit"] += e.low <= truth <= e.high
        value, var, _, _ = _delong(scores, labels)
        hits["clipped"] += max(0, value - z * var**0.5) <= truth <= min(1, value + z * var**0.5)
    return {k: v / runs for k, v in hits.items()}


def test_the_auc_interval_covers_the_true_auc_near_nominal() -> None:
    """100-300 per class, true AUC drawn from 0.64-0.98 (d in [0.5, 3]), 1000 runs.

    Measured coverage: 95.2% (the clipped normal interval: 94.4%).
    """
    coverage = auc_coverage(seed=SEED, runs=1000, d=(0.5, 3.0), sizes=(100, 300))
    assert 0.92 <= coverage["logit"] <= 0.98, coverage


def test_the_logit_interval_covers_better_than_the_clipped_one_in_small_samples() -> None:
    """20-40 per class, true AUC drawn from 0.86-0.98 (d in [1.5, 3]), 1000 runs:
    logit 94.2%, clipped normal 86.2%. This is why :func:`auc` uses the logit scale.
    """
    coverage = auc_coverage(seed=SEED, runs=1000, d=(1.5, 3.0), sizes=(20, 40))
    assert 0.93 <= coverage["logit"] <= 0.97
    assert coverage["clipped"] < 0.92


def test_near_perfect_small_samples_still_cover_thanks_to_the_exact_bound() -> None:
    """10 per class, true AUC 0.998, 1000 runs: 97.7%; 85.8% of the samples separate perfectly,
    so with a zero-width interval at an observed AUC of 1 coverage would be 11.9%."""
    rng = np.random.default_rng(SEED)
    truth, runs, hits = true_auc(4.0), 1000, 0
    for _ in range(runs):
        e = auc(*binormal(rng, 4.0, 10, 10))
        hits += e.low <= truth <= e.high
    assert hits / runs >= 0.95


def test_the_auc_difference_interval_covers_the_true_difference_near_nominal() -> None:
    """Two independent arms, 100-300 per class each, each arm's true AUC drawn from 0.64-0.96
    (d in [0.5, 2.5]), 1000 runs. Measured coverage: 95.4%."""
    rng = np.random.default_rng(SEED)
    runs, hits = 1000, 0
    for _ in range(runs):
        d_a, d_b = (float(x) for x in rng.uniform(0.5, 2.5, 2))
        sizes = [int(k) for k in rng.integers(100, 301, 4)]
        a = binormal(rng, d_a, sizes[0], sizes[1])
        b = binormal(rng, d_b, sizes[2], sizes[3])
        e = auc_difference(*a, *b)
        assert e.n == sum(sizes)
        hits += e.low <= true_auc(d_a) - true_auc(d_b) <= e.high
    assert 0.92 <= hits / runs <= 0.98


# --- Drift ------------------------------------------------------------------------------------


def no_change_alarm_rates(seed: int, runs: int, n_ref: int, n_cur: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    alarms = {"psi": 0, "ks": 0, "fixed_0.1": 0}
    for _ in range(runs):
        ref, cur = rng.normal(size=n_ref), rng.normal(size=n_cur)
        p = psi(ref, cur)
        alarms["psi"] += p.drift
        alarms["ks"] += ks(ref, cur).drift
        alarms["fixed_0.1"] += p.statistic > 0.1
    return {k: v / runs for k, v in alarms.items()}


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "runs"),
    [(200, 2000, 400), (2000, 200, 400), (1000, 1000, 400), (100, 100, 120), (20, 20, 120)],
)
def test_psi_and_ks_false_alarm_at_about_alpha_at_every_sample_size(
    n_ref: int, n_cur: int, runs: int
) -> None:
    """Same distribution on both sides, alpha = 5%: PSI and KS alarm at about alpha, within two
    Monte-Carlo standard errors. Below 20 values a bin PSI takes a permutation null: the
    chi-square approximation alarmed on 56% of 20-vs-20 and 23% of 50-vs-50 runs.

    The fixed 0.1 threshold alarms on most 100-vs-100 comparisons although nothing changed: under
    no change PSI averages (1/n + 1/m)·9 = 0.18 there. That is why the threshold must know n.
    """
    rates = no_change_alarm_rates(seed=SEED, runs=runs, n_ref=n_ref, n_cur=n_cur)
    bound = 0.05 + 2 * (0.05 * 0.95 / runs) ** 0.5
    assert rates["psi"] <= bound, rates
    assert rates["ks"] <= bound, rates
    if (n_ref, n_cur) == (100, 100):
        assert rates["fixed_0.1"] > 0.5, rates


def test_psi_of_predicted_classes_bins_by_value_and_false_alarms_at_about_alpha() -> None:
    """0/1 predictions (30% ones), 200 vs 2000, 400 runs without change: 3.5% alarms at 5%."""
    rng = np.random.default_rng(SEED)
    runs, alarms = 400, 0
    for _ in range(runs):
        ref = (rng.random(200) < 0.3).astype(float)
        cur = (rng.random(2000) < 0.3).astype(float)
        alarms += psi(ref, cur).drift
    assert 0.02 <= alarms / runs <= 0.09
    shifted = psi(rng.integers(0, 2, 1000), (rng.random(1000) < 0.7).astype(int))
    assert shifted.drift and shifted.statistic > 0.1 and shifted.p_value < 1e-6
    new_class = psi(np.r_[np.zeros(50), np.ones(50)], np.r_[np.zeros(50), np.ones(40), [2] * 10])
    assert new_class.drift  # a value the reference never takes gets its own bin


def test_a_planted_mean_shift_of_a_third_of_an_sd_is_found() -> None:
    """Shift 0.3 sd, 1000 vs 1000, 300 runs: PSI and KS both find it in 100% of them."""
    rng = np.random.default_rng(SEED)
    runs = 300
    found = {"psi": 0, "ks": 0}
    for _ in range(runs):
        ref, cur = rng.normal(size=1000), rng.normal(0.3, 1.0, size=1000)
        found["psi"] += psi(ref, cur).drift
        found["ks"] += ks(ref, cur).drift
    rates = {k: v / runs for k, v in found.items()}
    assert min(rates.values()) >= 0.9, rates


def test_drift_threshold_and_p_value_agree_and_to_dict_is_json_ready() -> None:
    rng = np.random.default_rng(4)
    for shift in (0.0, 0.05, 0.1, 0.3):
        ref, cur = rng.normal(size=500), rng.normal(shift, 1.0, size=800)
        p, k = psi(ref, cur, bins=5, alpha=0.01), ks(ref, cur, alpha=0.01)
        assert p.drift == (p.statistic > p.threshold) == (p.p_value < 0.01)
        assert k.drift == (k.p_value < 0.01)
        assert (p.n_reference, p.n_current, p.method, k.method) == (500, 800, "psi", "ks")
        assert k.threshold == pytest.approx(1.628 * math.sqrt(1300 / (500 * 800)), rel=1e-3)
    d = psi(rng.normal(size=100), rng.normal(size=100)).to_dict()
    assert set(d) == {
        "method",
        "statistic",
        "threshold",
        "p_value",
        "drift",
        "n_reference",
        "n_current",
    }
    json.dumps(d, allow_nan=False)


def test_degenerate_drift_input_gives_nan_without_alarm_and_bad_settings_an_error() -> None:
    for test in (psi([1.0], [2.0]), ks([], [1.0, 2.0]), psi([math.nan] * 5, [1.0, 2.0, 3.0])):
        assert isinstance(test, DriftTest)
        assert math.isnan(test.statistic) and not test.drift
        assert test.to_dict()["statistic"] is None
    constant = psi(np.ones(50), np.ones(80))
    assert (constant.statistic, constant.drift, constant.n_current) == (0.0, False, 80)
    assert psi([1.0, 2.0, math.nan, math.inf], [1.0, 2.0]).n_reference == 2
    with pytest.raises(ValueError, match="alpha"):
        psi([1.0, 2.0], [1.0, 2.0], alpha=5)
    with pytest.raises(ValueError, match="alpha"):
        ks([1.0, 2.0], [1.0, 2.0], alpha=0)
    with pytest.raises(ValueError, match="bins"):
        psi([1.0, 2.0], [1.0, 2.0], bins=1)


def test_the_ks_distance_interval_covers_the_true_distance() -> None:
    """Normal predictions shifted by 0.3 (true KS distance 2Φ(0.15) - 1 = 0.119), 300 vs 300,
    200 seeded runs: the DKW interval covers the true distance in at least 95% of them (it is
    conservative), and 0 is outside it for a large shift."""
    rng = np.random.default_rng(SEED)
    true = 2 * NormalDist().cdf(0.15) - 1
    covered = 0
    for _ in range(200):
        e = ks_distance(rng.normal(size=300), rng.normal(0.3, size=300))
        covered += e.low <= true <= e.high
    assert covered / 200 >= 0.95
    far = ks_distance(rng.normal(size=500), rng.normal(2.0, size=500))
    assert far.low > 0.5 and far.value > 0.6
