"""Test aids shipped to users: the toy model upstream, a fault proxy for a test with assertions
judged on intervals (what the pytest plugin, :mod:`mlchaos.pytest_plugin`, serves), and fakes for
the phase machine.

The toy model is served over the Open Inference Protocol v2; tests and the example experiments
run against it, ``mlchaos upstream serve`` runs it as a process, and ``make_dataset`` writes
rows that go with it. :class:`ManualClock`, :class:`FakeInjector`, :class:`FakeTraffic`,
:func:`no_endpoints` and :func:`fake_injectors` run a :class:`~mlchaos.runner.Runner` without
sockets on virtual time; they load on first use (``mlchaos upstream serve`` starts fast).
"""

from typing import TYPE_CHECKING, Any

from mlchaos.testing._chaos_proxy import ChaosProxy
from mlchaos.testing._judged import Judged, error_rate, is_error, latency_quantile
from mlchaos.testing._toy import TOY_FEATURES, TOY_MODEL, make_dataset, toy_predict, toy_score
from mlchaos.testing._upstream import (
    Upstream,
    serve_upstream_forever,
    start_upstream,
    upstream_app,
)

if TYPE_CHECKING:
    from mlchaos.testing._fakes import (
        FakeInjector,
        FakeTraffic,
        ManualClock,
        fake_injectors,
        no_endpoints,
    )

__all__ = [
    "TOY_FEATURES",
    "TOY_MODEL",
    "ChaosProxy",
    "FakeInjector",
    "FakeTraffic",
    "Judged",
    "ManualClock",
    "Upstream",
    "error_rate",
    "fake_injectors",
    "is_error",
    "latency_quantile",
    "make_dataset",
    "no_endpoints",
    "serve_upstream_forever",
    "start_upstream",
    "toy_predict",
    "toy_score",
    "upstream_app",
]

_FAKES = {"FakeInjector", "FakeTraffic", "ManualClock", "fake_injectors", "no_endpoints"}


def __getattr__(name: str) -> Any:
    if name not in _FAKES:
        raise AttributeError(f"module 'mlchaos.testing' has no attribute {name!r}")
    from mlchaos.testing import _fakes  # noqa: PLC0415 - on first use only

    value = getattr(_fakes, name)
    globals()[name] = value
    return value
