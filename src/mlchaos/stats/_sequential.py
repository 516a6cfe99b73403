"""Tests that may be checked after every request: mixture SPRTs for a difference of rates and
for one rate against a bound.

Checking a fixed-sample interval every tick and stopping the first time it looks bad inflates
false alarms far beyond alpha (the more looks, the worse). The mixture sequential probability ratio
test (Johari, Koomen, Pekelis & Walsh, "Peeking at A/B Tests", KDD 2017) stays valid under
continuous monitoring: with the difference of two rates D (experiment - control) and its
variance V, and a normal mixing distribution of variance tau^2 around the bound theta0,

    L = sqrt(V / (V + tau^2)) * exp(tau^2 (D - theta0)² / (2 V (V + tau^2)))

and the bound is declared crossed when L >= 1/alpha on the harmful side of theta0. By Ville's
inequality the chance that this ever happens while the true difference is within the bound is
at most alpha, however often it is checked.

V is the unpooled variance p1(1-p1)/n1 + p2(1-p2)/n2 with each rate taken as (k+1)/(n+2). A
pooled variance is right only when the two rates are equal: on a non-zero bound with unequal
arms (1:19, the true difference on a 10-point bound) it tripped 41% of runs; the +1/+2 keeps
zero events (0 of 20 against 0 of 20) from giving zero variance and infinite evidence.

One rate against a fixed bound p0 (an absolute guardrail: error rate <= 2%, or a quantile, since
"p99 <= Y" is "at most 1% of requests take longer than Y") uses the exact binomial likelihood
ratio mixed over rates above the bound (a Beta(1, (1-p0)/p0) prior, mean p0, truncated to
(p0, 1]). Each component (p/p0)^k ((1-p)/(1-p0))^(n-k) with p > p0 is a supermartingale whenever
the true rate is at most p0, so their mixture is too, and Ville's inequality bounds the chance it
ever reaches 1/alpha by alpha: a confidence sequence, valid however often it is looked at (the
construction of Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric, nonasymptotic
confidence sequences", Ann. Statist. 2021, for the Bernoulli case; quantiles reduce to it as in
Howard & Ramdas, "Sequential estimation of quantiles", Bernoulli 2022).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["SequentialTest", "msprt_difference", "msprt_rate"]


@dataclass(frozen=True, slots=True)
class SequentialTest:
    """``crossed`` when the evidence (``statistic`` = L) reaches ``threshold`` = 1/alpha."""

    difference: float
    statistic: float
    threshold: float
    crossed: bool


def msprt_difference(
    k1: float,
    n1: float,
    k2: float,
    n2: float,
    *,
    bound: float,
    side: Literal["max", "min"],
    alpha: float = 0.05,
    tau: float | None = None,
) -> SequentialTest:
    """Has rate k1/n1 - rate k2/n2 crossed ``bound`` (above it for ``max``, below for ``min``)?

    ``tau``: the spread of differences the test is tuned to find; default the bound's size,
    at least 0.02 (two points). Clustered samples pass effective counts (k / deff, n / deff).
    """
    threshold = 1 / alpha
    if n1 == 0 or n2 == 0:
        return SequentialTest(math.nan, 0.0, threshold, False)
    diff = k1 / n1 - k2 / n2
    p1, p2 = (k1 + 1) / (n1 + 2), (k2 + 1) / (n2 + 2)
    var = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    tau2 = (tau if tau is not None else max(abs(bound), 0.02)) ** 2
    harmful = diff > bound if side == "max" else diff < bound
    exponent = tau2 * (diff - bound) ** 2 / (2 * var * (var + tau2))
    # log L, so a large exponent cannot overflow
    log_lr = 0.5 * math.log(var / (var + tau2)) + exponent
    statistic = math.exp(min(log_lr, 700.0))
    return SequentialTest(diff, statistic, threshold, harmful and log_lr >= math.log(threshold))


def msprt_rate(
    k: float,
    n: float,
    *,
    bound: float,
    side: Literal["max", "min"],
    alpha: float = 0.05,
) -> SequentialTest:
    """Has the rate k/n crossed ``bound`` (above it for ``max``, below for ``min``), in a test
    that may be repeated after every request? (``difference`` is the rate minus the bound;
    clustered samples pass effective counts k / deff, n / deff.)"""
    from scipy.special import betaincc, betaln  # noqa: PLC0415

    threshold = 1 / alpha
    if n == 0:
        return SequentialTest(math.nan, 0.0, threshold, False)
    difference = k / n - bound
    if side == "min":  # a rate falling below p0 is its complement rising above 1 - p0
        k, p0 = n - k, 1.0 - bound
    else:
        p0 = bound
    if p0 >= 1.0:
        return SequentialTest(difference, 0.0, threshold, False)
    if p0 <= 0.0:  # a bound of 0: one event is conclusive
        return SequentialTest(difference, math.inf if k else 0.0, threshold, k > 0)
    a, b = 1.0, (1.0 - p0) / p0
    tail = float(betaincc(a + k, b + n - k, p0))  # posterior mass above p0
    if tail <= 0.0:
        return SequentialTest(difference, 0.0, threshold, False)
    log_lr = (
        betaln(a + k, b + n - k)
        + math.log(tail)
        - betaln(a, b)
        - math.log(float(betaincc(a, b, p0)))
        - k * math.log(p0)
        - (n - k) * math.log1p(-p0)
    )
    statistic = math.exp(min(log_lr, 700.0))
    crossed = bool(k / n > p0 and log_lr >= math.log(threshold))
    return SequentialTest(difference, statistic, threshold, crossed)
