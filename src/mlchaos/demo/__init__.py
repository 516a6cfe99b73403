"""The demo ML service mlchaos experiments on, and its canonical experiments.

:class:`DemoStack` starts the service as separate OS processes on loopback: a gateway (Open
Inference Protocol v2, ``resilient`` or ``naive``), two primary-model replicas, a fallback model
inside the gateway, a Feast-shaped feature store on SQLite, a feature pipeline, a label oracle
(the simulation's ground truth), and an mlchaos proxy on each of the gateway's links.
:class:`ServiceGroup` supervises the processes so none survives. :func:`run_demo` is
``mlchaos demo``; :func:`serve_demo` is ``mlchaos demo up``. Nothing but the CLI and tests
imports this package.
"""

from mlchaos.demo._run import (
    EXPERIMENTS,
    experiment_path,
    load_demo_experiment,
    run_demo,
    serve_demo,
)
from mlchaos.demo._services import RunningService, ServiceGroup, ServiceSpec, ServiceStartError
from mlchaos.demo._stack import REPLICAS, DemoStack, FeatureStore, Variant

__all__ = [
    "EXPERIMENTS",
    "REPLICAS",
    "DemoStack",
    "FeatureStore",
    "RunningService",
    "ServiceGroup",
    "ServiceSpec",
    "ServiceStartError",
    "Variant",
    "experiment_path",
    "load_demo_experiment",
    "run_demo",
    "serve_demo",
]
