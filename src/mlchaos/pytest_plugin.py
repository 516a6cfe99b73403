"""mlchaos's pytest plugin (entry point ``pytest11``): fault proxies as fixtures, and
assertions judged on intervals.

* ``mlchaos_proxy`` — a factory: ``mlchaos_proxy("127.0.0.1:8000")`` starts a real ``mlchaos
  proxy serve`` in front of that address (``protocol="tcp"`` for any TCP service) and stops it
  after the test. Point the code under test at ``proxy.url`` (or ``proxy.address``), and
  inject faults with ``with proxy.fault(abort=503, probability=0.2): ...``.
* ``mlchaos.testing.error_rate`` and ``latency_quantile`` — ``assert error_rate(outcomes) <=
  0.01`` holds when the interval's upper bound does; a failure shows the estimate, its interval
  and whether the bound was shown violated or not decided.

Loading the plugin imports nothing heavy: the proxy is a separate process, and the statistics
load on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlchaos.testing._chaos_proxy import ChaosProxy

__all__ = ["mlchaos_proxy", "pytest_assertrepr_compare"]

_OPS = {"<=", "<", ">=", ">"}


@pytest.fixture
def mlchaos_proxy() -> Iterator[Callable[..., ChaosProxy]]:
    """Start fault proxies for this test: ``mlchaos_proxy(upstream, protocol="http")``."""
    from mlchaos.testing._chaos_proxy import ChaosProxy  # noqa: PLC0415

    started: list[ChaosProxy] = []

    def start(upstream: str, *, protocol: str = "http") -> ChaosProxy:
        proxy = ChaosProxy(upstream, protocol=protocol)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.close()


def pytest_assertrepr_compare(op: str, left: object, right: object) -> list[str] | None:
    """Explain a failed comparison of a judged estimate with its bound."""
    from mlchaos.testing._judged import Judged  # noqa: PLC0415

    if op not in _OPS or not isinstance(left, Judged) or not isinstance(right, int | float):
        return None
    return [f"{left!r} {op} {right}", left.explain(op, float(right))]
