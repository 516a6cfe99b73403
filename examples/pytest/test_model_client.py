"""How our model client behaves when the model server misbehaves: each test puts an mlchaos
fault proxy (the ``mlchaos_proxy`` fixture of mlchaos's pytest plugin) between the client and
the model, injects one fault, and judges the outcome on its confidence interval — so a lucky
handful of requests can never pass a bound the sample cannot support.

Run: ``pytest examples/pytest`` (mlchaos installed: the plugin loads by itself).
"""

from __future__ import annotations

import random
import time

from model_client import ModelClient

from mlchaos.testing import error_rate, latency_quantile


def rows(n: int, seed: int = 1) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.gauss(0, 1) for _ in range(4)] for _ in range(n)]


def test_one_retry_hides_a_fifth_of_the_calls_failing(mlchaos_proxy, model_server):
    proxy = mlchaos_proxy(model_server)
    client = ModelClient(proxy.url, timeout=2.0)
    with proxy.fault(abort=503, probability=0.2):
        answers = [client.predict(row) for row in rows(1000)]
    # An answer from the default rather than the model counts as a failure here: both of its
    # attempts met the fault (4% expected). Judged on Wilson's upper bound, not the point. Size
    # the sample for the bound: of 300 calls, 20 or more reach the default 1.9% of the time by
    # chance alone (its upper bound then passes 10%); of 1000, 82 or more: once in 600 million.
    assert error_rate(a.source == "default" for a in answers) <= 0.10


def test_a_slow_model_meets_the_timeout_and_the_default_answers_in_time(
    mlchaos_proxy, model_server
):
    proxy = mlchaos_proxy(model_server)
    client = ModelClient(proxy.url, timeout=0.1)
    latencies, answers = [], []
    with proxy.fault(latency="500ms"):
        for row in rows(60):
            t0 = time.perf_counter()
            answers.append(client.predict(row))
            latencies.append(time.perf_counter() - t0)
    assert all(a.source == "default" for a in answers)  # never an exception to the caller
    # two attempts of 100 ms each, then the default: the median call is well under a second
    assert latency_quantile(latencies, 0.5) <= 0.5


def test_without_faults_the_model_answers(mlchaos_proxy, model_server):
    proxy = mlchaos_proxy(model_server)
    client = ModelClient(proxy.url, timeout=2.0)
    answers = [client.predict(row) for row in rows(200)]
    assert error_rate(a.source == "default" for a in answers) <= 0.02
