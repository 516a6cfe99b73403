"""False aborts of harmless runs, simulated: every guardrail mlchaos checks every tick.

A guardrail is checked every 100 ms for 60 s (600 looks). A run is *harmless* when the truth
sits exactly on the guardrail's bound, the worst case for a test that must not trip: this prints,
for each scenario, the share of simulated runs whose guardrail ever tripped, with its Monte-Carlo
standard error, next to alpha (5%). Each should be within alpha plus two standard errors.

Scenarios (what mlchaos's runner evaluates, through the same library functions):

- comparison with control (``stats.msprt_difference``): equal arms (10 + 10 requests a tick) and
  1:19 arms (1 + 19), bounds of 0 and 10 points, control failing 0.5%, 2% and 20%, the
  experiment arm exactly the bound worse;
- absolute error-rate guardrails (``stats.msprt_rate``): 10 requests a tick failing exactly at
  the bound of 0.5%, 2% and 20%;
- an absolute p99 guardrail: answers slower than the bound exactly 1% of the time;
- clustered keys: 5 and 500 users per arm, each user with their own error rate (Beta(1, 19),
  mean 5%), the arms equal in expectation, "no worse than control", with the cluster-robust
  effective counts (``stats.design_effect``, looked at every 500 ms).

Next to each, the naive rule a fixed-sample 95% interval re-checked every tick would give.

Usage: .venv/bin/python benchmarks/false_aborts.py [--runs 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from mlchaos.stats import (
    design_effect,
    msprt_difference,
    msprt_rate,
    proportion,
    proportion_difference,
)

ALPHA = 0.05
TICKS = 600  # 60 s of 100 ms ticks


@dataclass(frozen=True)
class Outcome:
    """One scenario: the share of harmless runs each rule aborted."""

    name: str
    runs: int
    sequential: float
    naive: float | None

    @property
    def standard_error(self) -> float:
        return math.sqrt(ALPHA * (1 - ALPHA) / self.runs)

    @property
    def within(self) -> bool:
        return self.sequential <= ALPHA + 2 * self.standard_error


def _first(looks: Iterator[tuple[bool, bool]]) -> tuple[bool, bool]:
    """Did each rule (sequential, naive) ever trip over the looks?"""
    seq = naive = False
    for s, n in looks:
        seq, naive = seq or s, naive or n
        if seq and naive:
            break
    return seq, naive


def _run_many(
    name: str, runs: int, one: Callable[[np.random.Generator], tuple[bool, bool]], seed: int
) -> Outcome:
    rng = np.random.default_rng(seed)
    trips = [one(rng) for _ in range(runs)]
    return Outcome(name, runs, sum(s for s, _ in trips) / runs, sum(n for _, n in trips) / runs)


def comparison(
    per_exp: int, per_ctl: int, base: float, bound: float
) -> Callable[..., tuple[bool, bool]]:
    """Experiment failing base + bound, control base; guardrail 'at most `bound` worse'."""

    def one(rng: np.random.Generator) -> tuple[bool, bool]:
        k1 = rng.binomial(per_exp, base + bound, TICKS).cumsum()
        k2 = rng.binomial(per_ctl, base, TICKS).cumsum()

        def looks() -> Iterator[tuple[bool, bool]]:
            for t in range(TICKS):
                n1, n2 = per_exp * (t + 1), per_ctl * (t + 1)
                a, b = int(k1[t]), int(k2[t])
                seq = msprt_difference(a, n1, b, n2, bound=bound, side="max", alpha=ALPHA)
                naive = proportion_difference(a, n1, b, n2, 1 - ALPHA).low > bound
                yield seq.crossed, naive

        return _first(looks())

    return one


def absolute(per_tick: int, rate: float) -> Callable[..., tuple[bool, bool]]:
    """A share of requests (errors, or answers slower than a p-quantile bound) exactly at its
    bound; guardrail 'at most `rate`'."""

    def one(rng: np.random.Generator) -> tuple[bool, bool]:
        k = rng.binomial(per_tick, rate, TICKS).cumsum()

        def looks() -> Iterator[tuple[bool, bool]]:
            for t in range(TICKS):
                n, hits = per_tick * (t + 1), int(k[t])
                seq = msprt_rate(hits, n, bound=rate, side="max", alpha=ALPHA)
                yield seq.crossed, proportion(hits, n, 1 - ALPHA).low > rate

        return _first(looks())

    return one


def clustered(
    keys_per_arm: int, per_tick: int = 10, every: int = 5
) -> Callable[..., tuple[bool, bool]]:
    """Users with their own error rates, arms equal in expectation; 'no worse than control'
    (the naive rule here is the same mSPRT assuming independent requests)."""

    def one(rng: np.random.Generator) -> tuple[bool, bool]:
        rates = rng.beta(1.0, 19.0, (2, keys_per_arm))
        keys = [np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)]
        hits = [np.empty(0, dtype=bool), np.empty(0, dtype=bool)]

        def looks() -> Iterator[tuple[bool, bool]]:
            for t in range(TICKS):
                for arm in (0, 1):
                    who = rng.integers(0, keys_per_arm, per_tick)
                    keys[arm] = np.concatenate([keys[arm], who])
                    hits[arm] = np.concatenate([hits[arm], rng.random(per_tick) < rates[arm, who]])
                if t % every:
                    continue
                (k1, n1), (k2, n2) = ((int(h.sum()), h.size) for h in hits)
                d1, d2 = design_effect(hits[0], keys[0]), design_effect(hits[1], keys[1])
                seq = msprt_difference(k1 / d1, n1 / d1, k2 / d2, n2 / d2, bound=0.0, side="max")
                naive = msprt_difference(k1, n1, k2, n2, bound=0.0, side="max")
                yield seq.crossed, naive.crossed

        return _first(looks())

    return one


def scenarios(runs: int, seed: int = 1) -> Iterator[Outcome]:
    """Every scenario, ``runs`` simulated runs each (seeded, so reproducible)."""
    i = seed * 1000
    for arms, (pe, pc) in (("equal", (10, 10)), ("1:19", (1, 19))):
        for bound in (0.0, 0.10):
            for base in (0.005, 0.02, 0.20):
                i += 1
                name = f"vs control, {arms} arms, bound {bound:.0%}, control {base:.1%}"
                yield _run_many(name, runs, comparison(pe, pc, base, bound), i)
    for rate in (0.005, 0.02, 0.20):
        i += 1
        yield _run_many(f"absolute error rate on a {rate:.1%} bound", runs, absolute(10, rate), i)
    i += 1
    yield _run_many("absolute p99 on its bound (1% slower)", runs, absolute(10, 0.01), i)
    for keys in (5, 500):
        i += 1
        name = f"clustered, {keys} keys per arm, vs control"
        yield _run_many(name, max(runs // 4, 1), clustered(keys), i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"alpha {ALPHA:.0%}; looked at every 100 ms for 60 s; {args.runs} runs a scenario")
    print(f"{'scenario':<58} {'mlchaos':>16} {'naive':>8}  within alpha + 2 SE")
    t0 = time.perf_counter()
    for o in scenarios(args.runs, args.seed):
        seq = f"{o.sequential:6.2%} ± {o.standard_error:.2%}"
        naive = "-" if o.naive is None else f"{o.naive:.1%}"
        print(f"{o.name:<58} {seq:>16} {naive:>8}  {'yes' if o.within else 'NO'}", flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
